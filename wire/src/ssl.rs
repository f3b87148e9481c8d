//! TLS settings with libpq's meanings (`sslmode`, `sslrootcert`, `sslcert`, `sslkey`,
//! `sslnegotiation`) and the decisions they imply, as pure functions; the handshake itself is
//! in `tls` (driver feature).
//!
//! | mode | TLS | server answers 'N' | certificate checked |
//! |---|---|---|---|
//! | `Disable` | never | - | - |
//! | `Prefer` (default) | tried | plain text | chain only if `root_cert` is given |
//! | `Require` | required | fail | chain only if `root_cert` is given (libpq's rule) |
//! | `VerifyCa` | required | fail | chain |
//! | `VerifyFull` | required | fail | chain and host name |
//!
//! Where libpq, with no `sslrootcert`, reads `~/.postgresql/root.crt` and fails without it,
//! this client checks the chain against the operating system's trust store. A `root_cert`
//! replaces the system store, as `sslrootcert` does. Unix-domain sockets never use TLS (as
//! libpq).

/// `sslmode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    /// Try TLS; if the server does not support it, or the handshake fails, go on in plain
    /// text. libpq's default: it protects against nothing active, only eavesdropping on
    /// servers that have TLS.
    #[default]
    Prefer,
    /// TLS or nothing, without checking the certificate unless `root_cert` is given.
    Require,
    /// TLS, and the server's certificate must chain to a trusted root.
    VerifyCa,
    /// TLS, the chain, and the certificate must name the host (or `server_name`).
    VerifyFull,
}

impl SslMode {
    pub fn parse(s: &str) -> Result<SslMode, String> {
        match s {
            "disable" => Ok(SslMode::Disable),
            "prefer" => Ok(SslMode::Prefer),
            "require" => Ok(SslMode::Require),
            "verify-ca" => Ok(SslMode::VerifyCa),
            "verify-full" => Ok(SslMode::VerifyFull),
            _ => Err(format!(
                "sslmode {s:?}: expected disable, prefer, require, verify-ca or verify-full"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// The connection must be TLS (a server without it is refused).
    pub fn requires_tls(self) -> bool {
        matches!(
            self,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
        )
    }
}

/// `sslnegotiation`: how TLS starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SslNegotiation {
    /// SSLRequest, then the handshake if the server answers 'S' (every version).
    #[default]
    Postgres,
    /// The TLS handshake at once, with ALPN `postgresql` (PostgreSQL 17+): one round trip
    /// less. Needs a mode that requires TLS, so a server without it cannot lead to plain text.
    Direct,
}

impl SslNegotiation {
    pub fn parse(s: &str) -> Result<SslNegotiation, String> {
        match s {
            "postgres" => Ok(SslNegotiation::Postgres),
            "direct" => Ok(SslNegotiation::Direct),
            _ => Err(format!("sslnegotiation {s:?}: expected postgres or direct")),
        }
    }
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// Nothing (the handshake still proves the server holds the key of the certificate it
    /// shows, which is what channel binding builds on).
    None,
    /// The chain up to a trusted root, not the name.
    Chain,
    /// The chain and the host name.
    Full,
}

/// What to do when the server answers 'N' to SSLRequest (or the TLS attempt fails in `Prefer`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithoutTls {
    /// Go on in plain text.
    Plain,
    /// Fail the connection.
    Refuse,
}

/// The TLS settings of a connection. PEM fields hold the PEM text itself (reading files is
/// the caller's job).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SslConfig {
    /// Default [`SslMode::Prefer`], as libpq.
    pub mode: SslMode,
    /// Trusted root certificate(s), PEM (`sslrootcert`). Replaces the system store. Default:
    /// none (the system store).
    pub root_cert: Option<Vec<u8>>,
    /// Client certificate chain, PEM (`sslcert`), for `cert` authentication. Default: none.
    pub client_cert: Option<Vec<u8>>,
    /// The client certificate's private key, PEM (`sslkey`; PKCS#8, PKCS#1 or SEC1).
    pub client_key: Option<Vec<u8>>,
    /// Default [`SslNegotiation::Postgres`].
    pub negotiation: SslNegotiation,
    /// The name sent as SNI and checked by `VerifyFull`, instead of the host. Default: the
    /// host (an IP literal is checked against the certificate's IP addresses, and no SNI is
    /// sent for it).
    pub server_name: Option<String>,
}

impl SslConfig {
    /// What the certificate is checked for. libpq's rule: `prefer` and `require` with a root
    /// certificate check the chain, as `verify-ca`.
    pub fn verification(&self) -> Verification {
        match self.mode {
            SslMode::VerifyFull => Verification::Full,
            SslMode::VerifyCa => Verification::Chain,
            SslMode::Prefer | SslMode::Require if self.root_cert.is_some() => Verification::Chain,
            SslMode::Disable | SslMode::Prefer | SslMode::Require => Verification::None,
        }
    }

    /// Whether a connection over TCP tries TLS (Unix sockets never do).
    pub fn tries_tls(&self) -> bool {
        self.mode != SslMode::Disable
    }

    /// What a server without TLS leads to.
    pub fn without_tls(&self) -> WithoutTls {
        if self.mode.requires_tls() {
            WithoutTls::Refuse
        } else {
            WithoutTls::Plain
        }
    }

    /// Settings that cannot work together.
    pub fn validate(&self) -> Result<(), String> {
        if self.negotiation == SslNegotiation::Direct && !self.mode.requires_tls() {
            return Err(format!(
                "sslnegotiation=direct needs sslmode require, verify-ca or verify-full (it is {}): a weaker mode could fall back to plain text",
                self.mode.name()
            ));
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err("sslcert and sslkey must be given together".into());
        }
        if self.mode == SslMode::VerifyCa && self.root_cert.is_none() {
            // verify-ca checks the chain and not the name: against the system's roots, any
            // certificate a public CA issued (to anyone, for any name) would pass. libpq has
            // the same rule for sslrootcert=system.
            return Err(
                "sslmode=verify-ca needs sslrootcert (your own CA): it does not check the server's name, so against the system's roots any publicly issued certificate would pass (use verify-full for the system's roots)"
                    .into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(mode: SslMode, root: bool) -> SslConfig {
        SslConfig {
            mode,
            root_cert: root.then(|| b"pem".to_vec()),
            ..SslConfig::default()
        }
    }

    #[test]
    fn verify_ca_needs_a_root_certificate_of_its_own() {
        let e = with(SslMode::VerifyCa, false).validate().unwrap_err();
        assert!(e.contains("verify-ca needs sslrootcert"), "{e}");
        assert!(with(SslMode::VerifyCa, true).validate().is_ok());
        // verify-full checks the name: the system's roots are fine there.
        assert!(with(SslMode::VerifyFull, false).validate().is_ok());
    }

    #[test]
    fn prefer_is_the_default_and_falls_back_to_plain() {
        let c = SslConfig::default();
        assert_eq!(c.mode, SslMode::Prefer);
        assert!(c.tries_tls());
        assert_eq!(c.without_tls(), WithoutTls::Plain);
        assert_eq!(c.verification(), Verification::None);
    }

    #[test]
    fn modes_and_what_they_check() {
        use Verification::*;
        let table = [
            (SslMode::Disable, false, false, WithoutTls::Plain, None),
            (SslMode::Prefer, false, true, WithoutTls::Plain, None),
            (SslMode::Prefer, true, true, WithoutTls::Plain, Chain),
            (SslMode::Require, false, true, WithoutTls::Refuse, None),
            // libpq: require with a root certificate behaves as verify-ca.
            (SslMode::Require, true, true, WithoutTls::Refuse, Chain),
            (SslMode::VerifyCa, false, true, WithoutTls::Refuse, Chain),
            (SslMode::VerifyCa, true, true, WithoutTls::Refuse, Chain),
            (SslMode::VerifyFull, false, true, WithoutTls::Refuse, Full),
            (SslMode::VerifyFull, true, true, WithoutTls::Refuse, Full),
        ];
        for (mode, root, tries, without, verification) in table {
            let c = with(mode, root);
            assert_eq!(c.tries_tls(), tries, "{mode:?} {root}");
            assert_eq!(c.without_tls(), without, "{mode:?} {root}");
            assert_eq!(c.verification(), verification, "{mode:?} {root}");
        }
    }

    #[test]
    fn direct_negotiation_needs_a_mode_that_requires_tls() {
        for (mode, ok) in [
            (SslMode::Disable, false),
            (SslMode::Prefer, false),
            (SslMode::Require, true),
            (SslMode::VerifyCa, true),
            (SslMode::VerifyFull, true),
        ] {
            // (With a root certificate: verify-ca needs one of its own.)
            let c = SslConfig {
                negotiation: SslNegotiation::Direct,
                ..with(mode, true)
            };
            assert_eq!(c.validate().is_ok(), ok, "{mode:?}");
        }
        let half = SslConfig {
            client_cert: Some(b"x".to_vec()),
            ..SslConfig::default()
        };
        assert!(half.validate().is_err());
    }

    #[test]
    fn names_parse() {
        for m in [
            SslMode::Disable,
            SslMode::Prefer,
            SslMode::Require,
            SslMode::VerifyCa,
            SslMode::VerifyFull,
        ] {
            assert_eq!(SslMode::parse(m.name()), Ok(m));
        }
        assert!(SslMode::parse("allow").is_err());
        assert_eq!(SslNegotiation::parse("direct"), Ok(SslNegotiation::Direct));
        assert!(SslNegotiation::parse("tls").is_err());
    }
}
