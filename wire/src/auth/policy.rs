//! Which authentication the client accepts: `require_auth` with libpq's syntax and meaning,
//! and the channel-binding mode. Pure functions: startup asks [`RequireAuth::check`] before it
//! answers any authentication request, and once more at AuthenticationOk.
//!
//! The one place we differ from libpq: with `require_auth` unset, libpq answers any method;
//! this client never sends a cleartext password over a connection without TLS (anyone on the
//! path, or a server impersonating the real one, would read it). Setting `require_auth` to a
//! list that allows `password` is the explicit opt-in.

use std::fmt;

/// An authentication method as `require_auth` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// AuthenticationCleartextPassword.
    Password,
    /// AuthenticationMD5Password.
    Md5,
    /// SASL with SCRAM-SHA-256 or SCRAM-SHA-256-PLUS.
    ScramSha256,
    /// GSSAPI (not supported by this client; accepted in the list as libpq accepts it).
    Gss,
    /// SSPI (likewise).
    Sspi,
    /// The server skipped authentication (AuthenticationOk at once).
    None,
}

impl AuthMethod {
    const ALL: [AuthMethod; 6] = [
        AuthMethod::Password,
        AuthMethod::Md5,
        AuthMethod::ScramSha256,
        AuthMethod::Gss,
        AuthMethod::Sspi,
        AuthMethod::None,
    ];

    /// The name `require_auth` uses.
    pub fn name(self) -> &'static str {
        match self {
            AuthMethod::Password => "password",
            AuthMethod::Md5 => "md5",
            AuthMethod::ScramSha256 => "scram-sha-256",
            AuthMethod::Gss => "gss",
            AuthMethod::Sspi => "sspi",
            AuthMethod::None => "none",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    fn from_name(s: &str) -> Option<AuthMethod> {
        AuthMethod::ALL.into_iter().find(|m| m.name() == s)
    }

    /// How the refusal describes what the server asked for.
    fn asked(self) -> &'static str {
        match self {
            AuthMethod::Password => "a cleartext password (method \"password\")",
            AuthMethod::Md5 => "an MD5 password (method \"md5\")",
            AuthMethod::ScramSha256 => "SCRAM (method \"scram-sha-256\")",
            AuthMethod::Gss => "GSSAPI (method \"gss\")",
            AuthMethod::Sspi => "SSPI (method \"sspi\")",
            AuthMethod::None => "no authentication at all (method \"none\")",
        }
    }
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The `require_auth` setting. The default (unset) allows every method except a cleartext
/// password over a connection without TLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequireAuth {
    rule: Rule,
    /// The text it was parsed from, for error messages.
    text: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Rule {
    #[default]
    Unset,
    /// Only these methods (a bit set).
    Allow(u8),
    /// Any method but these (`!` list).
    Deny(u8),
}

impl RequireAuth {
    /// Parses libpq's syntax: a comma-separated list of `password`, `md5`, `scram-sha-256`,
    /// `gss`, `sspi`, `none`, either all plain (only these are allowed) or all negated with
    /// `!` (these are refused). An empty string means unset.
    pub fn parse(s: &str) -> Result<RequireAuth, String> {
        if s.trim().is_empty() {
            return Ok(RequireAuth::default());
        }
        let mut negated = None;
        let mut set = 0u8;
        for item in s.split(',') {
            let item = item.trim();
            let (neg, name) = match item.strip_prefix('!') {
                Some(n) => (true, n),
                None => (false, item),
            };
            match negated {
                None => negated = Some(neg),
                Some(n) if n != neg => {
                    return Err(format!(
                        "require_auth {s:?}: negated (!) and plain methods cannot be mixed"
                    ))
                }
                Some(_) => {}
            }
            let method = AuthMethod::from_name(name).ok_or_else(|| {
                format!(
                    "require_auth {s:?}: unknown method {item:?} (expected password, md5, scram-sha-256, gss, sspi or none, optionally each with !)"
                )
            })?;
            if set & method.bit() != 0 {
                return Err(format!(
                    "require_auth {s:?}: method {name:?} is listed more than once"
                ));
            }
            set |= method.bit();
        }
        let rule = if negated == Some(true) {
            if set == AuthMethod::ALL.iter().fold(0, |acc, m| acc | m.bit()) {
                return Err(format!("require_auth {s:?} refuses every method"));
            }
            Rule::Deny(set)
        } else {
            Rule::Allow(set)
        };
        Ok(RequireAuth {
            rule,
            text: s.to_owned(),
        })
    }

    /// True when the setting was given (not the default).
    pub fn is_set(&self) -> bool {
        self.rule != Rule::Unset
    }

    /// Whether the client may answer `method` on a connection that is (or is not) TLS. The
    /// error names the method the server asked for and the setting that would allow it.
    pub fn check(&self, method: AuthMethod, tls: bool) -> Result<(), String> {
        match self.rule {
            Rule::Unset if method == AuthMethod::Password && !tls => Err(format!(
                "the server asked for {} over a connection without TLS, which this client refuses by default; use TLS (ssl mode require or stricter) or allow it explicitly with require_auth=password",
                method.asked()
            )),
            Rule::Unset => Ok(()),
            Rule::Allow(set) if set & method.bit() == 0 => Err(format!(
                "the server asked for {}, which require_auth={:?} does not allow; add {} to require_auth to allow it",
                method.asked(),
                self.text,
                method.name()
            )),
            Rule::Deny(set) if set & method.bit() != 0 => Err(format!(
                "the server asked for {}, which require_auth={:?} refuses; remove !{} from require_auth to allow it",
                method.asked(),
                self.text,
                method.name()
            )),
            Rule::Allow(_) | Rule::Deny(_) => Ok(()),
        }
    }
}

impl std::str::FromStr for RequireAuth {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RequireAuth::parse(s)
    }
}

/// `channel_binding`, as libpq: whether SCRAM binds the exchange to the TLS connection
/// (SCRAM-SHA-256-PLUS with `tls-server-end-point`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChannelBindingMode {
    /// Never bind.
    Disable,
    /// Bind when the connection is TLS and the server offers SCRAM-SHA-256-PLUS (default).
    #[default]
    Prefer,
    /// Only SCRAM-SHA-256-PLUS over TLS is accepted; any other method, a plain connection or a
    /// server that skips authentication is refused.
    Require,
}

impl ChannelBindingMode {
    pub fn parse(s: &str) -> Result<ChannelBindingMode, String> {
        match s {
            "disable" => Ok(ChannelBindingMode::Disable),
            "prefer" => Ok(ChannelBindingMode::Prefer),
            "require" => Ok(ChannelBindingMode::Require),
            _ => Err(format!(
                "channel_binding {s:?}: expected disable, prefer or require"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AuthMethod::*;

    fn ra(s: &str) -> RequireAuth {
        RequireAuth::parse(s).unwrap()
    }

    #[test]
    fn unset_allows_everything_but_cleartext_without_tls() {
        let d = RequireAuth::default();
        assert!(!d.is_set());
        assert_eq!(ra(""), d);
        for m in [Md5, ScramSha256, None, Gss] {
            assert!(d.check(m, false).is_ok(), "{m}");
        }
        let e = d.check(Password, false).unwrap_err();
        assert!(
            e.contains("cleartext password") && e.contains("require_auth=password"),
            "{e}"
        );
        assert!(d.check(Password, true).is_ok());
    }

    #[test]
    fn a_plain_list_allows_only_its_methods() {
        let r = ra("scram-sha-256");
        assert!(r.check(ScramSha256, false).is_ok());
        let e = r.check(Md5, true).unwrap_err();
        assert!(
            e.contains("\"md5\"") && e.contains("add md5 to require_auth"),
            "{e}"
        );
        assert!(
            r.check(None, true).is_err(),
            "none must be listed to be allowed"
        );
        assert!(r.check(Password, true).is_err());
        let r = ra("md5,none");
        assert!(r.check(Md5, false).is_ok() && r.check(None, false).is_ok());
        assert!(r.check(ScramSha256, false).is_err());
        // An explicit password is the opt-in for cleartext, even without TLS.
        assert!(ra("password").check(Password, false).is_ok());
    }

    #[test]
    fn a_negated_list_refuses_its_methods() {
        let r = ra("!password,!md5");
        assert!(r.check(ScramSha256, false).is_ok());
        assert!(r.check(None, false).is_ok());
        let e = r.check(Md5, true).unwrap_err();
        assert!(e.contains("remove !md5"), "{e}");
        let e = ra("!none").check(None, true).unwrap_err();
        assert!(e.contains("no authentication"), "{e}");
        // A negated list is explicit: cleartext over plain is allowed unless listed.
        assert!(ra("!md5").check(Password, false).is_ok());
    }

    #[test]
    fn syntax_errors() {
        for bad in [
            "md5,!password",
            "!md5,password",
            "md5,md5",
            "!none,!none",
            "kerberos",
            "md5,",
            "!",
            "!password,!md5,!scram-sha-256,!gss,!sspi,!none",
        ] {
            assert!(RequireAuth::parse(bad).is_err(), "{bad}");
        }
        assert!(RequireAuth::parse(" md5 , scram-sha-256 ").is_ok());
        assert!("gss,sspi".parse::<RequireAuth>().is_ok());
    }

    #[test]
    fn channel_binding_modes() {
        assert_eq!(ChannelBindingMode::default(), ChannelBindingMode::Prefer);
        assert_eq!(
            ChannelBindingMode::parse("require"),
            Ok(ChannelBindingMode::Require)
        );
        assert!(ChannelBindingMode::parse("on").is_err());
    }
}
