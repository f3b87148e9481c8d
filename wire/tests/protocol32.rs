//! Protocol 3.2 (PostgreSQL 18), opt in: the StartupMessage asks for it, an older server's
//! NegotiateProtocolVersion brings the session down to 3.0, a server may not offer more than
//! was asked, cancel keys may be up to 256 bytes, and a session without BackendKeyData cannot
//! be cancelled (and says so).

#[path = "../src/test_support.rs"]
mod support;

use hyperion_wire::{Config, ErrorKind, Host, ProtocolVersion};
use std::time::Duration;
use support::{be, config, start, timed, Mock};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

fn asking_for_3_2(mut c: Config) -> Config {
    c.max_protocol_version = ProtocolVersion::V3_2;
    c
}

/// AuthenticationOk, the parameters, `extra`, then ReadyForQuery.
async fn finish(mock: &mut Mock, extra: Vec<u8>) {
    let mut out = be::auth_ok();
    for (k, v) in [("server_version", "18.1"), ("client_encoding", "UTF8")] {
        out.extend(be::parameter_status(k, v));
    }
    out.extend(extra);
    out.extend(be::ready(b'I'));
    mock.send(out).await;
}

fn negotiate(newest_minor: i32) -> Vec<u8> {
    let mut body = newest_minor.to_be_bytes().to_vec();
    body.extend(0i32.to_be_bytes());
    be::frame(b'v', &body)
}

#[tokio::test]
async fn a_3_2_server_grants_it_and_its_long_cancel_key_is_sent_whole() {
    timed(async {
        // Where the CancelRequest goes.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut c = asking_for_3_2(config());
        c.host = Host {
            host: "127.0.0.1".into(),
            port: listener.local_addr().unwrap().port(),
        };
        let (handle, mut mock) = start(c);
        let (version, _) = mock.startup_version().await;
        assert_eq!(version, (3 << 16) | 2, "the StartupMessage asks for 3.2");
        let key: Vec<u8> = (0..32u8).collect();
        finish(&mut mock, be::backend_key_data(7, &key)).await;
        let client = handle.await.unwrap().unwrap();
        assert_eq!(client.protocol_version(), (3, 2));
        let token = client.cancel_token();
        let cancel = tokio::spawn(async move { token.cancel(Duration::from_secs(5)).await });
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = vec![0u8; 4 + 4 + 4 + 32];
        s.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..4], &44u32.to_be_bytes(), "length");
        assert_eq!(
            &got[4..8],
            &80_877_102u32.to_be_bytes(),
            "CancelRequest code"
        );
        assert_eq!(&got[8..12], &7i32.to_be_bytes(), "process id");
        assert_eq!(&got[12..], &key[..], "the whole 32-byte key");
        drop(s);
        cancel.await.unwrap().unwrap();
    })
    .await;
}

#[tokio::test]
async fn an_older_server_negotiates_down_to_3_0() {
    timed(async {
        let (handle, mut mock) = start(asking_for_3_2(config()));
        mock.startup_version().await;
        // PostgreSQL sends NegotiateProtocolVersion first, before authentication.
        mock.send(negotiate(0)).await;
        finish(&mut mock, be::backend_key_data(7, &[1, 2, 3, 4])).await;
        let client = handle.await.unwrap().unwrap();
        assert_eq!(client.protocol_version(), (3, 0));
    })
    .await;
}

#[tokio::test]
async fn a_server_may_not_offer_more_than_was_asked() {
    timed(async {
        let (handle, mut mock) = start(asking_for_3_2(config()));
        mock.startup_version().await;
        mock.send(negotiate(5)).await;
        let err = handle.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol, "{err:?}");
        // Asked for 3.0, offered 3.2: the same.
        let (handle, mut mock) = start(config());
        mock.startup().await;
        mock.send(negotiate(2)).await;
        assert_eq!(
            handle.await.unwrap().unwrap_err().kind(),
            ErrorKind::Protocol
        );
    })
    .await;
}

#[tokio::test]
async fn without_backend_key_data_the_session_works_and_cannot_be_cancelled() {
    timed(async {
        let (handle, mut mock) = start(asking_for_3_2(config()));
        mock.startup_version().await;
        finish(&mut mock, vec![]).await;
        let client = handle
            .await
            .unwrap()
            .expect("no BackendKeyData is accepted");
        let err = client
            .cancel_token()
            .cancel(Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(err.code(), "UNSUPPORTED");
        assert!(err.message().contains("cannot be cancelled"), "{err}");
    })
    .await;
}
