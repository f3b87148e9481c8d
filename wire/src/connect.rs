//! Opening a connection: the socket (TCP or a Unix-domain socket), TLS as the configuration
//! says, startup, and the protocol loop started on the runtime or handed to the
//! configuration's [`crate::runner`].

use crate::client::{assemble, Client};
use crate::config::Config;
use crate::error::Error;
use crate::runner::Pace;
use crate::socket::SocketOptions;
use crate::ssl::{SslMode, WithoutTls};
use crate::startup::{startup, Transport};
use crate::tls::{self, Negotiated, TlsSetup};
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// Connects, authenticates, and starts the protocol loop on the current tokio runtime.
pub async fn connect(config: &Config) -> Result<Client, Error> {
    match config.connect_timeout {
        Some(t) => tokio::time::timeout(t, connect_inner(config))
            .await
            .map_err(|_| {
                Error::connect_timeout(format!(
                    "connecting to {} timed out after {}ms",
                    config.host,
                    t.as_millis()
                ))
            })?,
        None => connect_inner(config).await,
    }
}

/// Opens the socket (TCP, or a Unix-domain socket for a host that starts with `/`), starts
/// TLS as `config.ssl` says, then runs startup. Each transport gets its own monomorphized
/// protocol loop (`TcpStream`, `TlsStream<TcpStream>`, `UnixStream`): the plain path pays
/// nothing for TLS existing, not even an enum match per read.
async fn connect_inner(config: &Config) -> Result<Client, Error> {
    config.ssl.validate().map_err(Error::config)?;
    if config.host.is_unix_socket() {
        return connect_unix(config).await;
    }
    let stream = connect_tcp(config).await?;
    if !config.ssl.tries_tls() {
        return connect_plain_tcp(stream, config).await;
    }
    let setup = Arc::new(tls::setup(config)?);
    let refused = match tls::negotiate(stream, &setup, &config.host).await {
        Ok(Negotiated::Tls(stream, end_point)) => {
            let transport = Transport {
                tls: true,
                end_point: Some(end_point),
            };
            return connect_transport(*stream, config, transport, Some(setup), None).await;
        }
        Ok(Negotiated::Refused(stream)) => Ok(stream),
        Err(e) => Err(e),
    };
    match (config.ssl.without_tls(), refused) {
        (WithoutTls::Plain, Ok(stream)) => connect_plain_tcp(stream, config).await,
        (WithoutTls::Refuse, Ok(_)) => Err(Error::unsupported(format!(
            "{} does not support TLS (it answered 'N' to SSLRequest), and sslmode={} requires it",
            config.host,
            config.ssl.mode.name()
        ))
        .at_startup()),
        // libpq's prefer: a failed TLS attempt is retried in plain text on a new socket.
        (WithoutTls::Plain, Err(e))
            if config.ssl.mode == SslMode::Prefer && !e.is_fatal_config() =>
        {
            let stream = connect_tcp(config).await?;
            connect_plain_tcp(stream, config).await
        }
        (_, Err(e)) => Err(e.at_startup()),
    }
}

async fn connect_tcp(config: &Config) -> Result<TcpStream, Error> {
    let host = &config.host;
    let stream = TcpStream::connect((host.host.as_str(), host.port))
        .await
        .map_err(|e| Error::connect(format!("connecting to {host}: {e}")))?;
    SocketOptions::from_config(config)
        .apply(&stream)
        .map_err(|e| Error::config(format!("socket options for {host}: {e}")))?;
    Ok(stream)
}

/// A Unix-domain socket: no TCP options and, as libpq, no TLS.
#[cfg(unix)]
async fn connect_unix(config: &Config) -> Result<Client, Error> {
    let path = config.host.socket_path().unwrap_or_default();
    let stream = tokio::net::UnixStream::connect(&path)
        .await
        .map_err(|e| Error::connect(format!("connecting to {}: {e}", path.display())))?;
    connect_transport(stream, config, Transport::plain(), None, None).await
}

#[cfg(not(unix))]
async fn connect_unix(config: &Config) -> Result<Client, Error> {
    Err(Error::config(format!(
        "host {}: Unix-domain sockets are not supported on this platform",
        config.host
    )))
}

/// Starts a protocol loop over any stream (an in-memory duplex or a scripted backend), after
/// running startup on it. Used by tests and by callers with their own transport; the stream
/// counts as plain text for the authentication policy.
pub async fn connect_stream<S>(stream: S, config: &Config) -> Result<Client, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    connect_transport(stream, config, Transport::plain(), None, None).await
}

/// [`connect_stream`] for a transport that wants to know when the loop is in a large answer
/// ([`Pace`]), as a [`crate::runner::LoopRunner`]'s stream does.
pub async fn connect_stream_paced<S>(
    stream: S,
    config: &Config,
    pace: Pace,
) -> Result<Client, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    connect_transport(stream, config, Transport::plain(), None, Some(pace)).await
}

async fn connect_transport<S>(
    stream: S,
    config: &Config,
    transport: Transport,
    tls: Option<Arc<TlsSetup>>,
    pace: Option<Pace>,
) -> Result<Client, Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (stream, read_buf, info) = startup(stream, config, &transport)
        .await
        .map_err(|e| e.at_startup())?;
    let (client, parts) = assemble(config, info, tls);
    tokio::spawn(parts.into_loop(stream, read_buf, pace));
    Ok(client)
}

/// A plain TCP connection: its loop runs where `config.runner` says, else on the runtime.
async fn connect_plain_tcp(stream: TcpStream, config: &Config) -> Result<Client, Error> {
    let Some(runner) = &config.runner else {
        return connect_transport(stream, config, Transport::plain(), None, None).await;
    };
    let (stream, read_buf, info) = startup(stream, config, &Transport::plain())
        .await
        .map_err(|e| e.at_startup())?;
    let pace = Pace::default();
    let stream = stream
        .into_std()
        .and_then(|s| runner.0.adopt(s, pace.clone()))
        .map_err(|e| Error::connect(format!("handing over the socket to {}: {e}", config.host)))?;
    let (client, parts) = assemble(config, info, None);
    runner
        .0
        .spawn(Box::pin(parts.into_loop(stream, read_buf, Some(pace))));
    Ok(client)
}
