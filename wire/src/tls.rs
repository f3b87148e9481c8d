//! TLS on a connection's socket: the rustls client configuration for an [`SslConfig`], the
//! start of TLS (SSLRequest, or direct with ALPN `postgresql`) and the handshake.
//!
//! Choices, and why:
//! * crypto provider `ring`: builds with a C compiler alone (aws-lc-rs wants cmake and builds
//!   its C library for minutes on a 2-core machine), and has every algorithm a PostgreSQL
//!   server certificate uses;
//! * roots `rustls-native-certs` (the operating system's store, read once per process):
//!   what libpq's `sslrootcert=system` and psql users expect, including a company's own CA
//!   installed by the administrators, and updated with the OS rather than with this crate;
//!   a `root_cert` replaces it, as `sslrootcert` does.
//!
//! Mode decisions (what is verified, what 'N' leads to) are pure and live in [`crate::ssl`].

use crate::auth::end_point::tls_server_end_point;
use crate::config::{Config, Host};
use crate::error::Error;
use crate::ssl::{SslConfig, SslNegotiation, Verification};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::sync::{Arc, OnceLock};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// The ALPN protocol PostgreSQL 17 requires for direct TLS (and accepts after SSLRequest).
pub(crate) const ALPN_POSTGRESQL: &[u8] = b"postgresql";
/// SSLRequest: length 8, code 1234.5679.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];

/// What a connection (and its cancel token) needs to start TLS: built once per connect.
#[derive(Debug)]
pub(crate) struct TlsSetup {
    pub(crate) client: Arc<ClientConfig>,
    pub(crate) server_name: ServerName<'static>,
    pub(crate) negotiation: SslNegotiation,
}

/// How a TLS attempt ended.
pub(crate) enum Negotiated<S> {
    /// TLS is up; the channel-binding data of the server's certificate (or why there is
    /// none).
    Tls(Box<TlsStream<S>>, Result<Vec<u8>, String>),
    /// The server answered 'N' to SSLRequest: the socket, still usable in plain text.
    Refused(S),
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    // rustls 0.23.48 marks ring's provider deprecated because it has no post-quantum key
    // exchange (X25519MLKEM768). PostgreSQL servers negotiate it only when built against
    // OpenSSL 3.5 or later, so today this costs nothing; aws-lc-rs is the one-line switch
    // (and a twice as long clean build) when servers catch up.
    #[allow(deprecated)]
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The operating system's trust store, read once per process.
fn system_roots() -> Result<Arc<RootCertStore>, Error> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut store = RootCertStore::empty();
            store.add_parsable_certificates(found.certs);
            if store.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                return Err(format!(
                    "no trusted root certificates in the system store{why}: give the server's CA as root_cert (sslrootcert)"
                ));
            }
            Ok(Arc::new(store))
        })
        .clone()
        .map_err(Error::config)
}

fn pem_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::config(format!("{what}: not valid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(Error::config(format!("{what}: no CERTIFICATE in the PEM")));
    }
    Ok(certs)
}

/// Checks `config`'s TLS settings as a connection would use them (certificates and key
/// parsed, roots loaded) without connecting: a bad certificate is a configuration error
/// when the settings are made, not at every connect.
pub fn check(config: &Config) -> Result<(), Error> {
    if !config.ssl.tries_tls() {
        return Ok(());
    }
    config.ssl.validate().map_err(Error::config)?;
    setup(config).map(|_| ())
}

/// The rustls configuration, server name and negotiation for a TCP connection to `host`.
pub(crate) fn setup(config: &Config) -> Result<TlsSetup, Error> {
    let ssl = &config.ssl;
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::config(format!("TLS: {e}")))?;
    let verification = ssl.verification();
    let builder = match verification {
        Verification::None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoCertificateCheck { algorithms })),
        Verification::Chain | Verification::Full => {
            let roots = roots(ssl)?;
            let webpki = WebPkiServerVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|e| Error::config(format!("TLS roots: {e}")))?;
            if verification == Verification::Full {
                builder.with_webpki_verifier(webpki)
            } else {
                builder
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(ChainOnly { webpki }))
            }
        }
    };
    let mut client = match (&ssl.client_cert, &ssl.client_key) {
        (Some(cert), Some(key)) => {
            let chain = pem_certs(cert, "client_cert (sslcert)")?;
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| {
                Error::config(format!("client_key (sslkey): no usable private key: {e}"))
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::config(format!("client certificate: {e}")))?
        }
        _ => builder.with_no_client_auth(),
    };
    client.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    let name = ssl.server_name.as_deref().unwrap_or(&config.host.host);
    let server_name = ServerName::try_from(name.to_owned())
        .map_err(|e| Error::config(format!("TLS server name {name:?}: {e}")))?;
    Ok(TlsSetup {
        client: Arc::new(client),
        server_name,
        negotiation: ssl.negotiation,
    })
}

fn roots(ssl: &SslConfig) -> Result<Arc<RootCertStore>, Error> {
    let Some(pem) = &ssl.root_cert else {
        return system_roots();
    };
    let mut store = RootCertStore::empty();
    for cert in pem_certs(pem, "root_cert (sslrootcert)")? {
        store
            .add(cert)
            .map_err(|e| Error::config(format!("root_cert (sslrootcert): {e}")))?;
    }
    Ok(Arc::new(store))
}

/// Starts TLS on a connected socket: SSLRequest (then the handshake on 'S'), or the handshake
/// at once for direct negotiation.
pub(crate) async fn negotiate<S>(
    mut stream: S,
    setup: &TlsSetup,
    host: &Host,
) -> Result<Negotiated<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    if setup.negotiation == SslNegotiation::Postgres {
        let io = |e: std::io::Error| Error::closed(format!("SSLRequest to {host}: {e}"), true);
        stream.write_all(&SSL_REQUEST).await.map_err(io)?;
        // Exactly one byte: anything the server sent after it must go through TLS, never be
        // taken as plain text (CVE-2021-23222).
        let mut answer = [0u8; 1];
        stream.read_exact(&mut answer).await.map_err(io)?;
        match answer[0] {
            b'S' => {}
            b'N' => return Ok(Negotiated::Refused(stream)),
            other => {
                return Err(Error::unsupported(format!(
                    "{host} answered SSLRequest with {other:#04x}, neither 'S' nor 'N': not a PostgreSQL server, or one older than 7.0"
                )))
            }
        }
    }
    let connector = TlsConnector::from(setup.client.clone());
    let tls = connector
        .connect(setup.server_name.clone(), stream)
        .await
        .map_err(|e| handshake_error(e, host))?;
    let (_, session) = tls.get_ref();
    if setup.negotiation == SslNegotiation::Direct
        && session.alpn_protocol() != Some(ALPN_POSTGRESQL)
    {
        return Err(Error::unsupported(format!(
            "{host} did not select ALPN \"postgresql\" during direct TLS negotiation (PostgreSQL 17 or later is needed for sslnegotiation=direct)"
        )));
    }
    let binding = match session.peer_certificates().and_then(|c| c.first()) {
        Some(cert) => tls_server_end_point(cert).map_err(|e| e.to_string()),
        None => Err("the server sent no certificate".to_owned()),
    };
    Ok(Negotiated::Tls(Box::new(tls), binding))
}

/// A certificate the verifier refused is an authentication failure (no retry fixes it); any
/// other failure is the connection's.
fn handshake_error(e: std::io::Error, host: &Host) -> Error {
    let refused = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .map(|t| {
            matches!(
                t,
                rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
            )
        })
        .unwrap_or(false);
    if refused {
        Error::auth(format!(
            "TLS with {host}: the server's certificate was refused: {e}"
        ))
    } else {
        Error::connect(format!("TLS handshake with {host} failed: {e}"))
    }
}

/// `verify-ca`: the chain must lead to a trusted root; the name is not checked.
#[derive(Debug)]
struct ChainOnly {
    webpki: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // webpki checks the chain before the name, so a name error means the chain passed.
        match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// `prefer` / `require` without a root certificate: any certificate is accepted, but the
/// handshake signatures are still checked, so the server holds the key of the certificate it
/// shows (which is what `tls-server-end-point` channel binding relies on).
#[derive(Debug)]
struct NoCertificateCheck {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for NoCertificateCheck {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssl::SslMode;

    fn config(mode: SslMode) -> Config {
        let mut c = Config::new(
            Host {
                host: "db.example".into(),
                port: 5432,
            },
            "u",
        );
        c.ssl.mode = mode;
        c
    }

    #[test]
    fn ssl_request_is_code_80877103() {
        assert_eq!(&SSL_REQUEST[4..], &80_877_103i32.to_be_bytes());
    }

    #[test]
    fn setup_sends_alpn_and_the_host_as_server_name() {
        let s = setup(&config(SslMode::Require)).unwrap();
        assert_eq!(s.client.alpn_protocols, vec![b"postgresql".to_vec()]);
        assert_eq!(s.server_name.to_str(), "db.example");
        let mut c = config(SslMode::Require);
        c.ssl.server_name = Some("other.example".into());
        assert_eq!(setup(&c).unwrap().server_name.to_str(), "other.example");
        let mut c = config(SslMode::Require);
        c.host.host = "::1".into();
        assert!(matches!(
            setup(&c).unwrap().server_name,
            ServerName::IpAddress(_)
        ));
    }

    #[test]
    fn bad_pem_is_a_config_error() {
        let mut c = config(SslMode::VerifyFull);
        c.ssl.root_cert = Some(b"not pem".to_vec());
        let e = setup(&c).unwrap_err();
        assert!(
            e.is_fatal_config() && e.message().contains("root_cert"),
            "{e}"
        );
        let mut c = config(SslMode::Require);
        c.ssl.client_cert =
            Some(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n".to_vec());
        c.ssl.client_key = Some(b"nothing".to_vec());
        assert!(setup(&c).unwrap_err().is_fatal_config());
    }
}
