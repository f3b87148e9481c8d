//! TLS, channel binding, client certificates and Unix sockets against a real PostgreSQL 17
//! with `ssl = on`. `test/tls.test.js` makes a CA, a server and a client certificate, starts
//! the server and runs these with `--ignored`, passing `HYPERION_WIRE_HOST` / `_PORT` /
//! `_USER` / `_PASSWORD` / `_DATABASE`, and `HYPERION_TLS_DIR` (ca.pem, other-ca.pem,
//! client.pem, client.key), `HYPERION_TLS_CERT_USER` (a role pg_hba lets in by `cert`) and
//! `HYPERION_TLS_SOCKET_DIR`.

#[path = "../src/test_support.rs"]
mod support;

use hyperion_wire::{
    connect, ChannelBindingMode, Client, Config, ErrorKind, Host, SslMode, SslNegotiation,
};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const RUNNER: &str = "test/tls.test.js";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run these through {RUNNER}"))
}

fn pem(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env("HYPERION_TLS_DIR")).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// verify-full against the test CA.
fn verified() -> Config {
    let mut c = support::real_server_config(RUNNER);
    c.ssl.mode = SslMode::VerifyFull;
    c.ssl.root_cert = Some(pem("ca.pem"));
    c
}

async fn bounded<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("hung")
}

async fn text(client: &Client, sql: &str) -> String {
    let r = client.simple_query(sql).await.unwrap();
    support::first_text(&r[0])
}

/// What the server says of this session's encryption.
async fn session_ssl(client: &Client) -> String {
    text(
        client,
        "select ssl::text || ' ' || version from pg_stat_ssl where pid = pg_backend_pid()",
    )
    .await
}

#[tokio::test]
#[ignore = "needs a TLS server: run by test/tls.test.js"]
async fn verify_full_succeeds_and_the_session_is_encrypted() {
    bounded(async {
        let client = connect(&verified()).await.unwrap();
        assert!(session_ssl(&client).await.starts_with("true TLSv1."));
        assert!(client.cancel_token().uses_tls());
    })
    .await
}

#[tokio::test]
#[ignore = "needs a TLS server: run by test/tls.test.js"]
async fn prefer_uses_tls_when_the_server_has_it() {
    bounded(async {
        let mut c = support::real_server_config(RUNNER);
        c.ssl.mode = SslMode::Prefer;
        let client = connect(&c).await.unwrap();
        assert!(session_ssl(&client).await.starts_with("true"));
    })
    .await
}

#[tokio::test]
#[ignore = "needs a TLS server: run by test/tls.test.js"]
async fn a_wrong_host_name_is_refused_by_verify_full_only() {
    bounded(async {
        let mut c = verified();
        c.ssl.server_name = Some("not-the-server.example".into());
        let err = connect(&c).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Auth, "{err:?}");
        assert!(err.is_fatal_config());
        assert!(
            err.message().contains("certificate was refused")
                && err.message().contains("not valid for name"),
            "{err}"
        );
        // verify-ca checks the chain only: the same name is fine there.
        c.ssl.mode = SslMode::VerifyCa;
        let client = connect(&c).await.unwrap();
        assert!(session_ssl(&client).await.starts_with("true"));
    })
    .await
}

#[tokio::test]
#[ignore = "needs a TLS server: run by test/tls.test.js"]
async fn an_untrusted_ca_is_refused() {
    bounded(async {
        for mode in [SslMode::VerifyCa, SslMode::VerifyFull, SslMode::Require] {
            // Require with a root certificate checks the chain (libpq's rule).
            let mut c = verified();
            c.ssl.mode = mode;
            c.ssl.root_cert = Some(pem("other-ca.pem"));
            let err = connect(&c).await.unwrap_err();
            assert!(
                err.message().contains("certificate was refused")
                    && err.message().contains("UnknownIssuer"),
                "{mode:?}: {err}"
            );
            assert!(err.is_fatal_config());
        }
        // Require without one encrypts without checking.
        let mut c = verified();
        c.ssl.mode = SslMode::Require;
        c.ssl.root_cert = None;
        connect(&c).await.unwrap();
    })
    .await
}

#[tokio::test]
#[ignore = "needs a TLS server: run by test/tls.test.js"]
async fn client_certificate_authentication() {
    bounded(async {
        let mut c = verified();
        c.user = env("HYPERION_TLS_CERT_USER");
        c.password = None;
        c.ssl.client_cert = Some(pem("client.pem"));
        c.ssl.client_key = Some(pem("client.key"));
        let client = connect(&c).await.unwrap();
        assert_eq!(text(&client, "select current_user").await, c.user);
        // Without the certificate the same role is refused by pg_hba's `cert`.
        c.ssl.client_cert = None;
        c.ssl.client_key = None;
        let err = connect(&c).await.unwrap_err();
        assert_eq!(err.code(), "28000", "{err:?}");
    })
    .await
}

#[tokio::test]
#[ignore = "needs a TLS server: run by test/tls.test.js"]
async fn scram_plus_with_channel_binding_required() {
    bounded(async {
        let mut c = verified();
        c.channel_binding = ChannelBindingMode::Require;
        c.require_auth = "scram-sha-256".parse().unwrap();
        let client = connect(&c).await.unwrap();
        assert!(session_ssl(&client).await.starts_with("true"));
        // Binding works without certificate checks too (the handshake still proves the key).
        c.ssl.mode = SslMode::Require;
        c.ssl.root_cert = None;
        connect(&c).await.unwrap();
        // Over plain text, require cannot be met.
        c.ssl.mode = SslMode::Disable;
        let err = connect(&c).await.unwrap_err();
        assert!(
            err.message().contains("not TLS") && err.is_fatal_config(),
            "{err}"
        );
    })
    .await
}

#[tokio::test]
#[ignore = "needs a TLS server: run by test/tls.test.js"]
async fn direct_ssl_negotiation_on_postgresql_17() {
    bounded(async {
        let mut c = verified();
        c.ssl.negotiation = SslNegotiation::Direct;
        c.channel_binding = ChannelBindingMode::Require;
        let client = connect(&c).await.unwrap();
        assert!(session_ssl(&client).await.starts_with("true"));
        // Its cancel token negotiates the same way.
        client
            .cancel_token()
            .cancel(Duration::from_secs(5))
            .await
            .unwrap();
    })
    .await
}

#[tokio::test]
#[ignore = "needs a TLS server: run by test/tls.test.js"]
async fn a_cancel_request_over_tls_cancels_pg_sleep() {
    bounded(async {
        let client = connect(&verified()).await.unwrap();
        let token = client.cancel_token();
        assert!(token.uses_tls());
        let started = Instant::now();
        let sleeper = {
            let client = client.clone();
            tokio::spawn(async move { client.simple_query("select pg_sleep(30)").await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel(Duration::from_secs(5)).await.unwrap();
        let err = sleeper.await.unwrap().unwrap_err();
        assert_eq!(err.code(), "57014", "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(text(&client, "select 1").await, "1");
    })
    .await
}

#[tokio::test]
#[ignore = "needs a TLS server: run by test/tls.test.js"]
async fn a_unix_socket_directory_as_host() {
    bounded(async {
        let tcp = support::real_server_config(RUNNER);
        let dir = env("HYPERION_TLS_SOCKET_DIR");
        let host = Host::parse(&dir, tcp.host.port).unwrap();
        assert!(host.is_unix_socket());
        let mut c = Config::new(host, tcp.user.clone());
        c.password = tcp.password.clone();
        c.database = tcp.database.clone();
        let client = connect(&c).await.unwrap();
        // No TLS and no TCP on a Unix socket: the server sees no client address.
        assert_eq!(
            text(
                &client,
                "select coalesce(inet_client_addr()::text, 'local')"
            )
            .await,
            "local"
        );
        assert!(!client.cancel_token().uses_tls());
        // Cancel goes to the same socket.
        let token = client.cancel_token();
        let sleeper = {
            let client = client.clone();
            tokio::spawn(async move { client.simple_query("select pg_sleep(30)").await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel(Duration::from_secs(5)).await.unwrap();
        assert_eq!(sleeper.await.unwrap().unwrap_err().code(), "57014");
    })
    .await
}
