//! Options on the TCP sockets a connection opens, which tokio does not expose.
//!
//! A host that loses power or is partitioned sends nothing: no RST, no FIN. Without these
//! options a socket to it waits for the kernel's retransmission limit (about 15 minutes) when
//! data is in flight, and forever when idle. Keepalive bounds the idle case; on Linux
//! `TCP_USER_TIMEOUT` bounds the case of written data nobody acknowledges.

use crate::config::{Config, Keepalive};
use socket2::{SockRef, TcpKeepalive};
use std::time::Duration;
use tokio::net::TcpStream;

/// The socket options of one connection, kept apart from [`Config`] so the cancel token can
/// carry them to its own socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SocketOptions {
    pub keepalive: Option<Keepalive>,
    pub tcp_user_timeout: Option<Duration>,
}

impl SocketOptions {
    pub fn from_config(config: &Config) -> Self {
        SocketOptions {
            keepalive: config.keepalive,
            tcp_user_timeout: config.tcp_user_timeout,
        }
    }

    /// Applies the options and `TCP_NODELAY` to a connected socket.
    pub fn apply(&self, stream: &TcpStream) -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        let sock = SockRef::from(stream);
        if let Some(k) = self.keepalive {
            let params = TcpKeepalive::new().with_time(k.idle);
            #[cfg(any(
                target_os = "android",
                target_os = "dragonfly",
                target_os = "freebsd",
                target_os = "fuchsia",
                target_os = "illumos",
                target_os = "ios",
                target_os = "linux",
                target_os = "macos",
                target_os = "netbsd",
                target_os = "windows",
            ))]
            let params = params.with_interval(k.interval).with_retries(k.retries);
            sock.set_tcp_keepalive(&params)?;
        }
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        if let Some(t) = self.tcp_user_timeout {
            sock.set_tcp_user_timeout(Some(t))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn options_are_set_on_a_connected_socket() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stream = TcpStream::connect(addr).await.unwrap();
        let _accepted = listener.accept().await.unwrap();
        let config = Config::new(
            crate::config::Host {
                host: "127.0.0.1".into(),
                port: addr.port(),
            },
            "u",
        );
        let opts = SocketOptions::from_config(&config);
        opts.apply(&stream).unwrap();

        let sock = SockRef::from(&stream);
        assert!(stream.nodelay().unwrap());
        assert!(sock.keepalive().unwrap());
        #[cfg(target_os = "linux")]
        {
            assert_eq!(sock.tcp_keepalive_time().unwrap(), Duration::from_secs(5));
            assert_eq!(
                sock.tcp_keepalive_interval().unwrap(),
                Duration::from_secs(2)
            );
            assert_eq!(sock.tcp_keepalive_retries().unwrap(), 3);
            assert_eq!(
                sock.tcp_user_timeout().unwrap(),
                Some(Duration::from_secs(10))
            );
        }
    }
}
