//! What one connection needs to know to start.

use crate::auth::policy::{ChannelBindingMode, RequireAuth};
use crate::ssl::SslConfig;
use std::time::Duration;

/// Where to connect: a host name or IP literal (IPv6 without brackets) and a port, or (a
/// `host` that starts with `/`, as libpq) the directory of a Unix-domain socket, whose file is
/// `<dir>/.s.PGSQL.<port>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Host {
    pub host: String,
    pub port: u16,
}

impl Host {
    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port`; `default_port` applies when no port
    /// is given. A bare IPv6 literal (more than one colon, no brackets) is taken whole.
    pub fn parse(s: &str, default_port: u16) -> Result<Host, String> {
        let s = s.trim();
        if s.is_empty() {
            return Err("empty host".into());
        }
        if s.starts_with('/') {
            // A socket directory. `/dir:port` takes a port when what follows the last ':' is
            // a number (a directory name ending in ":<digits>" cannot be written this way).
            if let Some((dir, p)) = s.rsplit_once(':') {
                if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                    return Ok(Host {
                        host: dir.to_owned(),
                        port: parse_port(p, s)?,
                    });
                }
            }
            return Ok(Host {
                host: s.to_owned(),
                port: default_port,
            });
        }
        if let Some(rest) = s.strip_prefix('[') {
            let Some((addr, after)) = rest.split_once(']') else {
                return Err(format!("host {s:?}: missing ']'"));
            };
            if addr.is_empty() {
                return Err(format!("host {s:?}: empty address"));
            }
            let port = match after {
                "" => default_port,
                p => parse_port(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("host {s:?}: expected ':' after ']'"))?,
                    s,
                )?,
            };
            return Ok(Host {
                host: addr.to_owned(),
                port,
            });
        }
        match s.matches(':').count() {
            0 => Ok(Host {
                host: s.to_owned(),
                port: default_port,
            }),
            1 => {
                let (h, p) = s.split_once(':').unwrap_or((s, ""));
                if h.is_empty() {
                    return Err(format!("host {s:?}: empty host name"));
                }
                Ok(Host {
                    host: h.to_owned(),
                    port: parse_port(p, s)?,
                })
            }
            _ => Ok(Host {
                host: s.to_owned(),
                port: default_port,
            }),
        }
    }
}

impl Host {
    /// True for a Unix-domain socket directory (a host that starts with `/`).
    pub fn is_unix_socket(&self) -> bool {
        self.host.starts_with('/')
    }

    /// The socket file, `<dir>/.s.PGSQL.<port>`, for a Unix-domain socket host.
    pub fn socket_path(&self) -> Option<std::path::PathBuf> {
        self.is_unix_socket()
            .then(|| std::path::Path::new(&self.host).join(format!(".s.PGSQL.{}", self.port)))
    }
}

fn parse_port(p: &str, whole: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("host {whole:?}: invalid port {p:?}")),
        Ok(n) => Ok(n),
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') && !self.is_unix_socket() {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// How long a connect and its handshake may take unless the caller says otherwise: the
/// pool's `connectTimeoutMs` default too (one number, here). Two seconds is many round trips
/// on any LAN, and short enough that a dead host does not hold up failover for long.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_millis(2000);

/// The newest protocol version a connection asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProtocolVersion {
    /// 3.0: every PostgreSQL since 7.4 (the default).
    #[default]
    V3_0,
    /// 3.2 (PostgreSQL 18): longer cancel keys. An older server answers with
    /// NegotiateProtocolVersion and the session runs 3.0.
    V3_2,
}

impl ProtocolVersion {
    /// `"3.0"` / `"3.2"`, as libpq's `max_protocol_version` spells them (`latest` is 3.2).
    pub fn parse(s: &str) -> Result<ProtocolVersion, String> {
        match s {
            "3.0" => Ok(ProtocolVersion::V3_0),
            "3.2" | "latest" => Ok(ProtocolVersion::V3_2),
            other => Err(format!(
                "maxProtocolVersion must be '3.0' or '3.2', not {other:?}"
            )),
        }
    }

    /// The minor version.
    pub fn minor(self) -> i32 {
        match self {
            ProtocolVersion::V3_0 => 0,
            ProtocolVersion::V3_2 => 2,
        }
    }
}

/// The settings of one connection.
#[derive(Debug, Clone)]
pub struct Config {
    pub host: Host,
    pub user: String,
    pub password: Option<Vec<u8>>,
    pub database: Option<String>,
    pub application_name: String,
    pub connect_timeout: Option<Duration>,
    /// Sent as the `statement_timeout` startup option (milliseconds).
    pub statement_timeout: Option<Duration>,
    /// Largest message accepted once authenticated.
    pub max_message_len: usize,
    /// Most requests in flight on the socket at once (pipelining depth).
    pub pipeline_depth: usize,
    /// Chooses the result format of a column from its type OID, once per statement.
    pub result_format: fn(u32) -> crate::result::Format,
    /// TCP keepalive on every socket this connection opens (the session's and the cancel
    /// request's). A host that loses power or is partitioned sends nothing, no RST and no
    /// FIN; on an idle connection only keepalive probes notice. `None` leaves the OS default
    /// (usually off).
    pub keepalive: Option<Keepalive>,
    /// `TCP_USER_TIMEOUT` (Linux only; ignored elsewhere): how long written data may stay
    /// unacknowledged before the kernel gives up on the peer. Without it a socket with data
    /// in flight to a vanished host waits for the retransmission limit, about 15 minutes.
    /// A healthy server running a long statement still ACKs our bytes at the kernel level,
    /// so a long statement never trips it; only a peer that is gone does. `None` leaves the
    /// OS default.
    pub tcp_user_timeout: Option<Duration>,
    /// TLS: mode, certificates, negotiation. Default: `sslmode=prefer` (as libpq), system
    /// roots, SSLRequest negotiation. See [`crate::ssl`].
    pub ssl: SslConfig,
    /// SCRAM channel binding (`channel_binding`). Default: prefer.
    pub channel_binding: ChannelBindingMode,
    /// Which authentication methods the client answers (`require_auth`). Default (unset):
    /// every method except a cleartext password over a connection without TLS, which libpq
    /// would send and this client refuses. See [`crate::auth::policy`].
    pub require_auth: RequireAuth,
    /// Most prepared statements kept per connection; the least recently used is closed to
    /// make room ([`crate::statement_cache`]).
    pub statement_cache_size: usize,
    /// The newest protocol version asked for (default 3.0).
    pub max_protocol_version: ProtocolVersion,
    /// Where a plain TCP connection's protocol loop runs; `None`: on the tokio runtime
    /// ([`crate::runner`]).
    #[cfg(feature = "driver")]
    pub runner: Option<crate::runner::Runner>,
}

/// TCP keepalive timing: after `idle` without traffic, a probe every `interval`; after
/// `retries` unanswered probes the kernel closes the socket (so a dead idle peer is seen
/// within `idle + interval * retries`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    pub idle: Duration,
    pub interval: Duration,
    pub retries: u32,
}

impl Default for Keepalive {
    /// 5 s idle, then 3 probes 2 s apart: a dead idle peer is seen within about 11 s, in
    /// line with a failover that takes seconds, while costing a few bytes every 5 s.
    fn default() -> Self {
        Keepalive {
            idle: Duration::from_secs(5),
            interval: Duration::from_secs(2),
            retries: 3,
        }
    }
}

impl Config {
    pub fn new(host: Host, user: impl Into<String>) -> Self {
        Config {
            host,
            user: user.into(),
            password: None,
            database: None,
            application_name: "hyperiondb-client".into(),
            connect_timeout: Some(DEFAULT_CONNECT_TIMEOUT),
            statement_timeout: None,
            max_message_len: crate::backend::DEFAULT_MAX_MESSAGE_LEN,
            pipeline_depth: 128,
            result_format: |_| crate::result::Format::Text,
            keepalive: Some(Keepalive::default()),
            // 10 s of unacknowledged data: about the keepalive bound above, so a peer that
            // vanished mid-request is seen as fast as an idle one.
            tcp_user_timeout: Some(Duration::from_secs(10)),
            ssl: SslConfig::default(),
            channel_binding: ChannelBindingMode::default(),
            require_auth: RequireAuth::default(),
            statement_cache_size: crate::statement_cache::DEFAULT_STATEMENT_CACHE_SIZE,
            max_protocol_version: ProtocolVersion::V3_0,
            #[cfg(feature = "driver")]
            runner: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_strings() {
        let h = |s| Host::parse(s, 5432);
        assert_eq!(
            h("10.0.0.1").unwrap(),
            Host {
                host: "10.0.0.1".into(),
                port: 5432
            }
        );
        assert_eq!(
            h("10.0.0.1:5433").unwrap(),
            Host {
                host: "10.0.0.1".into(),
                port: 5433
            }
        );
        assert_eq!(
            h("[::1]:5433").unwrap(),
            Host {
                host: "::1".into(),
                port: 5433
            }
        );
        assert_eq!(
            h("[::1]").unwrap(),
            Host {
                host: "::1".into(),
                port: 5432
            }
        );
        assert_eq!(
            h("::1").unwrap(),
            Host {
                host: "::1".into(),
                port: 5432
            }
        );
        assert_eq!(h("db.example").unwrap().to_string(), "db.example:5432");
        assert_eq!(h("[::1]:7").unwrap().to_string(), "[::1]:7");
        let sock = h("/var/run/postgresql").unwrap();
        assert!(sock.is_unix_socket());
        assert_eq!(sock.port, 5432);
        assert_eq!(
            sock.socket_path().unwrap(),
            std::path::PathBuf::from("/var/run/postgresql/.s.PGSQL.5432")
        );
        let sock = h("/tmp:5433").unwrap();
        assert_eq!((sock.host.as_str(), sock.port), ("/tmp", 5433));
        assert_eq!(Host::parse(&sock.to_string(), 1).unwrap(), sock);
        assert_eq!(h("/a:b/c").unwrap().host, "/a:b/c");
        assert!(h("/tmp:0").is_err());
        assert!(!h("db.example").unwrap().is_unix_socket());
        assert_eq!(h("db.example").unwrap().socket_path(), None);
        for bad in [
            "", "[::1", "[]:5", "[::1]x", "h:0", "h:99999", "h:port", ":5432",
        ] {
            assert!(h(bad).is_err(), "{bad}");
        }
    }
}
