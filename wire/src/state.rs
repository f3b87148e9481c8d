//! What the protocol loop knows about the session, shared lock-free with the pool: closed,
//! read-only signals, transaction status, requests in flight; and the caps on the server
//! parameters it keeps.

use crate::backend::ProtocolErrorKind;
use crate::error::Error;
use crate::notification::NotificationHook;
use crate::result::TransactionStatus;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};

/// What the protocol loop knows about the session, shared with the pool lock-free.
#[derive(Debug, Default)]
pub struct ConnectionState {
    /// Set by the loop when it ends or the server sends a FATAL error, and by
    /// [`crate::Client::abort`] from any thread; the loop reads it before taking requests.
    pub(crate) closed: AtomicBool,
    pub(crate) read_only_error: AtomicBool,
    default_transaction_read_only: AtomicBool,
    in_hot_standby: AtomicBool,
    /// Whether the server reports `default_transaction_read_only` as a ParameterStatus
    /// (PostgreSQL 14+); if not, read-only-ness must be probed with SQL.
    reports_read_only: AtomicBool,
    /// The session's `client_encoding` is no longer UTF8 (a `SET client_encoding` ran on
    /// it): its text no longer decodes as this client reads it.
    not_utf8: AtomicBool,
    pub(crate) tx_status: AtomicU8,
    pub(crate) in_flight: AtomicU32,
    /// Where LISTEN notifications go ([`crate::Client::on_notification`]).
    pub(crate) notifications: NotificationHook,
}

impl ConnectionState {
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
    /// The session cannot write: a `25006` was seen, or the server reported
    /// `default_transaction_read_only=on` or `in_hot_standby=on`.
    pub fn is_read_only(&self) -> bool {
        self.read_only_error.load(Ordering::Acquire)
            || self.default_transaction_read_only.load(Ordering::Acquire)
            || self.in_hot_standby.load(Ordering::Acquire)
    }
    pub fn in_hot_standby(&self) -> bool {
        self.in_hot_standby.load(Ordering::Acquire)
    }
    pub fn default_transaction_read_only(&self) -> bool {
        self.default_transaction_read_only.load(Ordering::Acquire)
    }
    pub fn saw_read_only_error(&self) -> bool {
        self.read_only_error.load(Ordering::Acquire)
    }
    /// True when ParameterStatus reports read-only-ness (PostgreSQL 14+).
    pub fn reports_read_only(&self) -> bool {
        self.reports_read_only.load(Ordering::Acquire)
    }
    pub fn transaction_status(&self) -> TransactionStatus {
        match self.tx_status.load(Ordering::Acquire) {
            b'T' => TransactionStatus::InTransaction,
            b'E' => TransactionStatus::Failed,
            _ => TransactionStatus::Idle,
        }
    }
    /// Whether the session's `client_encoding` was changed away from UTF8: such a session
    /// is not to serve anyone else.
    pub fn client_encoding_changed(&self) -> bool {
        self.not_utf8.load(Ordering::Acquire)
    }
    /// Requests written and not yet answered.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    pub(crate) fn apply_parameter(&self, name: &str, value: &str) {
        let on = value == "on";
        match name {
            "default_transaction_read_only" => {
                self.reports_read_only.store(true, Ordering::Release);
                self.default_transaction_read_only
                    .store(on, Ordering::Release);
            }
            "in_hot_standby" => self.in_hot_standby.store(on, Ordering::Release),
            "client_encoding" => self
                .not_utf8
                .store(!value.eq_ignore_ascii_case("UTF8"), Ordering::Release),
            _ => {}
        }
    }
}

/// Checks a ParameterStatus against the caps before it is stored: at most
/// [`MAX_PARAMETERS`] names and [`MAX_PARAMETER_BYTES`] in total, during startup too. A
/// server sends a few dozen; past the caps it is broken or hostile.
pub(crate) fn admit_parameter(
    map: &HashMap<String, String>,
    bytes: &mut usize,
    name: &str,
    value: &str,
) -> Result<(), Error> {
    let old = map.get(name).map(|v| name.len() + v.len());
    if old.is_none() && map.len() >= MAX_PARAMETERS {
        return Err(ProtocolErrorKind::TooManyParameters {
            max: MAX_PARAMETERS,
        }
        .into());
    }
    let total = (*bytes - old.unwrap_or(0)) + name.len() + value.len();
    if total > MAX_PARAMETER_BYTES {
        return Err(ProtocolErrorKind::ParametersTooLarge {
            max: MAX_PARAMETER_BYTES,
        }
        .into());
    }
    *bytes = total;
    Ok(())
}

/// Server parameters kept (ParameterStatus names, and name + value bytes in total).
const MAX_PARAMETERS: usize = 256;
const MAX_PARAMETER_BYTES: usize = 64 * 1024;
