//! `createPool`'s options: which names exist (an unknown one is an error that names the right
//! one), node-postgres's `ssl` option mapped onto libpq's, and the layering of explicit
//! options over a connection string over the PG* environment (`hyperion_pool::settings`).

use hyperion_pool::{Mode, Pem, PoolConfig, RetryPolicy, Settings};
use hyperion_wire::{ChannelBindingMode, RequireAuth, SslMode, SslNegotiation};
use napi::bindgen_prelude::{Buffer, Either};
use napi::Env;
use napi_derive::napi;
use std::collections::HashMap;
use std::time::Duration;

/// Options as `client.js` passes them (type-checked there; `names` are the keys the caller
/// gave, checked here).
#[napi(object)]
pub struct PoolOptions {
    pub names: Vec<String>,
    pub connection_string: Option<String>,
    pub hosts: Option<Vec<String>>,
    pub port: Option<u32>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub database: Option<String>,
    pub application_name: Option<String>,
    pub mode: Option<String>,
    pub pool_size: Option<u32>,
    pub connect_timeout_ms: Option<u32>,
    pub acquire_timeout_ms: Option<u32>,
    pub statement_timeout_ms: Option<u32>,
    pub validation_interval_ms: Option<u32>,
    /// The keys the caller gave in `retry` (checked here, as `names`).
    pub retry_names: Option<Vec<String>>,
    pub retry_max_attempts: Option<u32>,
    pub retry_base_delay_ms: Option<u32>,
    pub retry_max_delay_ms: Option<u32>,
    pub pipeline_depth: Option<u32>,
    pub statement_cache_size: Option<u32>,
    pub prepare: Option<bool>,
    /// `types.int8`: 'bigint' | 'number' | 'string' (read by `NativePool`, not the pool).
    pub int8: Option<String>,
    pub idle_timeout_ms: Option<u32>,
    pub min_connections: Option<u32>,
    pub max_lifetime_ms: Option<u32>,
    pub max_protocol_version: Option<String>,
    pub sslmode: Option<String>,
    pub sslrootcert: Option<Either<String, Buffer>>,
    pub sslcert: Option<Either<String, Buffer>>,
    pub sslkey: Option<Either<String, Buffer>>,
    pub sslnegotiation: Option<String>,
    pub channel_binding: Option<String>,
    pub require_auth: Option<String>,
    pub ssl: Option<Either<bool, PgSsl>>,
}

/// node-postgres's `ssl` object (Node's `tls.connect` options it passes on).
#[napi(object)]
pub struct PgSsl {
    /// The keys the caller gave, checked here.
    pub names: Vec<String>,
    pub ca: Option<Vec<Either<String, Buffer>>>,
    pub cert: Option<Either<String, Buffer>>,
    pub key: Option<Either<String, Buffer>>,
    pub reject_unauthorized: Option<bool>,
    pub servername: Option<String>,
}

/// Every option `createPool` takes (`logger`, `onEvent`, `onListenGap` and `onNotice` are
/// handled in JS).
const OPTIONS: [&str; 34] = [
    "connectionString",
    "hosts",
    "port",
    "user",
    "password",
    "database",
    "applicationName",
    "mode",
    "poolSize",
    "connectTimeoutMs",
    "acquireTimeoutMs",
    "statementTimeoutMs",
    "validationIntervalMs",
    "retry",
    "pipelineDepth",
    "statementCacheSize",
    "prepare",
    "types",
    "idleTimeoutMs",
    "minConnections",
    "maxLifetimeMs",
    "maxProtocolVersion",
    "logger",
    "onEvent",
    "onListenGap",
    "onNotice",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslnegotiation",
    "channelBinding",
    "requireAuth",
    "ssl",
];

/// Names other clients (node-postgres, postgres.js, libpq) use, and what to write instead.
fn alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "max" | "size" | "maxConnections" | "connectionLimit" => "use poolSize",
        "min" | "minIdle" => "use minConnections",
        "connectionTimeoutMillis" | "connectTimeout" | "connectionTimeout" => {
            "use connectTimeoutMs (milliseconds)"
        }
        "connect_timeout" => "use connectTimeoutMs (milliseconds, not seconds)",
        "idleTimeoutMillis" | "idle_timeout" | "idleTimeout" => {
            "use idleTimeoutMs (milliseconds)"
        }
        "max_lifetime" | "maxLifetime" | "maxLifetimeSeconds" => {
            "use maxLifetimeMs (milliseconds)"
        }
        "max_protocol_version" => "use maxProtocolVersion",
        "host" | "hostname" | "hostaddr" | "server" => "use hosts (a string or an array)",
        "statement_timeout" | "statementTimeout" => "use statementTimeoutMs",
        "query_timeout" | "queryTimeout" => {
            "use the timeoutMs option of pool.query(sql, params, { timeoutMs })"
        }
        "application_name" | "appName" => "use applicationName",
        "dbname" | "db" | "databaseName" => "use database",
        "username" => "use user",
        "pass" => "use password",
        "connection_string" | "url" | "uri" | "connectionURI" | "connectionUri" => {
            "use connectionString"
        }
        "target_session_attrs" | "targetSessionAttrs" | "target_session_attributes" => {
            "use mode ('read-write', 'read-only', 'prefer-standby' or 'any'), or target_session_attrs in connectionString"
        }
        "channel_binding" => "use channelBinding",
        "require_auth" => "use requireAuth",
        "keepAlive" | "keep_alive" | "keepAliveInitialDelayMillis" => {
            "not needed: TCP keepalive is always on (5 s idle)"
        }
        "allowExitOnIdle" => "not needed: an idle pool does not keep the process alive",
        "parsers" | "transform" => "not supported: types are decoded natively (see types.int8)",
        _ => return None,
    })
}

/// `name` is not an option: the error says what to write instead when it can.
fn unknown(name: &str, known: &[&str], what: &str) -> String {
    if let Some(hint) = alias(name) {
        return format!("unknown {what} {name:?}: {hint}");
    }
    // A near miss of a real name: case, '_' or '-', or a typo of one or two letters.
    let squash = |s: &str| s.replace(['_', '-'], "").to_ascii_lowercase();
    let near = known
        .iter()
        .find(|k| squash(k) == squash(name))
        .or_else(|| {
            known
                .iter()
                .min_by_key(|k| edit_distance(&squash(k), &squash(name)))
                .filter(|k| edit_distance(&squash(k), &squash(name)) <= 2)
        });
    match near {
        Some(k) => format!("unknown {what} {name:?}: did you mean {k}?"),
        None => format!(
            "unknown {what} {name:?} (the options are: {})",
            known.join(", ")
        ),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != b[j]))
                .min(row[j] + 1)
                .min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn check_names(names: &[String]) -> Result<(), String> {
    for n in names {
        if !OPTIONS.contains(&n.as_str()) {
            return Err(unknown(n, &OPTIONS, "option"));
        }
    }
    Ok(())
}

fn pem_of(v: Either<String, Buffer>) -> Pem {
    match v {
        Either::A(s) => Pem::from_option(&s),
        Either::B(b) => Pem::Text(b.to_vec()),
    }
}

fn text_of(v: Either<String, Buffer>) -> Vec<u8> {
    match v {
        Either::A(s) => s.into_bytes(),
        Either::B(b) => b.to_vec(),
    }
}

/// node-postgres's `ssl` as libpq settings. `true` (or an object) means TLS with the chain and
/// the host name checked (Node's `rejectUnauthorized` defaults to true): `verify-full`;
/// `rejectUnauthorized: false` means TLS without any check: `require` (and a given `ca` is
/// then not used, as Node does not check it either); `false`: `disable`. `ca`, `cert` and
/// `key` are PEM text (as for Node), never paths.
fn pg_ssl(ssl: Either<bool, PgSsl>, s: &mut Settings) -> Result<(), String> {
    let o = match ssl {
        Either::A(true) => {
            s.ssl_mode = Some(SslMode::VerifyFull);
            return Ok(());
        }
        Either::A(false) => {
            s.ssl_mode = Some(SslMode::Disable);
            return Ok(());
        }
        Either::B(o) => o,
    };
    const KEYS: [&str; 5] = ["ca", "cert", "key", "rejectUnauthorized", "servername"];
    for n in &o.names {
        if !KEYS.contains(&n.as_str()) {
            return Err(format!(
                "{}; for other TLS settings use sslmode and the ssl* options",
                unknown(n, &KEYS, "ssl option")
            ));
        }
    }
    let verify = o.reject_unauthorized != Some(false);
    s.ssl_mode = Some(if verify {
        SslMode::VerifyFull
    } else {
        SslMode::Require
    });
    if verify {
        if let Some(ca) = o.ca {
            let mut all = Vec::new();
            for c in ca {
                all.extend(text_of(c));
                all.push(b'\n');
            }
            s.ssl_root_cert = Some(Pem::Text(all));
        }
    }
    s.ssl_cert = o.cert.map(|c| Pem::Text(text_of(c)));
    s.ssl_key = o.key.map(|c| Pem::Text(text_of(c)));
    s.server_name = o.servername;
    Ok(())
}

/// The options' own layer: what the caller wrote in `createPool`.
fn explicit(o: &mut PoolOptions) -> Result<Settings, String> {
    let mut s = Settings {
        hosts: o.hosts.take(),
        ports: o.port.map(|p| vec![p.to_string()]),
        user: o.user.take(),
        password: o.password.take(),
        database: o.database.take(),
        application_name: o.application_name.take(),
        mode: o.mode.as_deref().map(Mode::parse).transpose()?,
        connect_timeout: o
            .connect_timeout_ms
            .map(|v| Duration::from_millis(u64::from(v))),
        ..Settings::default()
    };
    if let Some(ssl) = o.ssl.take() {
        let libpq_style = [
            ("sslmode", o.sslmode.is_some()),
            ("sslrootcert", o.sslrootcert.is_some()),
            ("sslcert", o.sslcert.is_some()),
            ("sslkey", o.sslkey.is_some()),
        ];
        if let Some((name, _)) = libpq_style.iter().find(|(_, given)| *given) {
            return Err(format!(
                "ssl (node-postgres's option) and {name} cannot be given together: use one or the other"
            ));
        }
        pg_ssl(ssl, &mut s)?;
    }
    // wire's messages use libpq's names; name the JS option where it differs.
    fn named<T>(name: &str, r: Result<T, String>) -> Result<T, String> {
        r.map_err(|e| format!("{name}: {e}"))
    }
    if let Some(m) = &o.sslmode {
        s.ssl_mode = Some(SslMode::parse(m)?);
    }
    if let Some(v) = o.sslrootcert.take() {
        s.ssl_root_cert = Some(match v {
            Either::A(t) if t == "system" => Pem::System,
            v => pem_of(v),
        });
    }
    s.ssl_cert = o.sslcert.take().map(pem_of).or(s.ssl_cert);
    s.ssl_key = o.sslkey.take().map(pem_of).or(s.ssl_key);
    if let Some(v) = &o.sslnegotiation {
        s.ssl_negotiation = Some(SslNegotiation::parse(v)?);
    }
    if let Some(v) = &o.channel_binding {
        s.channel_binding = Some(named("channelBinding", ChannelBindingMode::parse(v))?);
    }
    if let Some(v) = &o.require_auth {
        s.require_auth = Some(named("requireAuth", RequireAuth::parse(v))?);
    }
    Ok(s)
}

/// The pool configuration of `o`, with the connection string and the environment (`env`)
/// under it; and warnings for the caller to show.
pub fn config(
    mut o: PoolOptions,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(PoolConfig, Vec<String>), String> {
    check_names(&o.names)?;
    const RETRY: [&str; 3] = ["maxAttempts", "baseDelayMs", "maxDelayMs"];
    for n in o.retry_names.iter().flatten() {
        if !RETRY.contains(&n.as_str()) {
            return Err(unknown(n, &RETRY, "retry option"));
        }
    }
    let mut settings = explicit(&mut o)?;
    if let Some(cs) = &o.connection_string {
        settings = settings.over(Settings::from_connection_string(cs)?);
    }
    let settings = settings.over(Settings::from_environment(env)?);
    let (mut c, warnings) = settings.resolve(env)?;
    let ms = |v: u32| Duration::from_millis(u64::from(v));
    if let Some(n) = o.pool_size {
        c.pool_size = n as usize;
    }
    if let Some(v) = o.acquire_timeout_ms {
        c.acquire_timeout = ms(v);
    }
    c.statement_timeout = o.statement_timeout_ms.filter(|&v| v > 0).map(ms);
    if let Some(v) = o.validation_interval_ms {
        c.validation_interval = ms(v);
    }
    let d = RetryPolicy::default();
    c.retry = RetryPolicy {
        max_attempts: o.retry_max_attempts.unwrap_or(d.max_attempts),
        base_delay: o.retry_base_delay_ms.map(ms).unwrap_or(d.base_delay),
        max_delay: o.retry_max_delay_ms.map(ms).unwrap_or(d.max_delay),
    };
    if let Some(d) = o.pipeline_depth {
        c.pipeline_depth = (d as usize).max(1);
    }
    if let Some(n) = o.statement_cache_size {
        c.statement_cache_size = (n as usize).max(1);
    }
    if let Some(p) = o.prepare {
        c.prepare = p;
    }
    // 0: never.
    if let Some(v) = o.idle_timeout_ms {
        c.idle_timeout = (v > 0).then(|| ms(v));
    }
    if let Some(v) = o.max_lifetime_ms {
        c.max_lifetime = (v > 0).then(|| ms(v));
    }
    if let Some(n) = o.min_connections {
        c.min_connections = n as usize;
    }
    if let Some(v) = &o.max_protocol_version {
        c.max_protocol_version = hyperion_wire::ProtocolVersion::parse(v)?;
    }
    c.check_tls()?;
    Ok((c, warnings))
}

/// The process's environment.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// What a set of options resolves to, for tests and for checking a configuration without
/// connecting (`describeConfig` in index.js; not part of client.js's API).
#[napi(object)]
pub struct ConfigDescription {
    pub hosts: Vec<String>,
    pub user: String,
    pub password: Option<String>,
    /// `host:port=password` for each host whose password came from the password file.
    pub host_passwords: Vec<String>,
    pub database: Option<String>,
    pub application_name: String,
    pub mode: String,
    pub connect_timeout_ms: f64,
    pub pool_size: u32,
    pub sslmode: String,
    pub sslnegotiation: String,
    pub root_cert: Option<String>,
    pub client_cert: bool,
    pub server_name: Option<String>,
    pub channel_binding: String,
    pub require_auth: bool,
    /// '3.0' or '3.2'.
    pub max_protocol_version: String,
    pub statement_cache_size: u32,
    pub prepare: bool,
    /// `null`: never.
    pub idle_timeout_ms: Option<f64>,
    pub min_connections: u32,
    /// `null`: never.
    pub max_lifetime_ms: Option<f64>,
    pub warnings: Vec<String>,
}

/// Resolves `options` as `createPool` would, with `env` standing for the whole environment
/// (the process's when omitted). Throws `INVALID_CONFIG` as `createPool` does.
#[napi]
pub fn describe_config(
    env: Env,
    options: PoolOptions,
    environment: Option<HashMap<String, String>>,
) -> napi::Result<ConfigDescription> {
    let get = |k: &str| match &environment {
        Some(m) => m.get(k).cloned(),
        None => process_env(k),
    };
    let (c, warnings) = config(options, &get)
        .map_err(|m| crate::errors::Failure::client("INVALID_CONFIG", m).throw(&env))?;
    Ok(ConfigDescription {
        hosts: c.hosts.iter().map(|h| h.to_string()).collect(),
        user: c.user.clone(),
        password: c.password.clone(),
        host_passwords: c
            .host_passwords
            .iter()
            .map(|(h, p)| format!("{h}={p}"))
            .collect(),
        database: c.database.clone(),
        application_name: c.application_name.clone(),
        mode: c.mode.as_str().into(),
        connect_timeout_ms: c.connect_timeout.as_millis() as f64,
        pool_size: c.pool_size as u32,
        sslmode: c.ssl.mode.name().into(),
        sslnegotiation: format!("{:?}", c.ssl.negotiation).to_lowercase(),
        root_cert: c
            .ssl
            .root_cert
            .as_ref()
            .map(|r| String::from_utf8_lossy(r).into_owned()),
        client_cert: c.ssl.client_cert.is_some(),
        server_name: c.ssl.server_name.clone(),
        channel_binding: format!("{:?}", c.channel_binding).to_lowercase(),
        require_auth: c.require_auth.is_set(),
        max_protocol_version: format!("3.{}", c.max_protocol_version.minor()),
        statement_cache_size: u32::try_from(c.statement_cache_size).unwrap_or(u32::MAX),
        prepare: c.prepare,
        idle_timeout_ms: c.idle_timeout.map(|d| d.as_millis() as f64),
        min_connections: u32::try_from(c.min_connections).unwrap_or(u32::MAX),
        max_lifetime_ms: c.max_lifetime.map(|d| d.as_millis() as f64),
        warnings,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_options_name_the_right_one() {
        let e = |n: &str| check_names(&[n.to_string()]).unwrap_err();
        assert!(e("max").contains("use poolSize"));
        assert!(e("connectionTimeoutMillis").contains("use connectTimeoutMs"));
        assert!(e("idleTimeoutMillis").contains("use idleTimeoutMs"));
        assert!(e("min").contains("use minConnections"));
        assert!(e("host").contains("use hosts"));
        assert!(e("statement_timeout").contains("use statementTimeoutMs"));
        assert!(e("pool_size").contains("did you mean poolSize?"));
        assert!(e("passwrod").contains("did you mean password?"));
        assert!(e("sslMode").contains("did you mean sslmode?"));
        assert!(e("zzzzzzzzzz").contains("the options are: connectionString, hosts"));
        for ok in OPTIONS {
            assert!(check_names(&[ok.to_string()]).is_ok(), "{ok}");
        }
    }
}
