//! The authentication policy and the TLS decisions that need no real server, against a
//! scripted backend: what the client refuses to answer (`require_auth`, the no-cleartext
//! default, `channel_binding`), and what `sslmode` does when the server answers 'N'. Each
//! refusal must happen before a byte of the password leaves, and be fatal for the pool.

#[path = "../src/test_support.rs"]
mod support;

use hyperion_wire::{connect, ChannelBindingMode, Config, Error, Host, SslMode};
use support::{be, config_with_password, start, timed, Mock};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Runs startup against the mock, which asks for authentication with `request`; returns the
/// client's error and checks that the client sent nothing after the StartupMessage.
async fn refused(config: Config, request: Vec<u8>) -> Error {
    let (handle, mut mock) = start(config);
    mock.startup().await;
    mock.send(request).await;
    let err = handle.await.unwrap().unwrap_err();
    if let Some(msg) = mock.recv().await {
        panic!("the client answered {msg:?} before refusing");
    }
    assert!(
        err.is_fatal_config(),
        "{err:?} must stop the pool's retries"
    );
    err
}

async fn accepted(config: Config, request: Vec<u8>, answer_tag: u8) {
    let (handle, mut mock) = start(config);
    mock.startup().await;
    mock.send(request).await;
    mock.expect(answer_tag).await;
    mock.finish_startup().await;
    handle.await.unwrap().unwrap();
}

fn with_require_auth(s: &str) -> Config {
    let mut c = config_with_password("s3cret");
    c.require_auth = s.parse().unwrap();
    c
}

#[tokio::test]
async fn cleartext_over_plain_tcp_is_refused_by_default() {
    timed(async {
        let err = refused(config_with_password("s3cret"), be::auth(3, &[])).await;
        let m = err.message();
        assert!(
            m.contains("cleartext password") && m.contains("without TLS"),
            "{m}"
        );
        assert!(m.contains("require_auth=password"), "names the option: {m}");
        assert_eq!(err.code(), "AUTH_FAILED");
    })
    .await
}

#[tokio::test]
async fn md5_is_refused_when_require_auth_does_not_list_it() {
    timed(async {
        let err = refused(
            with_require_auth("scram-sha-256"),
            be::auth(5, &[1, 2, 3, 4]),
        )
        .await;
        let m = err.message();
        assert!(
            m.contains("\"md5\"") && m.contains("add md5 to require_auth"),
            "{m}"
        );
        let err = refused(with_require_auth("!md5"), be::auth(5, &[1, 2, 3, 4])).await;
        assert!(err.message().contains("remove !md5"), "{}", err.message());
    })
    .await
}

#[tokio::test]
async fn cleartext_is_refused_when_require_auth_forbids_it() {
    timed(async {
        let err = refused(with_require_auth("md5,scram-sha-256"), be::auth(3, &[])).await;
        assert!(err.message().contains("add password"), "{}", err.message());
        let err = refused(with_require_auth("!password"), be::auth(3, &[])).await;
        assert!(
            err.message().contains("remove !password"),
            "{}",
            err.message()
        );
    })
    .await
}

#[tokio::test]
async fn allowed_methods_are_answered() {
    timed(async {
        // The default still answers MD5 (as libpq); an explicit list opts in to cleartext.
        accepted(
            config_with_password("s3cret"),
            be::auth(5, &[9, 9, 9, 9]),
            b'p',
        )
        .await;
        accepted(with_require_auth("password"), be::auth(3, &[]), b'p').await;
        accepted(
            with_require_auth("!password"),
            be::auth(5, &[9, 9, 9, 9]),
            b'p',
        )
        .await;
    })
    .await
}

#[tokio::test]
async fn a_server_that_skips_authentication_is_refused_when_none_is_not_allowed() {
    timed(async {
        for spec in ["scram-sha-256", "!none", "md5,password"] {
            let err = refused(with_require_auth(spec), be::auth_ok()).await;
            assert!(
                err.message().contains("no authentication at all"),
                "{spec}: {}",
                err.message()
            );
        }
        // Allowed by default and when listed.
        for spec in ["", "none", "scram-sha-256,none", "!md5"] {
            let (handle, mut mock) = start(with_require_auth(spec));
            mock.startup().await;
            mock.finish_startup().await;
            handle
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("{spec}: {e}"));
        }
    })
    .await
}

#[tokio::test]
async fn channel_binding_require_refuses_everything_but_scram_plus_over_tls() {
    timed(async {
        let require = || {
            let mut c = config_with_password("s3cret");
            c.channel_binding = ChannelBindingMode::Require;
            c
        };
        let err = refused(require(), be::auth(5, &[1, 2, 3, 4])).await;
        assert!(err.message().contains("channel_binding=require"), "{err}");
        let err = refused(require(), be::auth_ok()).await;
        assert!(err.message().contains("channel_binding=require"), "{err}");
        // SASL offered, but this connection is not TLS: nothing to bind to.
        let sasl = b"SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0".to_vec();
        let err = refused(require(), be::auth(10, &sasl)).await;
        assert!(err.message().contains("not TLS"), "{err}");
        // Without require, the same offer over plain text runs SCRAM-SHA-256 with "n,,".
        let (handle, mut mock) = start(config_with_password("s3cret"));
        mock.startup().await;
        mock.send(be::auth(10, &sasl)).await;
        let first = mock.expect(b'p').await;
        assert!(first.body.starts_with(b"SCRAM-SHA-256\0"), "{first:?}");
        assert!(
            first.body.windows(5).any(|w| w == b"n,,n="),
            "gs2 header n: {first:?}"
        );
        drop(mock);
        let _ = handle.await;
    })
    .await
}

/// A TCP server that answers SSLRequest with `answer`, then (if the client goes on in plain
/// text) trusts the client. Returns its port and a task yielding what it saw first.
async fn ssl_refusing_server(answer: u8) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut first = [0u8; 8];
        s.read_exact(&mut first).await.unwrap();
        s.write_all(&[answer]).await.unwrap();
        // A StartupMessage follows only if the client goes on in plain text.
        let mut len = [0u8; 4];
        if s.read_exact(&mut len).await.is_ok() {
            let mut rest = vec![0u8; u32::from_be_bytes(len) as usize - 4];
            s.read_exact(&mut rest).await.unwrap();
            let mut mock = Vec::new();
            mock.extend(be::auth_ok());
            mock.extend(be::backend_key_data(7, &[0, 0, 0, 1]));
            mock.extend(be::ready(b'I'));
            s.write_all(&mock).await.unwrap();
            let mut sink = [0u8; 64];
            let _ = s.read(&mut sink).await;
        }
        first.to_vec()
    });
    (port, task)
}

/// A self-signed CA certificate (no key kept): a root certificate for the modes that need
/// one (verify-ca) where the server never gets as far as presenting its own.
const FIXTURE_CA: &str = "-----BEGIN CERTIFICATE-----\nMIIBnTCCAUOgAwIBAgIUfmnp59TQfCFv18YrEaa340cgbdYwCgYIKoZIzj0EAwIw\nIzEhMB8GA1UEAwwYaHlwZXJpb24gdGVzdCBmaXh0dXJlIENBMCAXDTI2MTIwNzIz\nMTY0MFoYDzIxMjYxMTEzMjMxNjQwWjAjMSEwHwYDVQQDDBhoeXBlcmlvbiB0ZXN0\nIGZpeHR1cmUgQ0EwWTATBgcqhkjOPQIBBggqhkjOPQMBBwNCAAT23uLAvzcu+rz2\nKz4MrpB0p/MzkfDkNvKiJ7h9zL/Ul97W19zpnsGeFMIm5ElytDOIno2LrMRTH6rw\naoNrAvbXo1MwUTAdBgNVHQ4EFgQUplCBdu8zK2m2UmtLARJKhLKukoQwHwYDVR0j\nBBgwFoAUplCBdu8zK2m2UmtLARJKhLKukoQwDwYDVR0TAQH/BAUwAwEB/zAKBggq\nhkjOPQQDAgNIADBFAiEA8UnE6BAuBdwZXLWXJeJEhrMqkXVO5Pm3brnHHh/Mk5cC\nIHi12jxVMMmKduU2pQRkDSfCPeguqyx0j6I7gjcZqoPi\n-----END CERTIFICATE-----\n";

fn tcp_config(port: u16, mode: SslMode) -> Config {
    let mut c = Config::new(
        Host {
            host: "127.0.0.1".into(),
            port,
        },
        "u",
    );
    c.ssl.mode = mode;
    if mode == SslMode::VerifyCa {
        // verify-ca needs a root certificate of its own.
        c.ssl.root_cert = Some(FIXTURE_CA.as_bytes().to_vec());
    }
    c
}

#[tokio::test]
async fn prefer_goes_on_in_plain_text_when_the_server_answers_n() {
    timed(async {
        let (port, server) = ssl_refusing_server(b'N').await;
        let client = connect(&tcp_config(port, SslMode::Prefer)).await.unwrap();
        assert!(!client.cancel_token().uses_tls());
        client.close();
        let first = server.await.unwrap();
        assert_eq!(
            first,
            [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f],
            "SSLRequest first"
        );
    })
    .await
}

#[tokio::test]
async fn require_fails_when_the_server_answers_n() {
    timed(async {
        for mode in [SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
            let (port, server) = ssl_refusing_server(b'N').await;
            let err = connect(&tcp_config(port, mode)).await.unwrap_err();
            assert!(
                err.message().contains("does not support TLS")
                    && err.message().contains(mode.name()),
                "{err}"
            );
            assert!(err.is_fatal_config(), "{err:?}");
            server.await.unwrap();
        }
    })
    .await
}

#[tokio::test]
async fn disable_sends_no_ssl_request_and_direct_needs_require() {
    timed(async {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            let (client_end, server_end) = tokio::io::duplex(1 << 16);
            // Relay through a Mock so its StartupMessage parser checks the first bytes.
            let (mut r, mut w) = tokio::io::split(s);
            let (mut cr, mut cw) = tokio::io::split(client_end);
            tokio::spawn(async move { tokio::io::copy(&mut r, &mut cw).await });
            tokio::spawn(async move { tokio::io::copy(&mut cr, &mut w).await });
            let mut mock = Mock::new(server_end);
            mock.startup().await;
            mock.finish_startup().await;
            mock
        });
        let client = connect(&tcp_config(port, SslMode::Disable)).await.unwrap();
        let _mock = server.await.unwrap();
        client.close();

        let mut c = tcp_config(1, SslMode::Prefer);
        c.ssl.negotiation = hyperion_wire::SslNegotiation::Direct;
        let err = connect(&c).await.unwrap_err();
        assert!(err.message().contains("sslnegotiation=direct"), "{err}");
        assert!(err.is_fatal_config());
    })
    .await
}
