//! Pool settings, as `createPool` documents them.

use hyperion_wire::{sqlstate, Client, Error, Host};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A connection being opened.
pub type Connecting = Pin<Box<dyn Future<Output = Result<Client, Error>> + Send>>;

/// How the pool opens one connection: TCP ([`hyperion_wire::connect`]) unless a test or an
/// embedder supplies its own (a scripted backend over an in-memory stream, say).
#[derive(Clone)]
pub struct Connector(pub Arc<dyn Fn(hyperion_wire::Config) -> Connecting + Send + Sync>);

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Connector")
    }
}

/// Which nodes a pool's connections may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The writable primary only (not in recovery and not read-only).
    ReadWrite,
    /// Standbys only, chosen at random.
    ReadOnly,
    /// A standby when one is reachable, else any node.
    PreferStandby,
    /// Any node, chosen at random.
    Any,
}

impl Mode {
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s {
            "read-write" => Ok(Mode::ReadWrite),
            "read-only" => Ok(Mode::ReadOnly),
            "prefer-standby" => Ok(Mode::PreferStandby),
            "any" => Ok(Mode::Any),
            other => Err(format!(
                "mode must be 'read-write', 'read-only', 'prefer-standby' or 'any', not {other:?}"
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::ReadWrite => "read-write",
            Mode::ReadOnly => "read-only",
            Mode::PreferStandby => "prefer-standby",
            Mode::Any => "any",
        }
    }
}

/// Backoff for retries: `base * 2^attempt`, capped, with full jitter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(1000),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `attempt` (0-based): a random point in
    /// `[delay/2, delay]` so that many clients do not retry in step.
    pub fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX));
        let capped = exp.min(self.max_delay);
        let half = capped / 2;
        half + half.mul_f64(rand::random::<f64>())
    }
}

/// What `transaction(cb)` runs again: serialization failures and deadlocks, a write refused
/// by a node that turned read-only, and connection failures before COMMIT (a COMMIT that was
/// sent is `IN_DOUBT`, never run again).
const RETRYABLE_IN_TRANSACTION: [&str; 7] = [
    sqlstate::T_R_SERIALIZATION_FAILURE,
    sqlstate::T_R_DEADLOCK_DETECTED,
    sqlstate::READ_ONLY_SQL_TRANSACTION,
    "CONNECTION_CLOSED",
    sqlstate::ADMIN_SHUTDOWN,
    sqlstate::CRASH_SHUTDOWN,
    sqlstate::CANNOT_CONNECT_NOW,
];

/// Whether a transaction that failed with `code` is worth running again, whole.
pub fn retryable_in_transaction(code: &str) -> bool {
    RETRYABLE_IN_TRANSACTION.contains(&code)
}

#[derive(Debug, Clone)]
pub struct PoolConfig {
    pub hosts: Vec<Host>,
    pub user: String,
    pub password: Option<String>,
    pub database: Option<String>,
    pub application_name: String,
    pub mode: Mode,
    pub pool_size: usize,
    pub connect_timeout: Duration,
    pub acquire_timeout: Duration,
    pub statement_timeout: Option<Duration>,
    /// A connection validated within this window skips validation on checkout.
    pub validation_interval: Duration,
    pub retry: RetryPolicy,
    /// Most requests pipelined on one connection.
    pub pipeline_depth: usize,
    /// Most prepared statements per connection (least recently used closed first).
    pub statement_cache_size: usize,
    /// Statements are prepared (named, cached per connection); false: each runs as the
    /// unnamed statement, parsed again every time, which a pooler in transaction mode
    /// (PgBouncer) requires.
    pub prepare: bool,
    /// An idle connection is closed after this long, while the pool keeps more than
    /// `min_connections`; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Connections kept open, idle or not, however long they idle.
    pub min_connections: usize,
    /// A connection is closed once idle after this long (less up to a tenth, at random, per
    /// connection, so that a pool does not reconnect all at once); `None`: never.
    pub max_lifetime: Option<Duration>,
    /// How connections are opened; `None`: TCP.
    pub connector: Option<Connector>,
    /// Where plain TCP connections' protocol loops run; `None`: on the tokio runtime
    /// ([`hyperion_wire::runner`]).
    pub runner: Option<hyperion_wire::runner::Runner>,
    /// TLS (`sslmode` and the rest); default `prefer`, as libpq.
    pub ssl: hyperion_wire::SslConfig,
    pub channel_binding: hyperion_wire::ChannelBindingMode,
    /// The newest protocol version asked for (3.0 unless `maxProtocolVersion: '3.2'`).
    pub max_protocol_version: hyperion_wire::ProtocolVersion,
    pub require_auth: hyperion_wire::RequireAuth,
    /// Passwords by host from a password file (`~/.pgpass`), used when `password` is `None`.
    pub host_passwords: Vec<(Host, String)>,
}

impl PoolConfig {
    pub fn new(hosts: Vec<Host>, user: impl Into<String>) -> Self {
        PoolConfig {
            hosts,
            user: user.into(),
            password: None,
            database: None,
            application_name: "hyperiondb-client".into(),
            mode: Mode::ReadWrite,
            pool_size: 10,
            connect_timeout: hyperion_wire::config::DEFAULT_CONNECT_TIMEOUT,
            acquire_timeout: Duration::from_millis(5000),
            statement_timeout: None,
            validation_interval: Duration::ZERO,
            retry: RetryPolicy::default(),
            pipeline_depth: 128,
            statement_cache_size: hyperion_wire::statement_cache::DEFAULT_STATEMENT_CACHE_SIZE,
            prepare: true,
            // HikariCP's defaults: a connection idle for 10 minutes is not worth its server
            // process; after 30 minutes one is replaced, so that server-side state (memory,
            // settings reloaded since) and load balancers' own timeouts never bite.
            idle_timeout: Some(Duration::from_secs(600)),
            min_connections: 1,
            max_lifetime: Some(Duration::from_secs(1800)),
            connector: None,
            runner: None,
            ssl: hyperion_wire::SslConfig::default(),
            channel_binding: hyperion_wire::ChannelBindingMode::default(),
            max_protocol_version: hyperion_wire::ProtocolVersion::V3_0,
            require_auth: hyperion_wire::RequireAuth::default(),
            host_passwords: Vec::new(),
        }
    }

    /// Opens a connection to `host` with this pool's settings.
    pub fn connect(&self, host: &Host) -> Connecting {
        self.connect_with(self.connection(host))
    }

    /// Opens a connection to `host` whose protocol loop runs on the tokio runtime, whatever
    /// `runner` says: for a connection that must be answered while the JS thread is busy
    /// (a probe, whose timeout would otherwise call a healthy host down; the LISTEN
    /// session, whose health check would otherwise drop it and its notifications).
    pub fn connect_on_runtime(&self, host: &Host) -> Connecting {
        let mut config = self.connection(host);
        config.runner = None;
        self.connect_with(config)
    }

    fn connect_with(&self, config: hyperion_wire::Config) -> Connecting {
        match &self.connector {
            Some(c) => (c.0)(config),
            None => Box::pin(async move { hyperion_wire::connect(&config).await }),
        }
    }

    /// Checks the TLS settings (certificates and key parsed) as a connection would use them:
    /// a bad certificate is a configuration error when the pool is made, not at every query.
    pub fn check_tls(&self) -> Result<(), String> {
        // Unix-domain sockets take no TLS (as with libpq): the first TCP host's settings.
        match self.hosts.iter().find(|h| !h.is_unix_socket()) {
            Some(h) => hyperion_wire::check_tls(&self.connection(h)).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }

    /// The wire-level settings for one connection to `host`.
    pub fn connection(&self, host: &Host) -> hyperion_wire::Config {
        let mut c = hyperion_wire::Config::new(host.clone(), self.user.clone());
        c.password = self
            .password
            .as_ref()
            .or_else(|| {
                let from_file = self.host_passwords.iter().find(|(h, _)| h == host);
                from_file.map(|(_, p)| p)
            })
            .map(|p| p.as_bytes().to_vec());
        c.database = self.database.clone();
        c.application_name = self.application_name.clone();
        c.connect_timeout = Some(self.connect_timeout);
        c.statement_timeout = self.statement_timeout;
        c.pipeline_depth = self.pipeline_depth;
        c.statement_cache_size = self.statement_cache_size;
        c.ssl = self.ssl.clone();
        c.channel_binding = self.channel_binding;
        c.max_protocol_version = self.max_protocol_version;
        c.require_auth = self.require_auth.clone();
        c.runner = self.runner.clone();
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_capped_and_jittered() {
        let p = RetryPolicy::default();
        for attempt in 0..40 {
            let d = p.delay(attempt);
            assert!(d <= p.max_delay, "{attempt}: {d:?}");
            let full = (p.base_delay * 2u32.pow(attempt.min(10))).min(p.max_delay);
            assert!(d >= full / 2, "{attempt}: {d:?}");
        }
    }

    #[test]
    fn transactions_retry_conflicts_fences_and_lost_connections_never_in_doubt() {
        for code in ["40001", "40P01", "25006", "CONNECTION_CLOSED", "57P01"] {
            assert!(retryable_in_transaction(code), "{code}");
        }
        for code in ["IN_DOUBT", "23505", "QUERY_TIMEOUT", ""] {
            assert!(!retryable_in_transaction(code), "{code}");
        }
    }

    #[test]
    fn modes() {
        for m in ["read-write", "read-only", "prefer-standby", "any"] {
            assert_eq!(Mode::parse(m).unwrap().as_str(), m);
        }
        assert!(Mode::parse("primary").is_err());
    }
}
