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
    let client = tokio::time::timeout(timeout, config.connect_on_runtime(host))
        .await
        .map_err(|_| Error::connect_timeout(format!("probing {host} timed out")))??;
    let role = tokio::time::timeout(timeout, probe_role(&client))
        .await
        .map_err(|_| Error::connect_timeout(format!("probing {host} timed out")));
    client.close();
    role?
}

/// prefer-standby looks for a standby first.
fn first_pass(mode: Mode) -> Mode {
    match mode {
        Mode::PreferStandby => Mode::ReadOnly,
        m => m,
    }
}

/// The order in which `connect_for` tries the `n` hosts (see there).
fn candidates(
    mode: Mode,
    n: usize,
    preferred: Option<usize>,
    view: &Hosts,
    open: &[usize],
) -> Vec<usize> {
    let fit = first_pass(mode);
    let mut order: Vec<usize> = (0..n)
        .filter(|&i| view.state(i) != HostState::Unreachable)
        .collect();
    if mode == Mode::ReadWrite {
        if let Some(at) = preferred.and_then(|p| order.iter().position(|&i| i == p)) {
            order.rotate_left(at);
        }
        // A stable sort keeps the preferred host first among equals.
        order.sort_by_key(|&i| !fits(fit, view.state(i)));
    } else {
        order.shuffle(&mut rand::thread_rng());
        let load = |i: usize| open.get(i).copied().unwrap_or(0) + view.opening(i) as usize;
        order.sort_by_key(|&i| (!fits(fit, view.state(i)), load(i)));
    }
    order
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
/// timeout). Among the hosts that fit, pools that read from standbys go to the one with the
/// fewest connections, counting `open()` (the caller's connections per host) and attempts under
/// way, so reads spread over the standbys instead of landing where a random pick piles them;
/// ties are broken at random. The order is made again before each attempt: a host found not
/// to fit on the way moves back, and other callers' attempts meanwhile count. What each
/// attempt finds is recorded in the view.
pub async fn connect_for(
    config: &PoolConfig,
    preferred: Option<usize>,
    view: &Hosts,
    open: impl Fn() -> Vec<usize>,
) -> Result<(Client, usize), RouteError> {
    let first_pass = first_pass(config.mode);
    let n = config.hosts.len();
    let mut tried = vec![false; n];
    let mut last_error = None;
    // prefer-standby: a primary found while looking for standbys is kept as the fallback,
    // so the second pass costs no reconnect.
    let mut fallback: Option<(Client, usize)> = None;
    while let Some(i) = candidates(config.mode, n, preferred, view, &open())
        .into_iter()
        .find(|&i| !tried[i])
    {
        tried[i] = true;
        let Some(host) = config.hosts.get(i) else {
            continue;
        };
        let attempt = view.begin_open(i);
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
            drop(attempt);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn view(states: &[HostState]) -> Hosts {
        let hosts = Hosts::new((0..states.len()).map(|i| format!("h{i}:5432")).collect());
        for (i, &s) in states.iter().enumerate() {
            hosts.set(i, s);
        }
        hosts
    }

    #[test]
    fn standby_reads_go_to_the_least_loaded_standby() {
        use HostState::*;
        let v = view(&[Primary, Standby, Standby, Unreachable]);
        for _ in 0..50 {
            assert_eq!(
                candidates(Mode::ReadOnly, 4, None, &v, &[5, 3, 1, 0]),
                [2, 1, 0]
            );
            assert_eq!(
                candidates(Mode::ReadOnly, 4, None, &v, &[0, 1, 3, 0]),
                [1, 2, 0]
            );
            // prefer-standby tries the standbys first, the primary after them.
            assert_eq!(
                candidates(Mode::PreferStandby, 4, None, &v, &[0, 2, 2]).last(),
                Some(&0)
            );
            assert_eq!(candidates(Mode::Any, 4, None, &v, &[1, 0, 2]), [1, 0, 2]);
        }
        // Attempts under way count as connections.
        let _a = v.begin_open(2);
        let _b = v.begin_open(2);
        assert_eq!(
            candidates(Mode::ReadOnly, 4, None, &v, &[0, 1, 0]),
            [1, 2, 0]
        );
        drop((_a, _b));
        assert_eq!(v.opening(2), 0);
        // Ties are broken at random: both standbys come first over a few tries.
        let firsts: std::collections::HashSet<usize> = (0..64)
            .map(|_| candidates(Mode::ReadOnly, 4, None, &v, &[])[0])
            .collect();
        assert_eq!(firsts, [1, 2].into());
    }

    #[test]
    fn writes_try_the_last_primary_first_and_load_does_not_matter() {
        use HostState::*;
        let v = view(&[Standby, Unknown, Primary]);
        assert_eq!(
            candidates(Mode::ReadWrite, 3, Some(2), &v, &[0, 0, 9]),
            [2, 1, 0]
        );
        assert_eq!(candidates(Mode::ReadWrite, 3, None, &v, &[]), [1, 2, 0]);
        let v = view(&[Standby, Unreachable, Primary]);
        assert_eq!(candidates(Mode::ReadWrite, 3, Some(1), &v, &[]), [2, 0]);
    }
}
