//! The protocol loop's [`Pace`] flag, which a runner's stream reads to pace its reads: set
//! once the answer at the head of the line has brought [`Pace::AFTER`] bytes, cleared when
//! that answer ends; small answers never set it. No PostgreSQL server is needed.

#[path = "../src/test_support.rs"]
mod support;

use hyperion_wire::connection::connect_stream_paced;
use hyperion_wire::runner::Pace;
use hyperion_wire::{Client, Error, QueryResult};
use std::time::Duration;
use support::{be, config, timed, Mock};
use tokio::task::JoinHandle;

async fn paced_client() -> (Client, Mock, Pace) {
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let pace = Pace::default();
    let (cfg, p) = (config(), pace.clone());
    let handle = tokio::spawn(async move { connect_stream_paced(client_end, &cfg, p).await });
    let mut mock = Mock::new(server_end);
    mock.trust().await;
    let client = handle.await.expect("connect task").expect("connect");
    (client, mock, pace)
}

fn spawn_simple(client: &Client, sql: &'static str) -> JoinHandle<Result<Vec<QueryResult>, Error>> {
    let c = client.clone();
    tokio::spawn(async move { c.simple_query(sql).await })
}

/// Waits (a bounded while) until `pace` reads `want`.
async fn until(pace: &Pace, want: bool) {
    for _ in 0..2000 {
        if pace.get() == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("pace never became {want}");
}

#[tokio::test]
async fn pace_is_set_in_a_large_answer_only_and_cleared_when_it_ends() {
    timed(async {
        let (client, mut mock, pace) = paced_client().await;

        // A small answer never sets it.
        let q = spawn_simple(&client, "select 1");
        mock.recv_group().await;
        mock.answer_rows(&["1"]).await;
        assert_eq!(q.await.unwrap().unwrap()[0].rows.len(), 1);
        assert!(!pace.get());

        // A large one: rows of about 1 KB. Before `Pace::AFTER` bytes have even been sent,
        // the loop cannot have read them, so the flag must still be clear.
        let q = spawn_simple(&client, "select big");
        mock.recv_group().await;
        let head = be::row_description(&[("n", 25)]);
        let row = be::data_row(&[Some(&[b'x'; 1000][..])]);
        mock.send(&head).await;
        let mut sent = head.len();
        let mut rows = 0;
        while sent + row.len() < Pace::AFTER {
            mock.send(&row).await;
            sent += row.len();
            rows += 1;
            assert!(!pace.get(), "set after {sent} bytes sent");
        }
        // Past it (and past what the duplex buffers), the loop sets it once it has read them.
        while sent < Pace::AFTER + 128 * 1024 {
            mock.send(&row).await;
            sent += row.len();
            rows += 1;
        }
        until(&pace, true).await;

        // The end of the answer clears it, and the rows are all there.
        let mut tail = be::command_complete(&format!("SELECT {rows}"));
        tail.extend(be::ready(b'I'));
        mock.send(tail).await;
        assert_eq!(q.await.unwrap().unwrap()[0].rows.len(), rows);
        until(&pace, false).await;

        // The next small answer starts from nothing again.
        let q = spawn_simple(&client, "select 2");
        mock.recv_group().await;
        mock.answer_rows(&["2"]).await;
        assert_eq!(q.await.unwrap().unwrap()[0].rows.len(), 1);
        assert!(!pace.get());
    })
    .await
}
