//! A minimal blocking NATS client for tests, independent of the code under
//! test: core subscriptions, request/reply, and the JetStream API calls the
//! tests check results with (stream create/info/delete, stored messages).
#![allow(dead_code)]

use serde::Deserialize;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

pub struct Raw {
    pub r: BufReader<TcpStream>,
    pub w: TcpStream,
    n: u64,
}

#[derive(Deserialize)]
struct StreamInfo {
    state: StreamState,
}
#[derive(Deserialize)]
struct StreamState {
    messages: u64,
    #[serde(default)]
    last_seq: u64,
}
#[derive(Deserialize)]
struct MsgGet {
    message: StoredMsg,
}
#[derive(Deserialize)]
struct StoredMsg {
    subject: String,
    #[serde(default)]
    hdrs: Option<String>,
    #[serde(default)]
    data: Option<String>,
}

impl Raw {
    pub fn connect(port: u16, auth: Option<(&str, &str)>) -> Raw {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut raw = Raw {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
            n: 0,
        };
        let info = raw.line();
        assert!(info.starts_with("INFO "), "{info}");
        let auth = auth
            .map(|(u, p)| format!(r#","user":"{u}","pass":"{p}""#))
            .unwrap_or_default();
        write!(
            raw.w,
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"headers\":true,\"protocol\":1{auth}}}\r\nPING\r\n"
        )
        .unwrap();
        loop {
            let l = raw.line();
            match l.as_str() {
                "PONG" => break,
                "+OK" => {}
                l if l.starts_with("INFO") => {}
                other => panic!("handshake: {other}"),
            }
        }
        raw
    }

    /// Reads until the reply to a request on `subject` (subscription
    /// `self.n`), returns its body and drops the subscription.
    fn reply(&mut self, subject: &str) -> Vec<u8> {
        loop {
            let l = self.line();
            let f: Vec<&str> = l.split(' ').collect();
            match f[0] {
                "MSG" => {
                    let len: usize = f.last().unwrap().parse().unwrap();
                    let mut body = vec![0; len + 2];
                    self.r.read_exact(&mut body).unwrap();
                    body.truncate(len);
                    write!(self.w, "UNSUB {}\r\n", self.n).unwrap();
                    return body;
                }
                "PING" => self.w.write_all(b"PONG\r\n").unwrap(),
                "HMSG" => panic!("status reply to {subject}: {l}"),
                _ => {}
            }
        }
    }

    pub fn line(&mut self) -> String {
        let mut l = String::new();
        self.r.read_line(&mut l).unwrap();
        l.trim_end().to_string()
    }

    /// Request/reply; returns the reply payload.
    pub fn request(&mut self, subject: &str, payload: &[u8]) -> Vec<u8> {
        self.n += 1;
        let inbox = format!("_RAW.reply.{}", self.n);
        write!(
            self.w,
            "SUB {inbox} {}\r\nPUB {subject} {inbox} {}\r\n",
            self.n,
            payload.len()
        )
        .unwrap();
        self.w.write_all(payload).unwrap();
        self.w.write_all(b"\r\n").unwrap();
        self.reply(subject)
    }

    /// A JetStream API call whose reply must not be an error.
    pub fn api(&mut self, subject: &str, payload: &str) -> sonic_rs::Value {
        let body = self.request(subject, payload.as_bytes());
        let v: sonic_rs::Value = sonic_rs::from_slice(&body).unwrap();
        assert!(
            sonic_rs::JsonValueTrait::get(&v, "error").is_none(),
            "{subject}: {}",
            String::from_utf8_lossy(&body)
        );
        v
    }

    /// The stream's configuration as the server reports it.
    pub fn stream_config(&mut self, stream: &str) -> sonic_rs::Value {
        let v = self.api(&format!("$JS.API.STREAM.INFO.{stream}"), "");
        sonic_rs::JsonValueTrait::get(&v, "config").unwrap().clone()
    }

    pub fn stream_messages(&mut self, stream: &str) -> u64 {
        let body = self.request(&format!("$JS.API.STREAM.INFO.{stream}"), b"");
        let info: StreamInfo = sonic_rs::from_slice(&body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
        info.state.messages
    }

    /// (subject, headers, data) of a stored message.
    pub fn get(&mut self, stream: &str, seq: u64) -> (String, String, Vec<u8>) {
        let body = self.request(
            &format!("$JS.API.STREAM.MSG.GET.{stream}"),
            format!("{{\"seq\":{seq}}}").as_bytes(),
        );
        let m: MsgGet = sonic_rs::from_slice(&body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
        let m = m.message;
        let hdrs = String::from_utf8(b64(m.hdrs.as_deref().unwrap_or(""))).unwrap();
        (m.subject, hdrs, b64(m.data.as_deref().unwrap_or("")))
    }

    /// Every message stored in the stream: (subject, payload), in order.
    pub fn all(&mut self, stream: &str) -> Vec<(String, Vec<u8>)> {
        let body = self.request(&format!("$JS.API.STREAM.INFO.{stream}"), b"");
        let info: StreamInfo = sonic_rs::from_slice(&body).unwrap();
        (1..=info.state.last_seq)
            .map(|seq| {
                let (s, _, d) = self.get(stream, seq);
                (s, d)
            })
            .collect()
    }
}

/// A core NATS subscriber on its own thread, collecting (subject, payload)
/// of every message on `subjects` until [`CoreSub::finish`].
pub struct CoreSub {
    w: TcpStream,
    handle: std::thread::JoinHandle<Vec<(String, Vec<u8>)>>,
}

impl CoreSub {
    /// Subscribed (confirmed by a PONG) when this returns.
    pub fn start(port: u16, subjects: &[&str]) -> CoreSub {
        let mut raw = Raw::connect(port, None);
        for (i, s) in subjects.iter().enumerate() {
            write!(raw.w, "SUB {s} {}\r\n", i + 1).unwrap();
        }
        raw.w.write_all(b"PING\r\n").unwrap();
        assert_eq!(raw.line(), "PONG");
        raw.r
            .get_ref()
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        let w = raw.w.try_clone().unwrap();
        let handle = std::thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                let l = raw.line();
                let f: Vec<&str> = l.split(' ').collect();
                match f[0] {
                    "MSG" => {
                        let len: usize = f.last().unwrap().parse().unwrap();
                        let mut body = vec![0; len + 2];
                        raw.r.read_exact(&mut body).unwrap();
                        body.truncate(len);
                        got.push((f[1].to_string(), body));
                    }
                    "PING" => raw.w.write_all(b"PONG\r\n").unwrap(),
                    // Only `finish` pings after the start: the server answers
                    // after every message it routed to us before the PING.
                    "PONG" => return got,
                    "" => panic!("core subscriber: connection closed"),
                    _ if l.starts_with("-ERR") => panic!("core subscriber: {l}"),
                    _ => {}
                }
            }
        });
        CoreSub { w, handle }
    }

    /// Everything received; call after the publisher has gone.
    pub fn finish(mut self) -> Vec<(String, Vec<u8>)> {
        self.w.write_all(b"PING\r\n").unwrap();
        self.handle.join().unwrap()
    }
}

pub fn b64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("bad base64 {c}"),
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=').collect();
    let mut out = Vec::new();
    for chunk in bytes.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        let k = chunk.len() * 6 / 8;
        for i in 0..k {
            out.push((n >> (16 - 8 * i)) as u8);
        }
    }
    out
}

impl Raw {
    /// A JetStream publish with a `Nats-Msg-Id`; returns the PubAck payload.
    pub fn hpub(&mut self, subject: &str, msg_id: &str, payload: &[u8]) -> Vec<u8> {
        self.n += 1;
        let inbox = format!("_RAW.ack.{}", self.n);
        let hdr = format!("NATS/1.0\r\nNats-Msg-Id: {msg_id}\r\n\r\n");
        write!(
            self.w,
            "SUB {inbox} {}\r\nHPUB {subject} {inbox} {} {}\r\n{hdr}",
            self.n,
            hdr.len(),
            hdr.len() + payload.len()
        )
        .unwrap();
        self.w.write_all(payload).unwrap();
        self.w.write_all(b"\r\n").unwrap();
        self.reply(subject)
    }
}

impl Raw {
    /// Every message stored in `stream`, (subject, payload) in order, read
    /// through an ephemeral pull consumer in batches (one request per
    /// message, as [`Raw::all`] does, is too slow for tens of thousands).
    pub fn fetch_all(&mut self, stream: &str) -> Vec<(String, Vec<u8>)> {
        let total = self.stream_messages(stream);
        let created = self.api(
            &format!("$JS.API.CONSUMER.CREATE.{stream}"),
            &format!(
                "{{\"stream_name\":\"{stream}\",\"config\":{{\"deliver_policy\":\"all\",\"ack_policy\":\"none\",\"inactive_threshold\":60000000000}}}}"
            ),
        );
        let name = sonic_rs::JsonValueTrait::as_str(
            sonic_rs::JsonValueTrait::get(&created, "name").expect("consumer name"),
        )
        .unwrap()
        .to_string();
        write!(self.w, "SUB _FETCH.* 9999\r\n").unwrap();
        let mut out = Vec::with_capacity(total as usize);
        let mut round = 0;
        while (out.len() as u64) < total {
            round += 1;
            let inbox = format!("_FETCH.{round}");
            let req = "{\"batch\":1000,\"expires\":2000000000}";
            write!(
                self.w,
                "PUB $JS.API.CONSUMER.MSG.NEXT.{stream}.{name} {inbox} {}\r\n{req}\r\n",
                req.len()
            )
            .unwrap();
            let mut got = 0;
            while got < 1000 && (out.len() as u64) < total {
                let l = self.line();
                let f: Vec<&str> = l.split(' ').collect();
                match f[0] {
                    "MSG" | "HMSG" => {
                        let len: usize = f.last().unwrap().parse().unwrap();
                        let hdr: usize = if f[0] == "HMSG" {
                            f[f.len() - 2].parse().unwrap()
                        } else {
                            0
                        };
                        let mut body = vec![0; len + 2];
                        self.r.read_exact(&mut body).unwrap();
                        body.truncate(len);
                        let head = String::from_utf8_lossy(&body[..hdr]).to_string();
                        // A status (404 no messages, 408 expired): ask again.
                        if head.starts_with("NATS/1.0 ") && hdr == len {
                            break;
                        }
                        out.push((f[1].to_string(), body[hdr..].to_vec()));
                        got += 1;
                    }
                    "PING" => self.w.write_all(b"PONG\r\n").unwrap(),
                    _ => {}
                }
            }
            assert!(round < 10_000, "fetching {stream}: stuck at {}", out.len());
        }
        write!(self.w, "UNSUB 9999\r\n").unwrap();
        out
    }
}

/// Runs `f` on a glommio executor of its own (logging and memlock set up as
/// the collector does) and returns its result.
pub fn on_glommio<F, Fut, T>(f: F) -> T
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
    T: Send + 'static,
{
    marketprism::logging::init();
    marketprism::sys::ensure_memlock().expect("memlock");
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap()
}
