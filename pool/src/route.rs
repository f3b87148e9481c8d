//! Which node a new connection goes to, for a pool's mode (what fits is `role.rs`), and the
//! probe discovery asks each host with.

use crate::config::{Mode, PoolConfig};
use crate::hosts::{HostState, Hosts};
use crate::role::{accepts, fits, probe_role, Role};
use hyperion_wire::{Client, Error, ErrorKind};
use rand::seq::SliceRandom;
use std::time::Duration;

/// Whether a failed connect says the host is not answering (as opposed to answering with a
/// refusal: a wrong password, a missing database, a protocol error).
pub fn unreachable(e: &Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::Connect | ErrorKind::ConnectTimeout | ErrorKind::Closed
    )
}

/// Asks host `i` what it is, on a connection of its own opened within `timeout` and closed
/// right after (discovery: each host speaks only for itself).
pub async fn probe_host(config: &PoolConfig, i: usize, timeout: Duration) -> Result<Role, Error> {
    let Some(host) = config.hosts.get(i) else {
        return Err(Error::connect(format!("no host number {i}")));
    };
    let client = tokio::time::timeout(timeout, config.connect(host))
        .await
        .map_err(|_| Error::connect_timeout(format!("probing {host} timed out")))??;
    let role = tokio::time::timeout(timeout, probe_role(&client))
        .await
        .map_err(|_| Error::connect_timeout(format!("probing {host} timed out")));
    client.close();
    role?
}

/// Why no connection could be made.
#[derive(Debug)]
pub enum RouteError {
    /// Wrong password, missing database, ...: trying other hosts or again will not help.
    Fatal(Error),
    /// No host matched; the last connection error if any host failed to connect.
    NoMatch(Option<Error>),
}

/// Opens a connection to a node that fits `mode`. `preferred` is tried first (read-write
/// pools pass the last known primary). The host view orders the rest: hosts seen in a state
/// that does not fit the mode go last, and hosts seen unreachable are skipped (discovery
/// probes them and brings them back: a dead host must not cost every checkout a connect
/// timeout). What each attempt finds is recorded in the view.
pub async fn connect_for(
    config: &PoolConfig,
    preferred: Option<usize>,
    view: &Hosts,
) -> Result<(Client, usize), RouteError> {
    let n = config.hosts.len();
    let mut order: Vec<usize> = (0..n).collect();
    match config.mode {
        Mode::ReadWrite => {
            if let Some(p) = preferred.filter(|&p| p < n) {
                order.rotate_left(p);
            }
        }
        _ => order.shuffle(&mut rand::thread_rng()),
    }
    order.retain(|&i| view.state(i) != HostState::Unreachable);
    // A stable sort keeps the preferred host, or the shuffle, first among equals.
    order.sort_by_key(|&i| !fits(config.mode, view.state(i)));
    let first_pass = match config.mode {
        Mode::PreferStandby => Mode::ReadOnly,
        m => m,
    };
    let mut last_error = None;
    // prefer-standby: a primary found while looking for standbys is kept as the fallback,
    // so the second pass costs no reconnect.
    let mut fallback: Option<(Client, usize)> = None;
    for &i in &order {
        let Some(host) = config.hosts.get(i) else {
            continue;
        };
        let client = match config.connect(host).await {
            Ok(c) => c,
            Err(e) if e.is_fatal_config() => return Err(RouteError::Fatal(e)),
            Err(e) => {
                if unreachable(&e) {
                    view.set(i, HostState::Unreachable);
                }
                last_error = Some(e);
                continue;
            }
        };
        let role = match probe_role(&client).await {
            Ok(r) => r,
            Err(e) if e.is_fatal_config() => return Err(RouteError::Fatal(e)),
            Err(e) => {
                client.close();
                last_error = Some(e);
                continue;
            }
        };
        view.set(i, role.state());
        if accepts(first_pass, role) {
            if let Some((c, _)) = fallback.take() {
                c.close();
            }
            return Ok((client, i));
        }
        if config.mode == Mode::PreferStandby && fallback.is_none() {
            fallback = Some((client, i));
        } else {
            client.close();
        }
    }
    fallback.ok_or(RouteError::NoMatch(last_error))
}
