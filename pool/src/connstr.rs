//! Connection strings as libpq reads them, into libpq keyword/value pairs: a URI
//! (`postgresql://user:pw@h1:5432,h2/db?sslmode=verify-full`) or a keyword/value string
//! (`host=h1,h2 port=5432,5433 dbname=db`). Only syntax here; what each keyword means, and
//! which ones this client takes, is `settings.rs`.
//!
//! A URI's host list becomes the `host` and `port` keywords as libpq makes them: one entry
//! per host in each, a host without a port leaving its port entry empty (`port=5432,,5434`).

/// The keyword/value pairs of `s`, in order (a later pair for the same keyword wins).
pub fn parse(s: &str) -> Result<Vec<(String, String)>, String> {
    match uri_rest(s) {
        Some(rest) => parse_uri(rest),
        None => parse_keywords(s),
    }
}

/// What follows the scheme, for a URI.
fn uri_rest(s: &str) -> Option<&str> {
    let s = s.trim_start();
    ["postgresql://", "postgres://"]
        .iter()
        .find_map(|p| s.strip_prefix(p))
}

/// libpq's keyword/value syntax: `key = value` pairs separated by whitespace; a value in
/// single quotes may hold spaces; a backslash escapes the next character, quoted or not.
fn parse_keywords(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|&c| c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(format!(
                "connection string: missing \"=\" after {key:?} (a URI starts with postgresql:// or postgres://)"
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => {
                        return Err(format!(
                            "connection string: unterminated quoted value of {key:?}"
                        ))
                    }
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        out.push((key, value));
    }
}

/// `[user[:password]@][host[:port][,...]][/dbname][?key=value&...]`, as libpq reads it.
fn parse_uri(rest: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    // The credentials end at the last '@' before the path or the parameters, so an
    // unencoded '@' in a password still parses (RFC 3986 wants it encoded).
    let netloc_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let mut rest = match rest[..netloc_end].rfind('@') {
        Some(at) => {
            let (user, password) = match rest[..at].split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (&rest[..at], None),
            };
            if !user.is_empty() {
                out.push(("user".into(), decode(user, "user")?));
            }
            if let Some(p) = password {
                out.push(("password".into(), decode(p, "password")?));
            }
            &rest[at + 1..]
        }
        None => rest,
    };

    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    loop {
        let host = if let Some(v6) = rest.strip_prefix('[') {
            let end = v6
                .find(']')
                .ok_or("connection string: missing \"]\" after an IPv6 host")?;
            if end == 0 {
                return Err("connection string: empty IPv6 host \"[]\"".into());
            }
            rest = &v6[end + 1..];
            v6[..end].to_owned()
        } else {
            let end = rest.find([':', '/', '?', ',']).unwrap_or(rest.len());
            let h = decode(&rest[..end], "host")?;
            rest = &rest[end..];
            h
        };
        let port = match rest.strip_prefix(':') {
            Some(p) => {
                let end = p.find(['/', '?', ',']).unwrap_or(p.len());
                rest = &p[end..];
                decode(&p[..end], "port")?
            }
            None => String::new(),
        };
        if !matches!(rest.chars().next(), None | Some('/' | '?' | ',')) {
            return Err(format!(
                "connection string: unexpected {:?} after host {host:?}",
                rest.chars().next().unwrap_or_default()
            ));
        }
        hosts.push(host);
        ports.push(port);
        match rest.strip_prefix(',') {
            Some(r) => rest = r,
            None => break,
        }
    }
    // `postgresql:///db` names no host (the default); libpq leaves the keyword unset then.
    if !(hosts.len() == 1 && hosts[0].is_empty()) {
        out.push(("host".into(), hosts.join(",")));
    }
    if ports.iter().any(|p| !p.is_empty()) {
        out.push(("port".into(), ports.join(",")));
    }

    if let Some(after) = rest.strip_prefix('/') {
        let end = after.find('?').unwrap_or(after.len());
        if end > 0 {
            out.push(("dbname".into(), decode(&after[..end], "dbname")?));
        }
        rest = &after[end..];
    }
    if let Some(query) = rest.strip_prefix('?') {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').ok_or_else(|| {
                format!("connection string: parameter {pair:?} has no \"=\" (key=value)")
            })?;
            let (k, v) = (decode(k, "parameter")?, decode(v, k)?);
            // JDBC's ssl=true, which libpq takes as sslmode=require.
            if k == "ssl" && v == "true" {
                out.push(("sslmode".into(), "require".into()));
            } else {
                out.push((k, v));
            }
        }
    }
    Ok(out)
}

/// Percent-decoding; the result must be UTF-8 without NUL.
fn decode(s: &str, what: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("connection string: bad percent-encoding in {what}"))?;
            if hex == 0 {
                return Err(format!("connection string: %00 in {what}"));
            }
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out)
        .map_err(|_| format!("connection string: {what} is not UTF-8 once percent-decoded"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(s: &str) -> Vec<(String, String)> {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn kv(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn libpq_documented_examples_and_edge_cases() {
        let table: &[(&str, &[(&str, &str)])] = &[
            // libpq's URI examples (section 32.1.1.2).
            ("postgresql://", &[]),
            ("postgresql://localhost", &[("host", "localhost")]),
            (
                "postgresql://localhost:5433",
                &[("host", "localhost"), ("port", "5433")],
            ),
            (
                "postgresql://localhost/mydb",
                &[("host", "localhost"), ("dbname", "mydb")],
            ),
            ("postgresql://user@localhost", &[("user", "user"), ("host", "localhost")]),
            (
                "postgresql://user:secret@localhost",
                &[("user", "user"), ("password", "secret"), ("host", "localhost")],
            ),
            (
                "postgresql://other@localhost/otherdb?connect_timeout=10&application_name=myapp",
                &[
                    ("user", "other"),
                    ("host", "localhost"),
                    ("dbname", "otherdb"),
                    ("connect_timeout", "10"),
                    ("application_name", "myapp"),
                ],
            ),
            (
                "postgresql://host1:123,host2:456/somedb?target_session_attrs=any&application_name=myapp",
                &[
                    ("host", "host1,host2"),
                    ("port", "123,456"),
                    ("dbname", "somedb"),
                    ("target_session_attrs", "any"),
                    ("application_name", "myapp"),
                ],
            ),
            (
                "postgresql:///mydb?host=localhost&port=5433",
                &[("dbname", "mydb"), ("host", "localhost"), ("port", "5433")],
            ),
            (
                "postgresql://[2001:db8::1234]/database",
                &[("host", "2001:db8::1234"), ("dbname", "database")],
            ),
            (
                "postgresql:///dbname?host=/var/lib/postgresql",
                &[("dbname", "dbname"), ("host", "/var/lib/postgresql")],
            ),
            (
                "postgresql://%2Fvar%2Flib%2Fpostgresql/dbname",
                &[("host", "/var/lib/postgresql"), ("dbname", "dbname")],
            ),
            // The example: several hosts, a port on each, IPv6 in brackets.
            (
                "postgres://app:pw@h1:5432,h2:5433,[::1]:5434/db?target_session_attrs=read-write&sslmode=verify-full",
                &[
                    ("user", "app"),
                    ("password", "pw"),
                    ("host", "h1,h2,::1"),
                    ("port", "5432,5433,5434"),
                    ("dbname", "db"),
                    ("target_session_attrs", "read-write"),
                    ("sslmode", "verify-full"),
                ],
            ),
            // A port on some hosts only: empty entries take the default.
            (
                "postgres://h1,h2:5433,h3",
                &[("host", "h1,h2,h3"), ("port", ",5433,")],
            ),
            // Percent-encoding in every part; '@' and ':' inside the password.
            (
                "postgres://us%40er:p%3Aw%2F%40d@db.example/my%20db?application_name=a%26b",
                &[
                    ("user", "us@er"),
                    ("password", "p:w/@d"),
                    ("host", "db.example"),
                    ("dbname", "my db"),
                    ("application_name", "a&b"),
                ],
            ),
            ("postgres://u:@h", &[("user", "u"), ("password", ""), ("host", "h")]),
            ("postgres://h/db?ssl=true", &[("host", "h"), ("dbname", "db"), ("sslmode", "require")]),
            // libpq's keyword/value examples (section 32.1.1.1).
            (
                "host=localhost port=5432 dbname=mydb connect_timeout=10",
                &[
                    ("host", "localhost"),
                    ("port", "5432"),
                    ("dbname", "mydb"),
                    ("connect_timeout", "10"),
                ],
            ),
            (
                "host=h1,h2 port=5432,5433 dbname=db",
                &[("host", "h1,h2"), ("port", "5432,5433"), ("dbname", "db")],
            ),
            ("host=/var/run/postgresql", &[("host", "/var/run/postgresql")]),
            // Spaces around '=', quoted values with escapes, an empty value.
            (
                "  user = 'my user'  password='it\\'s \\\\ x' dbname='' host=h\\ 1 ",
                &[
                    ("user", "my user"),
                    ("password", "it's \\ x"),
                    ("dbname", ""),
                    ("host", "h 1"),
                ],
            ),
            ("password=''", &[("password", "")]),
            // As libpq: blanks after '=' are skipped, so an unquoted empty value takes the
            // next word.
            ("dbname= host=h", &[("dbname", "host=h")]),
            ("", &[]),
        ];
        for (s, want) in table {
            assert_eq!(pairs(s), kv(want), "{s}");
        }
    }

    #[test]
    fn malformed_strings_are_refused() {
        for bad in [
            "host",
            "host localhost",
            "password='open",
            "postgres://[::1/db",
            "postgres://[]/db",
            "postgres://h/db?sslmode",
            "postgres://h/db?application_name=%zz",
            "postgres://h/db?application_name=%4",
            "postgres://h/d%00b",
            "postgres://h/%ff",
            "postgres://[::1]x/db",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
