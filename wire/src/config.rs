//! What one connection needs to know to start.

use std::time::Duration;

/// Where to connect: a host name or IP literal (IPv6 without brackets) and a port.
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

fn parse_port(p: &str, whole: &str) -> Result<u16, String> {
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("host {whole:?}: invalid port {p:?}")),
        Ok(n) => Ok(n),
    }
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
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
    pub result_format: fn(u32) -> crate::connection::Format,
}

impl Config {
    pub fn new(host: Host, user: impl Into<String>) -> Self {
        Config {
            host,
            user: user.into(),
            password: None,
            database: None,
            application_name: "hyperiondb-client".into(),
            connect_timeout: Some(Duration::from_secs(10)),
            statement_timeout: None,
            max_message_len: crate::backend::DEFAULT_MAX_MESSAGE_LEN,
            pipeline_depth: 128,
            result_format: |_| crate::connection::Format::Text,
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
        for bad in [
            "", "[::1", "[]:5", "[::1]x", "h:0", "h:99999", "h:port", ":5432",
        ] {
            assert!(h(bad).is_err(), "{bad}");
        }
    }
}
