//! Where a pool's connection settings come from, and in what order they win: explicit
//! options, then a connection string, then the PG* environment variables, then the defaults
//! (and, for a password nothing gave, `~/.pgpass`), as libpq does.
//!
//! Each source is a [`Settings`] (every field optional); [`Settings::over`] layers one on
//! another; [`Settings::resolve`] fills in the defaults, reads certificate files and the
//! password file, and checks that the result can work. Keyword meanings are libpq's.

use crate::config::{Mode, PoolConfig};
use hyperion_wire::{ChannelBindingMode, Host, RequireAuth, SslConfig, SslMode, SslNegotiation};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A certificate or key option (`sslrootcert`, `sslcert`, `sslkey`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pem {
    /// A file to read at [`Settings::resolve`].
    Path(String),
    /// PEM text given inline.
    Text(Vec<u8>),
    /// `sslrootcert=system`: the operating system's roots (the default without a root cert;
    /// libpq then also insists on `verify-full`).
    System,
}

impl Pem {
    /// A string option: PEM text when it holds a PEM header, else a file path.
    pub fn from_option(s: &str) -> Pem {
        if s.contains("-----BEGIN") {
            Pem::Text(s.as_bytes().to_vec())
        } else {
            Pem::Path(s.to_owned())
        }
    }

    fn read(&self, option: &str) -> Result<Option<Vec<u8>>, String> {
        match self {
            Pem::Text(t) => Ok(Some(t.clone())),
            Pem::System => Ok(None),
            Pem::Path(p) => std::fs::read(expand_home(p))
                .map(Some)
                .map_err(|e| format!("{option}: cannot read {p:?}: {e}")),
        }
    }
}

fn expand_home(p: &str) -> PathBuf {
    match (p.strip_prefix("~/"), home_dir()) {
        (Some(rest), Some(home)) => home.join(rest),
        _ => PathBuf::from(p),
    }
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// The connection settings one source gives; `None`: this source does not say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// Hosts: `host`, `host:port`, `[v6]:port` or a socket directory; an empty entry is the
    /// default host.
    pub hosts: Option<Vec<String>>,
    /// libpq's `port` list: none, one for every host, or one per host (an empty entry is the
    /// default port).
    pub ports: Option<Vec<String>>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
    pub application_name: Option<String>,
    /// Used when no `application_name` is given (libpq's `fallback_application_name`).
    pub fallback_application_name: Option<String>,
    pub mode: Option<Mode>,
    pub connect_timeout: Option<Duration>,
    pub ssl_mode: Option<SslMode>,
    pub ssl_root_cert: Option<Pem>,
    pub ssl_cert: Option<Pem>,
    pub ssl_key: Option<Pem>,
    pub ssl_negotiation: Option<SslNegotiation>,
    /// The name checked against the server's certificate instead of the host.
    pub server_name: Option<String>,
    pub channel_binding: Option<ChannelBindingMode>,
    pub require_auth: Option<RequireAuth>,
    /// The password file (`passfile`, PGPASSFILE). Default `~/.pgpass`.
    pub passfile: Option<String>,
    /// libpq 18's `max_protocol_version`: `3.0` (default) or `3.2`.
    pub max_protocol_version: Option<hyperion_wire::ProtocolVersion>,
}

/// The environment variables read, and the keyword each stands for (libpq's names). The
/// security policies among them (channel binding, the authentication methods allowed, direct
/// TLS) too: a deployment hardened the libpq way, with PGCHANNELBINDING=require or
/// PGREQUIREAUTH=scram-sha-256, must not lose that here without a word. (PGSSLCERT and
/// PGSSLKEY are not read: libpq goes on without a client certificate whose file is missing,
/// and reads a default key beside one given alone, neither of which this client does.)
pub const ENVIRONMENT: [(&str, &str); 14] = [
    ("PGHOST", "host"),
    ("PGPORT", "port"),
    ("PGUSER", "user"),
    ("PGPASSWORD", "password"),
    ("PGDATABASE", "dbname"),
    ("PGAPPNAME", "application_name"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGPASSFILE", "passfile"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGREQUIREAUTH", "require_auth"),
    ("PGSSLNEGOTIATION", "sslnegotiation"),
];

/// The default host, for a host list that names none (or an empty entry): `localhost` over
/// TCP, as node-postgres and postgres.js (libpq's default is its compiled-in socket directory).
pub const DEFAULT_HOST: &str = "localhost";
pub const DEFAULT_PORT: u16 = 5432;

/// Socket directories libpq is commonly built with: a `localhost` line of a password file
/// matches them too, as libpq matches its own default directory.
const DEFAULT_SOCKET_DIRS: [&str; 3] = ["/tmp", "/var/run/postgresql", "/run/postgresql"];

impl Settings {
    /// The settings of a connection string (URI or keyword/value), `origin` naming it in
    /// errors.
    pub fn from_connection_string(s: &str) -> Result<Settings, String> {
        Settings::from_keywords(crate::connstr::parse(s)?, "connection string")
    }

    /// The PG* environment variables, through `get` (the process's environment, or a test's).
    /// Empty variables are ignored.
    pub fn from_environment(get: &dyn Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let pairs = ENVIRONMENT
            .iter()
            .filter_map(|(var, key)| {
                get(var)
                    .filter(|v| !v.is_empty())
                    .map(|v| (key.to_string(), v))
            })
            .collect();
        Settings::from_keywords(pairs, "environment").map_err(|e| {
            // Name the variable, not the keyword.
            ENVIRONMENT.iter().fold(e, |e, (var, key)| {
                e.replacen(
                    &format!("environment: {key}"),
                    &format!("environment: {var}"),
                    1,
                )
            })
        })
    }

    /// Settings from libpq keywords. An unknown or unsupported keyword is an error.
    pub fn from_keywords(pairs: Vec<(String, String)>, origin: &str) -> Result<Settings, String> {
        let mut s = Settings::default();
        for (key, value) in pairs {
            s.keyword(&key, value)
                .map_err(|e| format!("{origin}: {key}: {e}"))?;
        }
        Ok(s)
    }

    fn keyword(&mut self, key: &str, v: String) -> Result<(), String> {
        let list = |v: &str| v.split(',').map(|s| s.trim().to_owned()).collect();
        match key {
            "host" => self.hosts = Some(list(&v)),
            "port" => self.ports = Some(list(&v)),
            "user" => self.user = Some(v),
            "password" => self.password = Some(v),
            "dbname" => self.database = Some(v).filter(|d| !d.is_empty()),
            "application_name" => self.application_name = Some(v),
            "fallback_application_name" => self.fallback_application_name = Some(v),
            "target_session_attrs" => self.mode = Some(target_session_attrs(&v)?),
            "connect_timeout" => self.connect_timeout = connect_timeout(&v)?,
            "sslmode" => self.ssl_mode = Some(SslMode::parse(&v)?),
            "sslrootcert" if v == "system" => self.ssl_root_cert = Some(Pem::System),
            "sslrootcert" => self.ssl_root_cert = Some(Pem::Path(v)),
            "sslcert" => self.ssl_cert = Some(Pem::Path(v)),
            "sslkey" => self.ssl_key = Some(Pem::Path(v)),
            "sslnegotiation" => self.ssl_negotiation = Some(SslNegotiation::parse(&v)?),
            "channel_binding" => self.channel_binding = Some(ChannelBindingMode::parse(&v)?),
            "require_auth" => self.require_auth = Some(RequireAuth::parse(&v)?),
            "passfile" => self.passfile = Some(v),
            "max_protocol_version" => {
                self.max_protocol_version = Some(hyperion_wire::ProtocolVersion::parse(&v)?)
            }
            // Accepted because they ask for nothing this client does not do anyway.
            "client_encoding" if v.eq_ignore_ascii_case("utf8") => {}
            "gssencmode" if v == "disable" || v == "prefer" => {}
            _ => return Err(unsupported(key)),
        }
        Ok(())
    }

    /// `self`, with what it does not say taken from `lower`. Hosts and their ports travel
    /// together: a lower source's per-host port list does not apply to this one's hosts
    /// (a single port does, as with libpq's PGPORT).
    pub fn over(self, lower: Settings) -> Settings {
        let lower_ports = match (&self.hosts, lower.ports) {
            (Some(_), Some(p)) if p.len() > 1 => None,
            (_, p) => p,
        };
        Settings {
            hosts: self.hosts.or(lower.hosts),
            ports: self.ports.or(lower_ports),
            user: self.user.or(lower.user),
            password: self.password.or(lower.password),
            database: self.database.or(lower.database),
            application_name: self.application_name.or(lower.application_name),
            fallback_application_name: self
                .fallback_application_name
                .or(lower.fallback_application_name),
            mode: self.mode.or(lower.mode),
            connect_timeout: self.connect_timeout.or(lower.connect_timeout),
            ssl_mode: self.ssl_mode.or(lower.ssl_mode),
            ssl_root_cert: self.ssl_root_cert.or(lower.ssl_root_cert),
            ssl_cert: self.ssl_cert.or(lower.ssl_cert),
            ssl_key: self.ssl_key.or(lower.ssl_key),
            ssl_negotiation: self.ssl_negotiation.or(lower.ssl_negotiation),
            server_name: self.server_name.or(lower.server_name),
            channel_binding: self.channel_binding.or(lower.channel_binding),
            require_auth: self.require_auth.or(lower.require_auth),
            passfile: self.passfile.or(lower.passfile),
            max_protocol_version: self.max_protocol_version.or(lower.max_protocol_version),
        }
    }

    /// The pool configuration these settings make, with every default filled in. `env` is
    /// consulted for the operating-system user (the default `user`) and HOME (`~/.pgpass`).
    /// Also returns warnings (a password file ignored for its permissions).
    pub fn resolve(
        self,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(PoolConfig, Vec<String>), String> {
        let mut warnings = Vec::new();
        let hosts = self.resolve_hosts()?;
        let user = match self.user.filter(|u| !u.is_empty()) {
            Some(u) => u,
            None => env("USER")
                .or_else(|| env("LOGNAME"))
                .filter(|u| !u.is_empty())
                .ok_or("user is not given, and the operating system's user name is unknown")?,
        };
        let mut c = PoolConfig::new(hosts, user);
        c.database = self.database;
        if let Some(a) = self.application_name.or(self.fallback_application_name) {
            c.application_name = a;
        }
        if let Some(m) = self.mode {
            c.mode = m;
        }
        if let Some(t) = self.connect_timeout {
            c.connect_timeout = t;
        }
        c.ssl = ssl_config(
            self.ssl_mode,
            self.ssl_root_cert,
            self.ssl_cert,
            self.ssl_key,
            self.ssl_negotiation,
            self.server_name,
        )?;
        c.channel_binding = self.channel_binding.unwrap_or_default();
        c.require_auth = self.require_auth.unwrap_or_default();
        c.max_protocol_version = self.max_protocol_version.unwrap_or_default();
        c.password = self.password;
        if c.password.is_none() {
            let file = match self.passfile {
                Some(p) => Some(expand_home(&p)),
                None => env("HOME")
                    .filter(|h| !h.is_empty())
                    .map(|h| Path::new(&h).join(".pgpass")),
            };
            if let Some(file) = file {
                c.host_passwords = passwords_from_file(&file, &c, &mut warnings);
            }
        }
        Ok((c, warnings))
    }

    fn resolve_hosts(&self) -> Result<Vec<Host>, String> {
        let hosts = self
            .hosts
            .clone()
            .unwrap_or_else(|| vec![DEFAULT_HOST.into()]);
        let ports = self.ports.clone().unwrap_or_default();
        let port_at = |i: usize| -> Result<u16, String> {
            let p = match ports.len() {
                0 => return Ok(DEFAULT_PORT),
                1 => &ports[0],
                n if n == hosts.len() => &ports[i],
                n => {
                    return Err(format!(
                        "{n} ports for {} hosts: give one port for every host, or one per host",
                        hosts.len()
                    ))
                }
            };
            if p.is_empty() {
                return Ok(DEFAULT_PORT);
            }
            match p.parse::<u16>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(format!("invalid port {p:?}")),
            }
        };
        hosts
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let h = if h.is_empty() { DEFAULT_HOST } else { h };
                Host::parse(h, port_at(i)?)
            })
            .collect()
    }
}

/// `target_session_attrs` as a pool mode. libpq's `primary` checks only that the server is
/// not in recovery; a read-write pool also refuses a primary fenced read-only, which is what
/// a client asking for the primary wants. `read-only` here means a standby.
fn target_session_attrs(v: &str) -> Result<Mode, String> {
    match v {
        "read-write" | "primary" => Ok(Mode::ReadWrite),
        "read-only" | "standby" => Ok(Mode::ReadOnly),
        "prefer-standby" => Ok(Mode::PreferStandby),
        "any" => Ok(Mode::Any),
        _ => Err(format!(
            "{v:?}: expected read-write, primary, read-only, standby, prefer-standby or any"
        )),
    }
}

/// `connect_timeout` in seconds, as libpq: 0 or less means no timeout there, here the
/// default (a connect is always bounded); 1 is taken as 2, as libpq does.
fn connect_timeout(v: &str) -> Result<Option<Duration>, String> {
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| format!("{v:?}: expected a whole number of seconds"))?;
    Ok(match n {
        ..=0 => None,
        1 => Some(Duration::from_secs(2)),
        n => Some(Duration::from_secs(n.unsigned_abs())),
    })
}

fn unsupported(key: &str) -> String {
    const KNOWN_LIBPQ: [&str; 17] = [
        "hostaddr",
        "options",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "replication",
        "gssencmode",
        "sslcompression",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "sslpassword",
        "requirepeer",
        "ssl_min_protocol_version",
        "client_encoding",
    ];
    if KNOWN_LIBPQ.contains(&key) {
        "not supported by this client (or not with this value)".into()
    } else {
        "unknown connection parameter".into()
    }
}

/// The TLS settings, checked as libpq checks them.
fn ssl_config(
    mode: Option<SslMode>,
    root: Option<Pem>,
    cert: Option<Pem>,
    key: Option<Pem>,
    negotiation: Option<SslNegotiation>,
    server_name: Option<String>,
) -> Result<SslConfig, String> {
    // libpq: sslrootcert=system makes verify-full the default and refuses weaker modes.
    let system = root == Some(Pem::System);
    let mode = match (mode, system) {
        (None, true) => SslMode::VerifyFull,
        (Some(m), true) if m != SslMode::VerifyFull => {
            return Err(format!(
                "sslmode {} is not allowed with sslrootcert=system (use verify-full)",
                m.name()
            ))
        }
        (m, _) => m.unwrap_or_default(),
    };
    let c = SslConfig {
        mode,
        root_cert: root.map(|r| r.read("sslrootcert")).transpose()?.flatten(),
        client_cert: cert.map(|r| r.read("sslcert")).transpose()?.flatten(),
        client_key: key.map(|r| r.read("sslkey")).transpose()?.flatten(),
        negotiation: negotiation.unwrap_or_default(),
        server_name,
    };
    c.validate()?;
    Ok(c)
}

/// The password of each host from a libpq password file (`host:port:database:user:password`
/// lines, `*` matching anything, `\` escaping `:` and `\`; the first matching line wins). A
/// file that others may read is ignored, as libpq does, with a warning.
fn passwords_from_file(
    file: &Path,
    c: &PoolConfig,
    warnings: &mut Vec<String>,
) -> Vec<(Host, String)> {
    let Ok(meta) = std::fs::metadata(file) else {
        return Vec::new();
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            warnings.push(format!(
                "password file {} has group or world access; it is ignored (chmod 0600 it)",
                file.display()
            ));
            return Vec::new();
        }
    }
    if !meta.is_file() {
        return Vec::new();
    }
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    let entries: Vec<Vec<String>> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(pgpass_fields)
        .collect();
    // libpq's default database is the user's name.
    let database = c.database.as_deref().unwrap_or(&c.user);
    c.hosts
        .iter()
        .filter_map(|h| {
            let port = h.port.to_string();
            entries
                .iter()
                .find(|e| {
                    let is = |field: &str, v: &str| field == "*" || field == v;
                    pgpass_host_matches(&e[0], h)
                        && is(&e[1], &port)
                        && is(&e[2], database)
                        && is(&e[3], &c.user)
                })
                .map(|e| (h.clone(), e[4].clone()))
        })
        .collect()
}

/// The five fields of a password file line, unescaped; `None` for a malformed line.
fn pgpass_fields(line: &str) -> Option<Vec<String>> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => fields.last_mut()?.extend(chars.next()),
            // The password is the rest of the line (libpq takes it whole, colons included).
            ':' if fields.len() < 5 => fields.push(String::new()),
            ch => fields.last_mut()?.push(ch),
        }
    }
    (fields.len() == 5).then_some(fields)
}

fn pgpass_host_matches(field: &str, h: &Host) -> bool {
    field == "*"
        || field == h.host
        || (field == "localhost"
            && h.is_unix_socket()
            && DEFAULT_SOCKET_DIRS.contains(&h.host.trim_end_matches('/')))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn resolve(s: Settings) -> PoolConfig {
        let env = |k: &str| (k == "USER").then(|| "osuser".to_string());
        s.resolve(&env).unwrap().0
    }

    #[test]
    fn connection_strings_become_pool_settings() {
        let s = Settings::from_connection_string(
            "postgres://app:pw@h1:5432,h2:5433,[::1]:5434/db?target_session_attrs=read-write&sslmode=require&connect_timeout=7&application_name=x",
        )
        .unwrap();
        let c = resolve(s);
        let hosts: Vec<String> = c.hosts.iter().map(|h| h.to_string()).collect();
        assert_eq!(hosts, ["h1:5432", "h2:5433", "[::1]:5434"]);
        assert_eq!(c.user, "app");
        assert_eq!(c.password.as_deref(), Some("pw"));
        assert_eq!(c.database.as_deref(), Some("db"));
        assert_eq!(c.mode, Mode::ReadWrite);
        assert_eq!(c.ssl.mode, SslMode::Require);
        assert_eq!(c.connect_timeout, Duration::from_secs(7));
        assert_eq!(c.application_name, "x");
        assert_eq!(c.max_protocol_version, hyperion_wire::ProtocolVersion::V3_0);
    }

    #[test]
    fn max_protocol_version_from_a_string() {
        let v = |cs: &str| {
            Settings::from_connection_string(cs).map(|s| resolve(s).max_protocol_version)
        };
        assert_eq!(
            v("host=a max_protocol_version=3.2").unwrap(),
            hyperion_wire::ProtocolVersion::V3_2
        );
        assert_eq!(
            v("postgres://a/?max_protocol_version=latest").unwrap(),
            hyperion_wire::ProtocolVersion::V3_2
        );
        assert!(v("host=a max_protocol_version=3.1").is_err());
    }

    #[test]
    fn multi_host_port_rules() {
        let hosts = |s: &str| {
            Settings::from_connection_string(s)
                .and_then(|s| s.resolve(&|_| Some("u".into())))
                .map(|(c, _)| c.hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(hosts("host=a,b port=6000").unwrap(), ["a:6000", "b:6000"]);
        assert_eq!(
            hosts("host=a,b port=6000,6001").unwrap(),
            ["a:6000", "b:6001"]
        );
        assert_eq!(hosts("host=a,b").unwrap(), ["a:5432", "b:5432"]);
        assert_eq!(
            hosts("host=a,,b port=1,,3").unwrap(),
            ["a:1", "localhost:5432", "b:3"]
        );
        assert_eq!(hosts("dbname=x").unwrap(), ["localhost:5432"]);
        assert_eq!(hosts("postgres://").unwrap(), ["localhost:5432"]);
        assert_eq!(
            hosts("host=/var/run/postgresql port=5433").unwrap(),
            ["/var/run/postgresql:5433"]
        );
        assert_eq!(
            hosts("postgresql://%2Fvar%2Frun%2Fpostgresql/db").unwrap(),
            ["/var/run/postgresql:5432"]
        );
        assert!(hosts("host=a,b,c port=1,2")
            .unwrap_err()
            .contains("2 ports for 3 hosts"));
        assert!(hosts("host=a port=0").is_err());
        assert!(hosts("host=a port=x").is_err());
    }

    #[test]
    fn keywords_are_checked() {
        for (s, needle) in [
            ("target_session_attrs=primary", ""),
            ("target_session_attrs=standby", ""),
            ("target_session_attrs=readwrite", "target_session_attrs"),
            ("sslmode=allow", "sslmode"),
            ("channel_binding=maybe", "channel_binding"),
            ("require_auth=kerberos", "require_auth"),
            ("require_auth=md5,!password", "require_auth"),
            ("connect_timeout=soon", "connect_timeout"),
            ("sslnegotiation=tls", "sslnegotiation"),
            ("options=-cgeqo=off", "not supported"),
            ("colour=blue", "unknown connection parameter"),
        ] {
            let r = Settings::from_connection_string(s);
            if needle.is_empty() {
                assert!(r.is_ok(), "{s}: {r:?}");
            } else {
                let e = r.unwrap_err();
                assert!(
                    e.contains(needle) && e.starts_with("connection string: "),
                    "{s}: {e}"
                );
            }
        }
        let m = |v: &str| {
            Settings::from_connection_string(&format!("target_session_attrs={v}"))
                .unwrap()
                .mode
        };
        assert_eq!(m("primary"), Some(Mode::ReadWrite));
        assert_eq!(m("standby"), Some(Mode::ReadOnly));
        assert_eq!(m("prefer-standby"), Some(Mode::PreferStandby));
        assert_eq!(m("any"), Some(Mode::Any));
        let t = |v: &str| {
            Settings::from_connection_string(&format!("connect_timeout={v}"))
                .unwrap()
                .connect_timeout
        };
        assert_eq!(t("0"), None);
        assert_eq!(t("1"), Some(Duration::from_secs(2)));
        assert_eq!(t("10"), Some(Duration::from_secs(10)));
    }

    #[test]
    fn the_environment_carries_the_security_policies_too() {
        let env = |k: &str| {
            Some(
                match k {
                    "PGCHANNELBINDING" => "require",
                    "PGREQUIREAUTH" => "scram-sha-256",
                    "PGSSLMODE" => "verify-full",
                    "PGSSLNEGOTIATION" => "direct",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let s = Settings::from_environment(&env).unwrap();
        assert_eq!(s.channel_binding, Some(ChannelBindingMode::Require));
        assert_eq!(
            s.require_auth,
            Some(RequireAuth::parse("scram-sha-256").unwrap())
        );
        assert_eq!(s.ssl_negotiation, Some(SslNegotiation::Direct));
        // A bad value names the variable.
        let bad = |k: &str| (k == "PGCHANNELBINDING").then(|| "maybe".to_string());
        let e = Settings::from_environment(&bad).unwrap_err();
        assert!(e.contains("PGCHANNELBINDING"), "{e}");
    }

    #[test]
    fn explicit_over_string_over_environment() {
        let env = |k: &str| {
            Some(
                match k {
                    "PGHOST" => "envhost",
                    "PGPORT" => "6000",
                    "PGUSER" => "envuser",
                    "PGPASSWORD" => "envpw",
                    "PGDATABASE" => "envdb",
                    "PGSSLMODE" => "require",
                    "PGTARGETSESSIONATTRS" => "standby",
                    "PGCONNECT_TIMEOUT" => "9",
                    "PGAPPNAME" => "envapp",
                    _ => return None,
                }
                .to_string(),
            )
        };
        let environment = Settings::from_environment(&env).unwrap();
        let only_env = resolve(environment.clone());
        assert_eq!(only_env.hosts[0].to_string(), "envhost:6000");
        assert_eq!(only_env.user, "envuser");
        assert_eq!(only_env.password.as_deref(), Some("envpw"));
        assert_eq!(only_env.database.as_deref(), Some("envdb"));
        assert_eq!(only_env.ssl.mode, SslMode::Require);
        assert_eq!(only_env.mode, Mode::ReadOnly);
        assert_eq!(only_env.connect_timeout, Duration::from_secs(9));
        assert_eq!(only_env.application_name, "envapp");

        let string = Settings::from_connection_string("postgres://struser@a,b/strdb").unwrap();
        let c = resolve(string.clone().over(environment.clone()));
        let hosts: Vec<String> = c.hosts.iter().map(|h| h.to_string()).collect();
        // PGPORT (one port) applies to the string's hosts, as in libpq.
        assert_eq!(hosts, ["a:6000", "b:6000"]);
        assert_eq!(
            (c.user.as_str(), c.database.as_deref()),
            ("struser", Some("strdb"))
        );
        assert_eq!(c.password.as_deref(), Some("envpw"));

        let explicit = Settings {
            hosts: Some(vec!["x:7".into()]),
            user: Some("me".into()),
            ssl_mode: Some(SslMode::Disable),
            ..Settings::default()
        };
        let c = resolve(explicit.over(string.over(environment)));
        assert_eq!(c.hosts[0].to_string(), "x:7");
        assert_eq!(c.user, "me");
        assert_eq!(c.ssl.mode, SslMode::Disable);

        // A string's per-host ports do not apply to explicit hosts.
        let string = Settings::from_connection_string("postgres://h1:1,h2:2/db").unwrap();
        let explicit = Settings {
            hosts: Some(vec!["x".into()]),
            ..Settings::default()
        };
        assert_eq!(
            resolve(explicit.over(string)).hosts[0].to_string(),
            "x:5432"
        );

        assert!(
            Settings::from_environment(&|k| (k == "PGSSLMODE").then(|| "yes".into()))
                .unwrap_err()
                .starts_with("environment: PGSSLMODE: ")
        );
        // No user anywhere: the operating system's.
        assert_eq!(resolve(Settings::default()).user, "osuser");
        assert!(Settings::default().resolve(&no_env).is_err());
    }

    #[test]
    fn tls_options() {
        let e =
            Settings::from_connection_string("sslrootcert=/nonexistent/ca.pem sslmode=verify-ca")
                .unwrap()
                .resolve(&|_| Some("u".into()))
                .unwrap_err();
        assert!(
            e.starts_with("sslrootcert: cannot read \"/nonexistent/ca.pem\""),
            "{e}"
        );
        let sys = resolve(Settings::from_connection_string("sslrootcert=system").unwrap());
        assert_eq!(
            (sys.ssl.mode, sys.ssl.root_cert.is_none()),
            (SslMode::VerifyFull, true)
        );
        assert!(
            Settings::from_connection_string("sslrootcert=system sslmode=require")
                .unwrap()
                .resolve(&|_| Some("u".into()))
                .is_err()
        );
        assert!(Settings::from_connection_string("sslnegotiation=direct")
            .unwrap()
            .resolve(&|_| Some("u".into()))
            .unwrap_err()
            .contains("sslnegotiation=direct"));
        let pem = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n";
        assert_eq!(Pem::from_option(pem), Pem::Text(pem.as_bytes().to_vec()));
        assert_eq!(Pem::from_option("ca.pem"), Pem::Path("ca.pem".into()));
    }

    #[test]
    fn password_file_lines_and_matching() {
        assert_eq!(
            pgpass_fields("h:5432:db:u:p:w\\:x").unwrap(),
            ["h", "5432", "db", "u", "p:w:x"]
        );
        assert_eq!(
            pgpass_fields("a\\:b:*:*:u\\\\:pw").unwrap(),
            ["a:b", "*", "*", "u\\", "pw"]
        );
        assert_eq!(pgpass_fields("h:5432:db:u"), None);

        let dir = std::env::temp_dir().join(format!("hyperion-pgpass-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("pgpass");
        std::fs::write(
            &file,
            "# comment\n\
             h1:5432:db:app:one\n\
             h2:*:*:app:two\n\
             *:*:other:app:never\n\
             localhost:5432:*:app:sock\n\
             *:*:*:someone:else\n",
        )
        .unwrap();
        let settings = |hosts: &str| Settings {
            passfile: Some(file.to_string_lossy().into_owned()),
            ..Settings::from_connection_string(&format!("host={hosts} user=app dbname=db")).unwrap()
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let (c, warnings) = settings("h1,h2,h3,/tmp,/elsewhere")
            .resolve(&no_env)
            .unwrap();
        assert!(warnings.is_empty());
        let got: Vec<(String, &str)> = c
            .host_passwords
            .iter()
            .map(|(h, p)| (h.to_string(), p.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("h1:5432".to_string(), "one"),
                ("h2:5432".to_string(), "two"),
                ("/tmp:5432".to_string(), "sock"),
            ]
        );
        // The password a host's connection gets; an explicit one wins over the file.
        assert_eq!(
            c.connection(&c.hosts[1]).password.as_deref(),
            Some(&b"two"[..])
        );
        assert_eq!(c.connection(&c.hosts[2]).password, None);
        let explicit = Settings {
            password: Some("given".into()),
            ..settings("h1")
        };
        assert!(explicit
            .resolve(&no_env)
            .unwrap()
            .0
            .host_passwords
            .is_empty());

        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
            let (c, warnings) = settings("h1").resolve(&no_env).unwrap();
            assert!(c.host_passwords.is_empty());
            assert!(
                warnings[0].contains("group or world access"),
                "{warnings:?}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
