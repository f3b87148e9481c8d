//! Startup: the StartupMessage, authentication (each method its own step), then the server's
//! parameters and cancel key up to the first ReadyForQuery. Generic over the stream, so a
//! scripted backend can drive it in tests. Every read here uses the small startup cap on
//! message length: a peer that is not PostgreSQL cannot make us wait for or reserve 1 GB.

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
    pub(crate) secret_key: Bytes,
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
    rbuf: BytesMut,
    wbuf: BytesMut,
}

/// StartupMessage, authentication, then parameters and the cancel key up to ReadyForQuery.
/// Returns the stream and whatever was read past the ReadyForQuery.
pub(crate) async fn startup<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    config: &Config,
) -> Result<(S, BytesMut, StartupInfo), Error> {
    let mut h = Handshake {
        stream,
        config,
        rbuf: BytesMut::with_capacity(8 * 1024),
        wbuf: BytesMut::with_capacity(256),
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
        frontend::startup(&params, &mut self.wbuf)?;
        self.flush().await
    }

    /// Answers the server's authentication requests until AuthenticationOk.
    async fn authenticate(&mut self) -> Result<(), Error> {
        loop {
            match self.read().await? {
                Message::AuthenticationOk => return Ok(()),
                Message::AuthenticationCleartextPassword => {
                    frontend::password(self.password()?, &mut self.wbuf)?;
                    self.flush().await?;
                }
                Message::AuthenticationMd5Password { salt } => {
                    let hashed = md5_password(self.config.user.as_bytes(), self.password()?, salt);
                    frontend::password(hashed.as_bytes(), &mut self.wbuf)?;
                    self.flush().await?;
                }
                Message::AuthenticationSasl { mechanisms } => self.scram(&mechanisms).await?,
                Message::AuthenticationUnsupported { code } => {
                    return Err(Error::unsupported(format!(
                        "the server requires {} authentication, which this client does not support",
                        auth_method_name(code)
                    )))
                }
                Message::ErrorResponse(e) => return Err(Error::db(e)),
                Message::NegotiateProtocolVersion { .. } | Message::NoticeResponse(_) => {}
                other => return Err(unexpected("authentication", &other)),
            }
        }
    }

    /// SCRAM-SHA-256 (RFC 7677), after the server offered SASL; AuthenticationOk follows.
    async fn scram(&mut self, mechanisms: &[String]) -> Result<(), Error> {
        if !mechanisms.iter().any(|m| m == scram::MECHANISM) {
            return Err(Error::unsupported(format!(
                "the server offers SASL mechanism(s) {} and this client supports only {} (no TLS channel binding yet)",
                mechanisms.join(", "),
                scram::MECHANISM
            )));
        }
        let mut exchange = scram::ScramSha256::new(self.password()?);
        frontend::sasl_initial_response(
            scram::MECHANISM,
            &exchange.client_first(),
            &mut self.wbuf,
        )?;
        self.flush().await?;
        let server_first = match self.read().await? {
            Message::AuthenticationSaslContinue(b) => b,
            Message::ErrorResponse(e) => return Err(Error::db(e)),
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
            Message::ErrorResponse(e) => return Err(Error::db(e)),
            other => return Err(unexpected("SASL final", &other)),
        };
        exchange
            .handle_server_final(&server_final)
            .map_err(|e| Error::auth(e.to_string()))
    }

    /// After AuthenticationOk: parameters and the cancel key, up to ReadyForQuery.
    async fn read_session(&mut self) -> Result<StartupInfo, Error> {
        let mut info = StartupInfo {
            parameters: HashMap::new(),
            parameter_bytes: 0,
            process_id: 0,
            secret_key: Bytes::new(),
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
                Message::ErrorResponse(e) => return Err(Error::db(e)),
                Message::NoticeResponse(_) | Message::NegotiateProtocolVersion { .. } => {}
                other => return Err(unexpected("startup", &other)),
            }
        }
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

    #[test]
    fn server_versions() {
        assert_eq!(parse_server_version("17.7"), 170007);
        assert_eq!(parse_server_version("13.22 (Debian)"), 130022);
        assert_eq!(parse_server_version("9.6.24"), 90624);
        assert_eq!(parse_server_version("18devel"), 180000);
        assert_eq!(parse_server_version(""), 0);
    }
}
