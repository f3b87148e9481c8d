//! Cancelling what a session runs: a CancelRequest on a separate socket, with the session's
//! own socket options (a vanished host must not hold the cancel for 15 minutes either).

use crate::config::Host;
use crate::error::Error;
use crate::frontend;
use crate::socket::SocketOptions;
use bytes::{Bytes, BytesMut};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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
    pub async fn cancel(&self, timeout: Duration) -> Result<(), Error> {
        let fut = async {
            let mut s = TcpStream::connect((self.host.host.as_str(), self.host.port))
                .await
                .map_err(|e| Error::connect(format!("cancel: connect to {}: {e}", self.host)))?;
            self.socket
                .apply(&s)
                .map_err(|e| Error::config(format!("cancel: socket options: {e}")))?;
            let mut buf = BytesMut::new();
            frontend::cancel_request(self.process_id, &self.secret_key, &mut buf)?;
            s.write_all(&buf)
                .await
                .map_err(|e| Error::closed(format!("cancel: {e}"), true))?;
            let mut sink = [0u8; 16];
            let _ = s.read(&mut sink).await;
            Ok(())
        };
        tokio::time::timeout(timeout, fut)
            .await
            .map_err(|_| Error::connect_timeout(format!("cancel to {} timed out", self.host)))?
    }
}
