//! `sink::nats::Control` (JetStream API calls on a connection of its own)
//! against a real nats-server; results checked with the independent test
//! client in `common::nats`.

mod common;

use common::nats::{on_glommio, Raw};
use marketprism::sink::nats::{ApiFail, Control, NatsSinkConfig};
use sonic_rs::JsonValueTrait;
use std::time::{Duration, Instant};

struct Nats {
    port: u16,
    mport: u16,
    dir: tempfile::TempDir,
    proc: Option<common::Proc>,
}

impl Nats {
    fn start() -> Nats {
        let mut n = Nats {
            port: common::free_port(),
            mport: common::free_port(),
            dir: tempfile::tempdir().unwrap(),
            proc: None,
        };
        n.up();
        n
    }
    fn up(&mut self) {
        self.proc = Some(common::start_nats(
            self.port,
            self.mport,
            &self.dir.path().join("store"),
        ));
    }
    fn down(&mut self) {
        self.proc.take();
    }
    fn cfg(&self) -> NatsSinkConfig {
        NatsSinkConfig {
            servers: vec![format!("nats://127.0.0.1:{}", self.port)],
            ..NatsSinkConfig::default()
        }
    }
}

fn create_stream(raw: &mut Raw, name: &str, subjects: &str) {
    raw.api(
        &format!("$JS.API.STREAM.CREATE.{name}"),
        &format!(r#"{{"name":"{name}","subjects":["{subjects}"],"storage":"memory"}}"#),
    );
}

#[test]
fn last_by_subject_is_the_last_stored_message() {
    let nats = Nats::start();
    let mut raw = Raw::connect(nats.port, None);
    create_stream(&mut raw, "T", "trade.>");
    // Two subjects interleaved: the last of each is its own.
    for i in 0..50u64 {
        let s = if i % 2 == 0 { "trade.a" } else { "trade.b" };
        raw.hpub(
            s,
            &format!("trade:x:{i}"),
            format!("{{\"i\":{i}}}").as_bytes(),
        );
    }
    let cfg = nats.cfg();
    let (a, b, empty, missing, stream_of, none_of) = on_glommio(move || async move {
        let c = Control::new(&cfg, "test-control");
        let a = c.last_by_subject("T", "trade.a").await.unwrap();
        let b = c.last_by_subject("T", "trade.b").await.unwrap();
        let empty = c.last_by_subject("T", "trade.c").await.unwrap();
        let missing = match c.last_by_subject("NOPE", "trade.a").await {
            Err(ApiFail::Refused { err_code, .. }) => err_code,
            other => panic!("expected a refusal, got {other:?}"),
        };
        // A refusal keeps the connection.
        assert!(c.connected());
        let stream_of = c.stream_for_subject("trade.z.y").await.unwrap();
        let none_of = c.stream_for_subject("book.z").await.unwrap();
        (a, b, empty, missing, stream_of, none_of)
    });
    let a = a.expect("trade.a has messages");
    assert_eq!(a.seq, 49);
    assert_eq!(a.msg_id.as_deref(), Some("trade:x:48"));
    assert_eq!(a.payload, b"{\"i\":48}");
    let b = b.expect("trade.b has messages");
    assert_eq!(
        (b.seq, b.msg_id.as_deref(), &b.payload[..]),
        (50, Some("trade:x:49"), &b"{\"i\":49}"[..])
    );
    assert_eq!(empty, None);
    assert_eq!(missing, 10059, "stream not found");
    assert_eq!(stream_of.as_deref(), Some("T"));
    assert_eq!(none_of, None);
}

#[test]
fn kv_bucket_put_list_and_expiry() {
    let nats = Nats::start();
    let cfg = nats.cfg();
    let (created, again, seqs, listed) = on_glommio(move || async move {
        let c = Control::new(&cfg, "test-control");
        // No bucket yet: no stream captures the key (and the connection stays).
        let absent = c.kv_put("members", "node-a", b"v0").await;
        assert!(
            matches!(absent, Err(ApiFail::Refused { code: 503, .. })),
            "{absent:?}"
        );
        assert!(c.connected());
        let created = c
            .kv_ensure("members", Duration::from_secs(30))
            .await
            .unwrap();
        let again = c
            .kv_ensure("members", Duration::from_secs(30))
            .await
            .unwrap();
        let s1 = c.kv_put("members", "node-a", b"v1").await.unwrap();
        let s2 = c.kv_put("members", "node-b", b"b").await.unwrap();
        let s3 = c.kv_put("members", "node-a", b"v2").await.unwrap();
        let bad = c.kv_put("members", "a b", b"x").await;
        assert!(
            matches!(bad, Err(ApiFail::Refused { code: 400, .. })),
            "{bad:?}"
        );
        let listed = c.kv_entries("members").await.unwrap();
        (created, again, [s1, s2, s3], listed)
    });
    assert!(created, "first kv_ensure creates the bucket");
    assert!(!again, "second kv_ensure finds it");
    assert_eq!(seqs, [1, 2, 3]);
    let got: Vec<(String, u64, Vec<u8>)> = listed
        .into_iter()
        .map(|e| (e.key, e.seq, e.value))
        .collect();
    assert_eq!(
        got,
        vec![
            ("node-a".to_string(), 3, b"v2".to_vec()),
            ("node-b".to_string(), 2, b"b".to_vec()),
        ]
    );
    // The bucket has the KV convention's settings (what `nats kv` expects).
    let mut raw = Raw::connect(nats.port, None);
    let c = raw.stream_config("KV_members");
    let field = |k: &str| c.get(k).map(|v| v.to_string()).unwrap_or_default();
    assert_eq!(field("subjects"), r#"["$KV.members.>"]"#);
    assert_eq!(field("max_msgs_per_subject"), "1");
    assert_eq!(field("max_age"), "30000000000");
    assert_eq!(field("discard"), r#""new""#);
    assert_eq!(field("storage"), r#""file""#);
    assert_eq!(field("allow_rollup_hdrs"), "true");
    assert_eq!(field("deny_delete"), "true");
    assert_eq!(field("allow_direct"), "true");
    // Only the last value of each key is kept.
    assert_eq!(raw.stream_messages("KV_members"), 2);
}

#[test]
fn kv_key_disappears_after_its_ttl() {
    let nats = Nats::start();
    let cfg = nats.cfg();
    let (right_after, later) = on_glommio(move || async move {
        let c = Control::new(&cfg, "test-control");
        c.kv_ensure("ttl", Duration::from_secs(1)).await.unwrap();
        c.kv_put("ttl", "k", b"alive").await.unwrap();
        let right_after = c.kv_entries("ttl").await.unwrap();
        // Poll (bounded) until the server expired it.
        let deadline = Instant::now() + Duration::from_secs(15);
        let later = loop {
            let e = c.kv_entries("ttl").await.unwrap();
            if e.is_empty() || Instant::now() > deadline {
                break e;
            }
            glommio::timer::sleep(Duration::from_millis(200)).await;
        };
        (right_after, later)
    });
    assert_eq!(right_after.len(), 1);
    assert_eq!(
        (right_after[0].key.as_str(), &right_after[0].value[..]),
        ("k", &b"alive"[..])
    );
    assert_eq!(later, vec![], "the key outlived its ttl by 14 s");
}

/// Waits on the executor for a message from the test thread.
async fn recv(rx: &std::sync::mpsc::Receiver<()>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while rx.try_recv().is_err() {
        assert!(Instant::now() < deadline, "test thread never signalled");
        glommio::timer::sleep(Duration::from_millis(20)).await;
    }
}

#[test]
fn a_failed_call_errors_and_the_next_reconnects() {
    let mut nats = Nats::start();
    let mut raw = Raw::connect(nats.port, None);
    create_stream(&mut raw, "T", "trade.>");
    raw.hpub("trade.a", "id-1", b"one");
    drop(raw);
    let cfg = nats.cfg();
    let (to_test, from_exec) = std::sync::mpsc::channel::<()>();
    let (to_exec, from_test) = std::sync::mpsc::channel::<()>();
    let handle = std::thread::spawn(move || {
        on_glommio(move || async move {
            let c = Control::new(&cfg, "test-control");
            let first = c.last_by_subject("T", "trade.a").await.unwrap();
            to_test.send(()).unwrap();
            recv(&from_test).await; // server down
            let failed = c.last_by_subject("T", "trade.a").await;
            let connected = c.connected();
            to_test.send(()).unwrap();
            recv(&from_test).await; // server up again
            let after = c.last_by_subject("T", "trade.a").await;
            (first, failed, connected, after)
        })
    });
    from_exec.recv().unwrap();
    nats.down();
    to_exec.send(()).unwrap();
    from_exec.recv().unwrap();
    nats.up();
    // The stream was in memory: the restarted server holds a new one.
    let mut raw = Raw::connect(nats.port, None);
    create_stream(&mut raw, "T", "trade.>");
    raw.hpub("trade.a", "id-2", b"two");
    to_exec.send(()).unwrap();
    let (first, failed, connected, after) = handle.join().unwrap();
    assert_eq!(first.unwrap().msg_id.as_deref(), Some("id-1"));
    assert!(
        matches!(failed, Err(ApiFail::Conn(_))),
        "with the server down: {failed:?}"
    );
    assert!(!connected, "the failed connection is dropped");
    let after = after.expect("the next call reconnects").unwrap();
    assert_eq!(
        (after.seq, after.msg_id.as_deref(), &after.payload[..]),
        (1, Some("id-2"), &b"two"[..])
    );
}
