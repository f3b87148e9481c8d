//! What a node is, and whether it fits a pool's mode: the one place these rules live.
//!
//! A node's role is read from what it reports at startup on PostgreSQL 14+
//! (`in_hot_standby`, `default_transaction_read_only` ParameterStatus: no extra round trip).
//! Older servers are asked once, in one round trip, and a session on them is validated by
//! [`PROBE_SQL`] sent in the same write as the statement. Read-write routing checks
//! read-only-ness, not only recovery: a fenced old primary is out of recovery but read-only,
//! and must be refused (`target_session_attrs=primary` would accept it).

use crate::config::Mode;
use crate::hosts::HostState;
use hyperion_wire::{Client, ConnectionState, Error, QueryResult};

/// Validation probe for servers that do not report `default_transaction_read_only`
/// (before PostgreSQL 14).
pub(crate) const PROBE_SQL: &str = "SHOW transaction_read_only";

/// What a node is, as far as routing cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    pub in_recovery: bool,
    pub read_only: bool,
}

impl Role {
    pub fn writable(self) -> bool {
        !self.in_recovery && !self.read_only
    }

    /// The host state this role is.
    pub fn state(self) -> HostState {
        match (self.in_recovery, self.read_only) {
            (true, _) => HostState::Standby,
            (false, true) => HostState::Fenced,
            (false, false) => HostState::Primary,
        }
    }
}

/// Reads the role of a freshly opened connection.
pub async fn probe_role(client: &Client) -> Result<Role, Error> {
    let st = client.state();
    if st.reports_read_only() && client.parameter("in_hot_standby").is_some() {
        let in_recovery = st.in_hot_standby();
        return Ok(Role {
            in_recovery,
            read_only: in_recovery || st.default_transaction_read_only(),
        });
    }
    let results = client
        .simple_query("SHOW transaction_read_only; SELECT pg_catalog.pg_is_in_recovery()")
        .await?;
    let first_value = |i: usize| -> Option<Vec<u8>> {
        let row = results.get(i)?.rows.first()?;
        row.values().next().flatten().map(|v| v.to_vec())
    };
    Ok(Role {
        read_only: first_value(0).as_deref() == Some(b"on"),
        in_recovery: first_value(1).as_deref() == Some(b"t"),
    })
}

/// Whether a host last seen in `state` may serve `mode` (an unknown host may).
pub(crate) fn fits(mode: Mode, state: HostState) -> bool {
    !matches!(
        (mode, state),
        (_, HostState::Unreachable)
            | (Mode::ReadWrite, HostState::Standby | HostState::Fenced)
            | (Mode::ReadOnly, HostState::Primary | HostState::Fenced)
    )
}

pub(crate) fn accepts(mode: Mode, role: Role) -> bool {
    match mode {
        Mode::ReadWrite => role.writable(),
        Mode::ReadOnly => role.in_recovery,
        Mode::PreferStandby | Mode::Any => true,
    }
}

/// Whether a session no longer fits `mode`, from what its protocol loop saw: a read-write
/// pool's node turned read-only (fenced, or a standby), or a read-only pool's standby was
/// promoted. A promoted server reports `in_hot_standby = off` at each session's next
/// ReadyForQuery (PostgreSQL 14 on; older servers do not tell, and their standbys are not
/// rechecked).
pub(crate) fn session_unfit(mode: Mode, st: &ConnectionState) -> bool {
    match mode {
        Mode::ReadWrite => st.is_read_only(),
        Mode::ReadOnly => st.reports_read_only() && !st.in_hot_standby(),
        Mode::PreferStandby | Mode::Any => false,
    }
}

/// What a session's own reports say its host is.
pub(crate) fn session_state(st: &ConnectionState) -> HostState {
    if st.in_hot_standby() {
        HostState::Standby
    } else if st.is_read_only() {
        HostState::Fenced
    } else {
        HostState::Primary
    }
}

/// Whether the next statement of a session on `mode` needs [`PROBE_SQL`] ahead of it: a
/// read-write pool on a server that does not report read-only-ness (before 14).
pub(crate) fn needs_probe(mode: Mode, st: &ConnectionState) -> bool {
    mode == Mode::ReadWrite && !st.reports_read_only()
}

/// Whether [`PROBE_SQL`]'s answer says the session can write.
pub(crate) fn probe_says_writable(results: &[QueryResult]) -> bool {
    results
        .first()
        .and_then(|r| r.rows.first())
        .and_then(|row| row.values().next().flatten())
        == Some(&b"off"[..])
}

/// Runs the simple query `sql` with [`PROBE_SQL`] ahead of it in the same write (servers
/// before 14): whether the session was writable, and `sql`'s results. A statement on a
/// session the probe finds read-only still ran: the caller discards it (for BEGIN, the lease
/// goes back mid-transaction and the connection is destroyed).
pub(crate) async fn simple_after_probe(
    client: &Client,
    sql: &str,
) -> Result<(bool, Vec<QueryResult>), Error> {
    let mut buf = bytes::BytesMut::new();
    hyperion_wire::frontend::query(PROBE_SQL, &mut buf)
        .and_then(|()| hyperion_wire::frontend::query(sql, &mut buf))
        .map_err(Error::from)?;
    let mut groups = client.send_batch(buf.freeze(), 2).await?.into_iter();
    let writable = matches!(groups.next(), Some(Ok(r)) if probe_says_writable(&r));
    match groups.next() {
        Some(Ok(results)) => Ok((writable, results)),
        Some(Err(e)) => Err(e),
        None => Ok((false, Vec::new())),
    }
}
