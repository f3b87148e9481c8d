//! Cancelling what a session runs: a CancelRequest on a separate socket, with the session's
//! own socket options (a vanished host must not hold the cancel for 15 minutes either), over
//! TLS when the session is (the same negotiation and verification), and to the same
//! Unix-domain socket when that is what the session uses.

use crate::config::Host;
use crate::error::Error;
use crate::frontend;
use crate::socket::SocketOptions;
use crate::tls::{self, Negotiated, TlsSetup};
use bytes::{Bytes, BytesMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends a CancelRequest for this connection's backend on a separate socket.
#[derive(Debug, Clone)]
pub struct CancelToken {
    pub(crate) host: Host,
    pub(crate) process_id: i32,
    pub(crate) secret_key: Bytes,
    /// The connection's socket options: the cancel request's socket needs the same bound on
    /// a vanished host as the session's.
    pub(crate) socket: SocketOptions,
    /// The session's TLS setup, when the session is TLS.
    pub(crate) tls: Option<Arc<TlsSetup>>,
}

impl CancelToken {
    /// The host the connection is to.
    pub fn host(&self) -> &Host {
        &self.host
    }

    /// The socket options the token applies to its own socket.
    pub fn socket_options(&self) -> SocketOptions {
        self.socket
    }

    /// Asks the server to cancel whatever the session is running. Returns once the request is
    /// delivered (the server closes the socket); it does not wait for the query to stop.
    /// True when the cancel request goes over TLS (the session does).
    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    pub async fn cancel(&self, timeout: Duration) -> Result<(), Error> {
        if self.secret_key.is_empty() {
            // Protocol 3.2 lets a server send no BackendKeyData: such a session has no key.
            return Err(Error::unsupported(format!(
                "the server {} sent no cancel key for this session: it cannot be cancelled",
                self.host
            )));
        }
        let fut = async {
            let connect = |e| Error::connect(format!("cancel: connect to {}: {e}", self.host));
            if let Some(path) = self.host.socket_path() {
                #[cfg(unix)]
                {
                    let s = tokio::net::UnixStream::connect(&path)
                        .await
                        .map_err(connect)?;
                    return self.send(s).await;
                }
                #[cfg(not(unix))]
                return Err(Error::config(format!(
                    "cancel: Unix-domain socket {} not supported on this platform",
                    path.display()
                )));
            }
            let s = TcpStream::connect((self.host.host.as_str(), self.host.port))
                .await
                .map_err(connect)?;
            self.socket
                .apply(&s)
                .map_err(|e| Error::config(format!("cancel: socket options: {e}")))?;
            match &self.tls {
                None => self.send(s).await,
                Some(setup) => match tls::negotiate(s, setup, &self.host).await? {
                    Negotiated::Tls(s, _) => self.send(*s).await,
                    Negotiated::Refused(_) => Err(Error::connect(format!(
                        "cancel: {} no longer accepts TLS, which the session uses",
                        self.host
                    ))),
                },
            }
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| Error::connect_timeout(format!("cancel to {} timed out", self.host)))?
    }

    /// Writes the CancelRequest and waits for the server to close the socket.
    async fn send<S: AsyncRead + AsyncWrite + Unpin>(&self, mut s: S) -> Result<(), Error> {
        let mut buf = BytesMut::new();
        frontend::cancel_request(self.process_id, &self.secret_key, &mut buf)?;
        s.write_all(&buf)
            .await
            .map_err(|e| Error::closed(format!("cancel: {e}"), true))?;
        s.flush()
            .await
            .map_err(|e| Error::closed(format!("cancel: {e}"), true))?;
        let mut sink = [0u8; 16];
        let _ = s.read(&mut sink).await;
        Ok(())
    }
}
