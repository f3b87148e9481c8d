//! One error type for everything a connection can report, with a kind and predicates the
//! pool's policies are written against (`code()`, `is_closed()`, `safe_to_retry()`).

use crate::backend::{ErrorFields, ProtocolError, ProtocolErrorKind};
use crate::frontend::EncodeError;
use std::fmt;
use std::sync::Arc;

/// An error reported by the server (ErrorResponse).
pub type DbError = ErrorFields;

/// What went wrong, broadly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The server answered with an ErrorResponse; see [`Error::db`].
    Db,
    /// Connecting failed (refused, unreachable, DNS).
    Connect,
    /// The connect or handshake did not finish within `connect_timeout`.
    ConnectTimeout,
    /// The connection is closed or broke while a request was in flight.
    Closed,
    /// The server sent something malformed or unexpected.
    Protocol,
    /// Authentication failed on our side (bad server signature, missing password).
    Auth,
    /// The server asked for something we do not support (an auth method, COPY).
    Unsupported,
    /// A parameter could not be encoded for its target type; nothing was sent.
    Encode,
    /// The connection's settings cannot work (a NUL byte in the user name, a socket option
    /// the OS refuses): no retry, on any host, can fix it.
    Config,
}

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    message: String,
    db: Option<DbError>,
    /// Whether any byte of the failed request may have reached the socket. When false the
    /// request certainly did not run, so it is safe to retry anywhere.
    sent: bool,
    /// Startup failed in a way no retry (on this host or another) can fix: the server broke
    /// the protocol or demands an auth method we lack.
    fatal_config: bool,
    /// What the server did wrong, for [`ErrorKind::Protocol`]: the error's `source()`.
    protocol: Option<ProtocolError>,
    /// Notices the server sent for the failed statement before its error (`RAISE NOTICE`
    /// ahead of a `RAISE EXCEPTION`).
    notices: Vec<DbError>,
}

/// An error from a connection. Cheap to clone (the failed requests of one broken connection
/// share it).
#[derive(Clone)]
pub struct Error(Arc<Inner>);

impl Error {
    fn new(kind: ErrorKind, message: impl Into<String>, db: Option<DbError>, sent: bool) -> Self {
        Error(Arc::new(Inner {
            kind,
            message: message.into(),
            db,
            sent,
            fatal_config: false,
            protocol: None,
            notices: Vec::new(),
        }))
    }

    pub fn db(fields: DbError) -> Self {
        let message = fields.message.clone();
        Error::new(ErrorKind::Db, message, Some(fields), true)
    }

    pub fn connect(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Connect, message, None, false)
    }

    pub fn connect_timeout(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::ConnectTimeout, message, None, false)
    }

    /// The connection closed; `sent` says whether the request had been written.
    pub fn closed(message: impl Into<String>, sent: bool) -> Self {
        Error::new(ErrorKind::Closed, message, None, sent)
    }

    pub fn protocol(e: ProtocolError) -> Self {
        let mut error = Error::new(ErrorKind::Protocol, e.to_string(), None, true);
        if let Some(inner) = Arc::get_mut(&mut error.0) {
            inner.protocol = Some(e);
        }
        error
    }

    pub fn auth(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Auth, message, None, false)
    }

    pub fn unsupported(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unsupported, message, None, true)
    }

    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message, None, false)
    }

    pub fn encode(e: EncodeError) -> Self {
        Error::new(ErrorKind::Encode, e.to_string(), None, false)
    }

    /// The same error, for work that cannot have run the caller's statement (its Parse and
    /// Describe, a type lookup): safe to retry like one never written.
    #[cfg(feature = "driver")]
    pub fn ran_nothing(&self) -> Self {
        self.with_sent(false)
    }

    #[cfg(feature = "driver")]
    /// The same error, for a request that was (or was not) written.
    pub(crate) fn with_sent(&self, sent: bool) -> Self {
        if self.0.sent == sent {
            return self.clone();
        }
        self.copy_with(sent, self.0.fatal_config)
    }

    #[cfg(feature = "driver")]
    /// A copy with `sent` and `fatal_config` replaced.
    fn copy_with(&self, sent: bool, fatal_config: bool) -> Self {
        Error(Arc::new(Inner {
            kind: self.0.kind,
            message: self.0.message.clone(),
            db: self.0.db.clone(),
            sent,
            fatal_config,
            protocol: self.0.protocol.clone(),
            notices: self.0.notices.clone(),
        }))
    }

    #[cfg(feature = "driver")]
    /// The same error, raised while starting a connection: a protocol error or an
    /// unsupported auth method there means this server cannot be used as configured, and a
    /// startup parameter that cannot be encoded (a NUL byte in the user name) is a setting
    /// to fix. Both stop the pool's retries ([`Error::is_fatal_config`]).
    pub(crate) fn at_startup(self) -> Self {
        match self.0.kind {
            ErrorKind::Encode => Error::config(self.0.message.clone()),
            ErrorKind::Protocol | ErrorKind::Unsupported => self.copy_with(self.0.sent, true),
            _ => self,
        }
    }

    /// Notices the server sent for the failed statement before its error.
    pub fn notices(&self) -> &[DbError] {
        &self.0.notices
    }

    #[cfg(feature = "driver")]
    /// The same error with `notices` (those of the statement it failed).
    pub(crate) fn with_notices(self, notices: Vec<DbError>) -> Self {
        if notices.is_empty() {
            return self;
        }
        let mut error = match Arc::strong_count(&self.0) {
            1 => self,
            _ => self.copy_with(self.0.sent, self.0.fatal_config),
        };
        if let Some(inner) = Arc::get_mut(&mut error.0) {
            inner.notices = notices;
        }
        error
    }

    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// What the server did wrong, for a protocol error.
    pub fn as_protocol(&self) -> Option<&ProtocolError> {
        self.0.protocol.as_ref()
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The server's error fields, for [`ErrorKind::Db`].
    pub fn as_db(&self) -> Option<&DbError> {
        self.0.db.as_ref()
    }

    /// The SQLSTATE for server errors, or a stable client code for the others.
    pub fn code(&self) -> &str {
        match (&self.0.db, self.0.kind) {
            // A server error always has a SQLSTATE; one that omits it is an internal error.
            (Some(db), _) if db.code.is_empty() => crate::sqlstate::INTERNAL_ERROR,
            (Some(db), _) => &db.code,
            (None, ErrorKind::Db) => crate::sqlstate::INTERNAL_ERROR,
            (None, ErrorKind::Connect) => "CONNECTION_FAILED",
            (None, ErrorKind::ConnectTimeout) => "CONNECT_TIMEOUT",
            (None, ErrorKind::Closed) => "CONNECTION_CLOSED",
            (None, ErrorKind::Protocol) => "PROTOCOL_ERROR",
            (None, ErrorKind::Auth) => "AUTH_FAILED",
            (None, ErrorKind::Unsupported) => "UNSUPPORTED",
            (None, ErrorKind::Encode) => "INVALID_PARAMETER",
            (None, ErrorKind::Config) => "INVALID_CONFIG",
        }
    }

    /// The connection this came from can no longer be used.
    pub fn is_closed(&self) -> bool {
        matches!(
            self.0.kind,
            ErrorKind::Closed
                | ErrorKind::Protocol
                | ErrorKind::Connect
                | ErrorKind::ConnectTimeout
        ) || self
            .0
            .db
            .as_ref()
            .is_some_and(|d| matches!(d.severity(), "FATAL" | "PANIC"))
    }

    /// True only when no byte of the request can have reached the server, so running it
    /// again (anywhere) cannot apply it twice.
    pub fn safe_to_retry(&self) -> bool {
        !self.0.sent
    }

    /// The server refused a write because the session is read-only (a fenced primary or a
    /// standby): SQLSTATE 25006.
    pub fn is_read_only(&self) -> bool {
        self.0
            .db
            .as_ref()
            .is_some_and(|d| d.code == crate::sqlstate::READ_ONLY_SQL_TRANSACTION)
    }

    /// Authentication (28xxx), a missing database (3D000), invalid settings, or a startup
    /// the server broke or cannot complete (protocol error, unsupported auth method): trying
    /// another host or again will not help.
    pub fn is_fatal_config(&self) -> bool {
        self.0.db.as_ref().is_some_and(|d| {
            d.code.starts_with("28") || d.code == crate::sqlstate::INVALID_CATALOG_NAME
        }) || matches!(self.0.kind, ErrorKind::Auth | ErrorKind::Config)
            || self.0.fatal_config
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("code", &self.code())
            .field("message", &self.0.message)
            .field("sent", &self.0.sent)
            .finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .protocol
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::protocol(e)
    }
}

impl From<ProtocolErrorKind> for Error {
    fn from(kind: ProtocolErrorKind) -> Self {
        Error::protocol(ProtocolError::new(kind))
    }
}

impl From<EncodeError> for Error {
    fn from(e: EncodeError) -> Self {
        Error::encode(e)
    }
}
