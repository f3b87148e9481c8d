//! Startup: the StartupMessage, authentication (each method its own step), then the server's
//! parameters and cancel key up to the first ReadyForQuery. Generic over the stream, so a
//! scripted backend can drive it in tests. Every read here uses the small startup cap on
//! message length: a peer that is not PostgreSQL cannot make us wait for or reserve 1 GB.

use crate::auth::policy::{AuthMethod, ChannelBindingMode};
use crate::auth::{md5::md5_password, scram};
use crate::backend::{self, auth_method_name, Message, ProtocolErrorKind};
use crate::config::Config;
use crate::error::Error;
use crate::frontend;
use crate::state::admit_parameter;
use bytes::{Bytes, BytesMut};
use std::collections::HashMap;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// What startup learnt about the session.
pub(crate) struct StartupInfo {
    pub(crate) parameters: HashMap<String, String>,
    /// Name + value bytes of `parameters` (see `admit_parameter`).
    pub(crate) parameter_bytes: usize,
    pub(crate) process_id: i32,
    /// Empty when the server sent no BackendKeyData (then nothing can cancel the session).
    pub(crate) secret_key: Bytes,
    /// The protocol's minor version the session runs (0, or 2 when asked and granted).
    pub(crate) protocol_minor: i32,
}

/// What startup knows of the transport under it, for the authentication policy.
pub(crate) struct Transport {
    /// The connection is TLS.
    pub(crate) tls: bool,
    /// `tls-server-end-point` data of the server's certificate (or why there is none).
    pub(crate) end_point: Option<Result<Vec<u8>, String>>,
}

impl Transport {
    pub(crate) fn plain() -> Transport {
        Transport {
            tls: false,
            end_point: None,
        }
    }
}

/// `"17.7"` -> 170007, `"9.6.24"` -> 90624, `"15devel"` -> 150000.
pub fn parse_server_version(v: &str) -> u32 {
    let mut nums = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u32>().unwrap_or(0));
    let major = nums.next().unwrap_or(0);
    let second = nums.next().unwrap_or(0);
    if major >= 10 {
        major * 10_000 + second
    } else {
        major * 10_000 + second * 100 + nums.next().unwrap_or(0)
    }
}

/// The startup exchange on one stream: its buffers and the configuration.
struct Handshake<'a, S> {
    stream: S,
    config: &'a Config,
    transport: &'a Transport,
    rbuf: BytesMut,
    wbuf: BytesMut,
    /// The method the client answered, if any (`None` until the server asks).
    answered: Option<AuthMethod>,
    /// SCRAM-SHA-256-PLUS completed: the session is bound to the TLS channel.
    bound: bool,
    /// The protocol minor version: the one asked for, lowered by NegotiateProtocolVersion.
    protocol_minor: i32,
}

/// StartupMessage, authentication, then parameters and the cancel key up to ReadyForQuery.
/// Returns the stream and whatever was read past the ReadyForQuery.
pub(crate) async fn startup<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    config: &Config,
    transport: &Transport,
) -> Result<(S, BytesMut, StartupInfo), Error> {
    let mut h = Handshake {
        stream,
        config,
        transport,
        rbuf: BytesMut::with_capacity(8 * 1024),
        wbuf: BytesMut::with_capacity(256),
        answered: None,
        bound: false,
        protocol_minor: config.max_protocol_version.minor(),
    };
    h.send_startup_message().await?;
    h.authenticate().await?;
    let info = h.read_session().await?;
    Ok((h.stream, h.rbuf, info))
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> Handshake<'a, S> {
    async fn send_startup_message(&mut self) -> Result<(), Error> {
        let config = self.config;
        let timeout_ms = config.statement_timeout.map(|t| t.as_millis().to_string());
        let mut params: Vec<(&str, &str)> = vec![
            ("user", &config.user),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO"),
            ("application_name", &config.application_name),
        ];
        if let Some(db) = &config.database {
            params.push(("database", db));
        }
        if let Some(ms) = &timeout_ms {
            params.push(("statement_timeout", ms));
        }
        let version = (3 << 16) | config.max_protocol_version.minor();
        frontend::startup_version(version, &params, &mut self.wbuf)?;
        self.flush().await
    }

    /// Answers the server's authentication requests until AuthenticationOk. Each request is
    /// checked against `require_auth` and `channel_binding` before anything is sent.
    async fn authenticate(&mut self) -> Result<(), Error> {
        loop {
            match self.read().await? {
                Message::AuthenticationOk => return self.check_ok(),
                Message::AuthenticationCleartextPassword => {
                    self.allow(AuthMethod::Password)?;
                    frontend::password(self.password()?, &mut self.wbuf)?;
                    self.flush().await?;
                }
                Message::AuthenticationMd5Password { salt } => {
                    self.allow(AuthMethod::Md5)?;
                    let hashed = md5_password(self.config.user.as_bytes(), self.password()?, salt);
                    frontend::password(hashed.as_bytes(), &mut self.wbuf)?;
                    self.flush().await?;
                }
                Message::AuthenticationSasl { mechanisms } => {
                    self.allow(AuthMethod::ScramSha256)?;
                    self.scram(&mechanisms).await?
                }
                Message::AuthenticationUnsupported { code } => {
                    // GSSAPI (7) and SSPI (9) are checked against the policy first, so the
                    // error names the option when that is what refuses them.
                    match code {
                        7 => self.allow(AuthMethod::Gss)?,
                        9 => self.allow(AuthMethod::Sspi)?,
                        _ => {}
                    }
                    return Err(Error::unsupported(format!(
                        "the server requires {} authentication, which this client does not support",
                        auth_method_name(code)
                    )));
                }
                Message::ErrorResponse(e) => return Err(Error::db(*e)),
                Message::NegotiateProtocolVersion { newest_minor, .. } => {
                    self.negotiated(newest_minor)?
                }
                Message::NoticeResponse(_) => {}
                other => return Err(unexpected("authentication", &other)),
            }
        }
    }

    /// Whether the policy lets the client answer `method`; records it as answered. A refusal
    /// is an authentication error: fatal for the pool, never retried.
    fn allow(&mut self, method: AuthMethod) -> Result<(), Error> {
        if self.config.channel_binding == ChannelBindingMode::Require
            && method != AuthMethod::ScramSha256
        {
            return Err(Error::auth(format!(
                "the server asked for authentication method \"{method}\", but channel_binding=require accepts only SCRAM-SHA-256-PLUS over TLS; set channel_binding to prefer or disable to allow it"
            )));
        }
        self.config
            .require_auth
            .check(method, self.transport.tls)
            .map_err(Error::auth)?;
        self.answered = Some(method);
        Ok(())
    }

    /// At AuthenticationOk: a server that skipped authentication must be allowed to, and
    /// channel_binding=require must have bound the session.
    fn check_ok(&mut self) -> Result<(), Error> {
        if self.answered.is_none() {
            self.allow(AuthMethod::None)?;
        }
        if self.config.channel_binding == ChannelBindingMode::Require && !self.bound {
            return Err(Error::auth(
                "channel_binding=require, but the server authenticated the session without channel binding",
            ));
        }
        Ok(())
    }

    /// Which SCRAM to run: SCRAM-SHA-256-PLUS when the connection is TLS, the server offers
    /// it and channel binding is not disabled (as libpq).
    fn choose_binding(&self, mechanisms: &[String]) -> Result<scram::ChannelBinding, Error> {
        use scram::ChannelBinding;
        let mode = self.config.channel_binding;
        let offers = |m: &str| mechanisms.iter().any(|x| x == m);
        let offered = mechanisms.join(", ");
        let binding = match (mode, self.transport.tls, &self.transport.end_point) {
            (ChannelBindingMode::Disable, _, _) => ChannelBinding::None,
            (ChannelBindingMode::Require, false, _) => {
                return Err(Error::auth(
                    "channel_binding=require, but the connection is not TLS (set sslmode to require or stricter)",
                ))
            }
            (_, true, Some(Ok(data))) if offers(scram::MECHANISM_PLUS) => {
                ChannelBinding::TlsServerEndPoint(data.clone())
            }
            (ChannelBindingMode::Require, true, Some(Err(why))) if offers(scram::MECHANISM_PLUS) => {
                return Err(Error::auth(format!(
                    "channel_binding=require, but no binding data: {why}"
                )))
            }
            (ChannelBindingMode::Require, _, _) => {
                return Err(Error::auth(format!(
                    "channel_binding=require, but the server does not offer SCRAM-SHA-256-PLUS (it offers {offered})"
                )))
            }
            // PLUS offered but the certificate has no usable hash: fail, as libpq does. Saying
            // "n" (the client cannot bind) would let a man in the middle with a certificate of
            // his choosing (Ed25519, an unknown signature algorithm) relay a SCRAM exchange
            // the server offered to bind.
            (ChannelBindingMode::Prefer, true, Some(Err(why))) if offers(scram::MECHANISM_PLUS) => {
                return Err(Error::auth(format!(
                    "the server offers SCRAM-SHA-256-PLUS, but its certificate gives no channel binding data: {why} (channel_binding=disable to go without)"
                )))
            }
            // TLS, and the server did not offer PLUS: say so ("y"), so a server that did offer
            // it (and had it stripped on the way) refuses the exchange.
            (ChannelBindingMode::Prefer, true, _) => ChannelBinding::NotOffered,
            (ChannelBindingMode::Prefer, false, _) => ChannelBinding::None,
        };
        if !matches!(binding, ChannelBinding::TlsServerEndPoint(_)) && !offers(scram::MECHANISM) {
            return Err(Error::unsupported(format!(
                "the server offers SASL mechanism(s) {offered}, none of which this client can use here"
            )));
        }
        Ok(binding)
    }

    /// SCRAM-SHA-256 (RFC 7677), with channel binding when chosen, after the server offered
    /// SASL; AuthenticationOk follows.
    async fn scram(&mut self, mechanisms: &[String]) -> Result<(), Error> {
        let binding = self.choose_binding(mechanisms)?;
        let plus = matches!(binding, scram::ChannelBinding::TlsServerEndPoint(_));
        let mut exchange = scram::ScramSha256::new(self.password()?).bind(binding);
        frontend::sasl_initial_response(
            exchange.mechanism(),
            &exchange.client_first(),
            &mut self.wbuf,
        )?;
        self.flush().await?;
        let server_first = match self.read().await? {
            Message::AuthenticationSaslContinue(b) => b,
            Message::ErrorResponse(e) => return Err(Error::db(*e)),
            other => return Err(unexpected("SASL continue", &other)),
        };
        // The key derivation runs the server's iteration count of PBKDF2 (a million takes
        // about a second): off the I/O thread, so a slow handshake never stalls the other
        // connections sharing it.
        let (returned, client_final) = tokio::task::spawn_blocking(move || {
            let out = exchange.handle_server_first(&server_first);
            (exchange, out)
        })
        .await
        .map_err(|e| Error::auth(format!("SCRAM key derivation failed: {e}")))?;
        exchange = returned;
        let client_final = client_final.map_err(|e| Error::auth(e.to_string()))?;
        frontend::sasl_response(&client_final, &mut self.wbuf)?;
        self.flush().await?;
        let server_final = match self.read().await? {
            Message::AuthenticationSaslFinal(b) => b,
            Message::ErrorResponse(e) => return Err(Error::db(*e)),
            other => return Err(unexpected("SASL final", &other)),
        };
        exchange
            .handle_server_final(&server_final)
            .map_err(|e| Error::auth(e.to_string()))?;
        self.bound = plus;
        Ok(())
    }

    /// After AuthenticationOk: parameters and the cancel key, up to ReadyForQuery.
    async fn read_session(&mut self) -> Result<StartupInfo, Error> {
        let mut info = StartupInfo {
            parameters: HashMap::new(),
            parameter_bytes: 0,
            process_id: 0,
            secret_key: Bytes::new(),
            protocol_minor: self.protocol_minor,
        };
        loop {
            match self.read().await? {
                Message::ParameterStatus { name, value } => {
                    admit_parameter(&info.parameters, &mut info.parameter_bytes, &name, &value)?;
                    info.parameters.insert(name, value);
                }
                Message::BackendKeyData {
                    process_id,
                    secret_key,
                } => {
                    info.process_id = process_id;
                    info.secret_key = secret_key;
                }
                Message::ReadyForQuery { .. } => return Ok(info),
                Message::ErrorResponse(e) => return Err(Error::db(*e)),
                Message::NegotiateProtocolVersion { newest_minor, .. } => {
                    self.negotiated(newest_minor)?;
                    info.protocol_minor = self.protocol_minor;
                }
                Message::NoticeResponse(_) => {}
                other => return Err(unexpected("startup", &other)),
            }
        }
    }

    /// The server offers protocol 3.`newest_minor` instead of what was asked: the session
    /// runs that. A server may only go down, never up.
    fn negotiated(&mut self, newest_minor: i32) -> Result<(), Error> {
        if !(0..=self.protocol_minor).contains(&newest_minor) {
            return Err(Error::protocol(
                crate::protocol_error::ProtocolError::malformed(format!(
                    "the server offered protocol 3.{newest_minor} in answer to a request for 3.{}",
                    self.protocol_minor
                )),
            ));
        }
        self.protocol_minor = newest_minor;
        Ok(())
    }

    fn password(&self) -> Result<&'a [u8], Error> {
        let config = self.config;
        config.password.as_deref().ok_or_else(|| {
            Error::auth(format!(
                "the server asked for a password for user {:?} and none was given",
                config.user
            ))
        })
    }

    /// Reads one message, with the small startup cap.
    async fn read(&mut self) -> Result<Message, Error> {
        loop {
            if let Some((tag, body)) =
                backend::split_frame(&mut self.rbuf, backend::STARTUP_MAX_MESSAGE_LEN)?
            {
                return Ok(Message::decode(tag, body)?);
            }
            self.rbuf.reserve(4096);
            let n = self
                .stream
                .read_buf(&mut self.rbuf)
                .await
                .map_err(|e| Error::closed(format!("during startup: {e}"), true))?;
            if n == 0 {
                return Err(Error::closed(
                    "the server closed the connection during startup",
                    true,
                ));
            }
        }
    }

    /// Writes the buffered messages.
    async fn flush(&mut self) -> Result<(), Error> {
        self.stream
            .write_all(&self.wbuf)
            .await
            .map_err(|e| Error::closed(format!("during startup: {e}"), true))?;
        self.wbuf.clear();
        Ok(())
    }
}

fn unexpected(during: &'static str, msg: &Message) -> Error {
    ProtocolErrorKind::Unexpected {
        message: msg.name(),
        during,
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `choose_binding` on a TLS connection whose certificate gives `end_point`, when the
    /// server offers `mechanisms`.
    fn binding(
        mode: ChannelBindingMode,
        end_point: Result<Vec<u8>, String>,
        mechanisms: &[&str],
    ) -> Result<scram::ChannelBinding, Error> {
        let mut config = Config::new(
            crate::Host {
                host: "h".into(),
                port: 5432,
            },
            "u",
        );
        config.channel_binding = mode;
        let transport = Transport {
            tls: true,
            end_point: Some(end_point),
        };
        let h = Handshake {
            stream: tokio::io::empty(),
            config: &config,
            transport: &transport,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            answered: None,
            bound: false,
            protocol_minor: 0,
        };
        let mechanisms: Vec<String> = mechanisms.iter().map(|m| m.to_string()).collect();
        h.choose_binding(&mechanisms)
    }

    #[test]
    fn a_certificate_without_binding_data_fails_when_the_server_offers_plus() {
        use scram::ChannelBinding;
        let both = [scram::MECHANISM_PLUS, scram::MECHANISM];
        let no_hash = || Err("an Ed25519 certificate".to_string());
        // Saying "n" here would let a man in the middle with a certificate of his choosing
        // relay the exchange: it fails, as with libpq.
        let e = binding(ChannelBindingMode::Prefer, no_hash(), &both).unwrap_err();
        assert!(e.to_string().contains("no channel binding data"), "{e}");
        // Without PLUS on offer: "y", which a server that did offer it refuses.
        assert!(matches!(
            binding(ChannelBindingMode::Prefer, no_hash(), &[scram::MECHANISM]),
            Ok(ChannelBinding::NotOffered)
        ));
        assert!(matches!(
            binding(ChannelBindingMode::Prefer, Ok(vec![1; 32]), &both),
            Ok(ChannelBinding::TlsServerEndPoint(_))
        ));
        assert!(matches!(
            binding(ChannelBindingMode::Disable, no_hash(), &both),
            Ok(ChannelBinding::None)
        ));
    }

    #[test]
    fn server_versions() {
        assert_eq!(parse_server_version("17.7"), 170007);
        assert_eq!(parse_server_version("13.22 (Debian)"), 130022);
        assert_eq!(parse_server_version("9.6.24"), 90624);
        assert_eq!(parse_server_version("18devel"), 180000);
        assert_eq!(parse_server_version(""), 0);
    }
}
