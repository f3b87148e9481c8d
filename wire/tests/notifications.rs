//! LISTEN/NOTIFY on the connection driver, against the scripted backend: notifications the
//! server slips between the messages of pipelined results reach the connection's sink, in
//! order, and leave those results as they would be without them.

#[path = "../src/test_support.rs"]
mod support;

use hyperion_wire::{Client, Notification, QueryResult};
use std::sync::{Arc, Mutex};
use support::{be, connected, first_text, timed};

/// A NotificationResponse as the server frames it.
fn notification(pid: i32, channel: &str, payload: &str) -> Vec<u8> {
    let mut body = pid.to_be_bytes().to_vec();
    for s in [channel, payload] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    be::frame(b'A', &body)
}

fn spawn_simple(
    client: &Client,
    sql: &'static str,
) -> tokio::task::JoinHandle<Result<Vec<QueryResult>, hyperion_wire::Error>> {
    let c = client.clone();
    tokio::spawn(async move { c.simple_query(sql).await })
}

fn texts(r: &QueryResult) -> Vec<String> {
    r.rows
        .iter()
        .map(|row| String::from_utf8(row.values().next().unwrap().unwrap().to_vec()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_between_pipelined_results_reach_the_sink_and_leave_the_results_alone() {
    timed(async {
        let (client, mut mock) = connected().await;
        let seen = Arc::new(Mutex::new(Vec::<Notification>::new()));
        let s = seen.clone();
        client.on_notification(Some(Box::new(move |n| s.lock().unwrap().push(n))));

        let a = spawn_simple(&client, "select 'one'");
        let b = spawn_simple(&client, "select 'two'");
        let mut order = vec![];
        for _ in 0..2 {
            order.push(mock.recv_group().await[0].query_text());
        }
        assert_eq!(client.state().in_flight(), 2, "both are pipelined");
        // Each answer is cut by notifications: before its description, between its rows,
        // before its ReadyForQuery; and one arrives with nothing in flight at all.
        for (k, sql) in order.iter().enumerate() {
            let rows: &[&str] = if sql == "select 'one'" {
                &["1a", "1b"]
            } else {
                &["2a"]
            };
            let mut out = notification(7, "jobs", &format!("before {k}"));
            out.extend(be::row_description(&[("n", 25)]));
            for r in rows {
                out.extend(be::data_row(&[Some(r.as_bytes())]));
                out.extend(notification(8, "other", r));
            }
            out.extend(be::command_complete(&format!("SELECT {}", rows.len())));
            out.extend(notification(7, "jobs", ""));
            out.extend(be::ready(b'I'));
            mock.send(out).await;
        }
        let a = a.await.unwrap().unwrap();
        let b = b.await.unwrap().unwrap();
        assert_eq!((a.len(), b.len()), (1, 1));
        assert_eq!(texts(&a[0]), ["1a", "1b"]);
        assert_eq!(texts(&b[0]), ["2a"]);
        assert_eq!(a[0].command_tag.as_deref(), Some("SELECT 2"));

        mock.send(notification(9, "idle", "with nothing in flight"))
            .await;
        // The loop delivers it on its own; a query after it shows the connection in step.
        let c = spawn_simple(&client, "select 'three'");
        assert_eq!(mock.recv_group().await[0].query_text(), "select 'three'");
        mock.answer_rows(&["3"]).await;
        assert_eq!(first_text(&c.await.unwrap().unwrap()[0]), "3");

        let got = seen.lock().unwrap().clone();
        let n = |pid, channel: &str, payload: &str| Notification {
            process_id: pid,
            channel: channel.into(),
            payload: payload.into(),
        };
        let first = if order[0] == "select 'one'" {
            ["1a", "1b"].as_slice()
        } else {
            &["2a"]
        };
        let second = if order[0] == "select 'one'" {
            ["2a"].as_slice()
        } else {
            &["1a", "1b"]
        };
        let mut want = vec![n(7, "jobs", "before 0")];
        want.extend(first.iter().map(|r| n(8, "other", r)));
        want.push(n(7, "jobs", ""));
        want.push(n(7, "jobs", "before 1"));
        want.extend(second.iter().map(|r| n(8, "other", r)));
        want.push(n(7, "jobs", ""));
        want.push(n(9, "idle", "with nothing in flight"));
        assert_eq!(got, want);
        assert!(!client.is_closed());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_sink_notifications_are_dropped_and_a_removed_sink_gets_no_more() {
    timed(async {
        let (client, mut mock) = connected().await;
        let seen = Arc::new(Mutex::new(0));
        let q = spawn_simple(&client, "select 'x'");
        mock.recv_group().await;
        let mut out = notification(1, "c", "unheard");
        out.extend(be::row_description(&[("n", 25)]));
        out.extend(be::data_row(&[Some(b"x")]));
        out.extend(be::command_complete("SELECT 1"));
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        assert_eq!(first_text(&q.await.unwrap().unwrap()[0]), "x");

        let s = seen.clone();
        client.on_notification(Some(Box::new(move |_| *s.lock().unwrap() += 1)));
        let q = spawn_simple(&client, "select 'y'");
        mock.recv_group().await;
        let mut out = notification(1, "c", "heard");
        out.extend(be::row_description(&[("n", 25)]));
        out.extend(be::data_row(&[Some(b"y")]));
        out.extend(be::command_complete("SELECT 1"));
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        assert_eq!(first_text(&q.await.unwrap().unwrap()[0]), "y");
        assert_eq!(*seen.lock().unwrap(), 1);

        client.on_notification(None);
        let q = spawn_simple(&client, "select 'z'");
        mock.recv_group().await;
        let mut out = notification(1, "c", "after removal");
        out.extend(be::row_description(&[("n", 25)]));
        out.extend(be::data_row(&[Some(b"z")]));
        out.extend(be::command_complete("SELECT 1"));
        out.extend(be::ready(b'I'));
        mock.send(out).await;
        assert_eq!(first_text(&q.await.unwrap().unwrap()[0]), "z");
        assert_eq!(*seen.lock().unwrap(), 1);
    })
    .await
}
