//! Frames taken off a connection before any of them is handled.
//!
//! A read often brings several frames: a burst, or frames that queued while
//! the core was busy. Taken one at a time, each would be stamped only after
//! the frames ahead of it had been parsed and batched, so its receive time
//! would carry our own work. Instead, the frame that a read completed is
//! stamped, then every further frame already in memory is taken (TLS and
//! WebSocket decoding only, the socket is not read) and stamped with one
//! clock read, and only then are they handled in order. Their text is copied
//! into one reused buffer, so tungstenite's read buffer is free again at
//! once: held slices of it would make it reallocate on its next read.

use crate::conn::ws::WsStream;
use async_tungstenite::tungstenite::{self, Message};
use futures_util::StreamExt;
use std::task::{Context, Poll};

/// What the WebSocket stream yields: a message, an error, or its end.
pub(super) type Item = Option<Result<Message, tungstenite::Error>>;

/// Frames taken per read at most (further ones are taken by the next round).
const MAX_FRAMES: usize = 32;
/// Text copied per read at most, so each connection's buffer stays small
/// (it keeps its largest size: no allocation per read).
const MAX_BYTES: usize = 64 * 1024;
/// A larger text is not copied: it ends the take and is handled from
/// tungstenite's buffer after the texts before it.
const MAX_COPY: usize = 16 * 1024;

/// The frames of one read, handled in order: texts first, then what ended
/// the take (anything but a text of at most [`MAX_COPY`]), if anything did.
#[derive(Default)]
pub(super) struct Inbox {
    text: String,
    /// (start, end) in `text`, and the receive time (ns).
    frames: Vec<(u32, u32, u64)>,
    next: usize,
    held: Option<(Item, u64)>,
}

/// The next frame to handle, with its receive time (ns).
pub(super) enum Taken<'a> {
    Text(&'a str, u64),
    Other(Item, u64),
}

impl Inbox {
    pub fn is_empty(&self) -> bool {
        self.next == self.frames.len() && self.held.is_none()
    }

    /// Takes `item`, read at `at`, and every further frame `stream` holds in
    /// memory. Call only when empty. Never waits: the future is ready at its
    /// first poll, which lends the task's context to the stream.
    pub async fn take(&mut self, item: Item, at: u64, stream: &mut WsStream) {
        let mut item = Some(item);
        std::future::poll_fn(|cx| {
            if let Some(item) = item.take() {
                self.take_in(item, at, stream, cx);
            }
            Poll::Ready(())
        })
        .await;
    }

    fn take_in(&mut self, item: Item, at: u64, stream: &mut WsStream, cx: &mut Context<'_>) {
        debug_assert!(self.is_empty());
        self.text.clear();
        self.frames.clear();
        self.next = 0;
        if !self.push(item, at) {
            return;
        }
        stream.get_mut().memory_only(true);
        let mut ended = None;
        while self.frames.len() < MAX_FRAMES && self.text.len() < MAX_BYTES {
            match stream.poll_next_unpin(cx) {
                Poll::Pending => break,
                Poll::Ready(item) => {
                    if !self.push(item, 0) {
                        ended = self.held.take();
                        break;
                    }
                }
            }
        }
        stream.get_mut().memory_only(false);
        if self.frames.len() > 1 || ended.is_some() {
            // They were all in memory by now; one clock read for all.
            let now = crate::sys::now_ns();
            for f in &mut self.frames[1..] {
                f.2 = now;
            }
            self.held = ended.map(|(item, _)| (item, now));
        }
    }

    /// Queues `item`; false (and held) when it is not a text to parse.
    fn push(&mut self, item: Item, at: u64) -> bool {
        match item {
            Some(Ok(Message::Text(t))) if t.len() <= MAX_COPY => {
                let start = self.text.len() as u32;
                self.text.push_str(t.as_str());
                self.frames.push((start, self.text.len() as u32, at));
                true
            }
            other => {
                self.held = Some((other, at));
                false
            }
        }
    }

    /// The next frame, in the order read.
    pub fn pop(&mut self) -> Option<Taken<'_>> {
        if let Some(&(start, end, at)) = self.frames.get(self.next) {
            self.next += 1;
            return Some(Taken::Text(&self.text[start as usize..end as usize], at));
        }
        self.held.take().map(|(item, at)| Taken::Other(item, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::ws;
    use futures_util::SinkExt;
    use glommio::net::TcpListener;
    use std::time::Duration;
    use url::Url;

    fn drain(inbox: &mut Inbox) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        while let Some(t) = inbox.pop() {
            out.push(match t {
                Taken::Text(s, at) => (s.to_string(), at),
                Taken::Other(Some(Ok(m)), at) => (format!("other {m:?}"), at),
                Taken::Other(other, at) => (format!("other {other:?}"), at),
            });
        }
        out
    }

    async fn take(inbox: &mut Inbox, stream: &mut WsStream, at: u64) {
        let item = stream.next().await;
        inbox.take(item, at, stream).await;
    }

    /// A read's frames are taken together and in order: the first with the
    /// stamp it came with, the rest with one later clock read. A frame that
    /// reached the socket after that read stays there until the next one
    /// (the take reads no socket), and a ping ends a take and is handed out
    /// after the texts before it.
    #[test]
    fn takes_what_one_read_brought_and_nothing_more() {
        use glommio::channels::local_channel::new_unbounded;
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let l = TcpListener::bind("127.0.0.1:0").unwrap();
                let addr = l.local_addr().unwrap();
                let ms = Duration::from_millis;
                // Each side waits for the other: the client says when it has
                // read, the server when it has sent the next group.
                let (go, server_go) = new_unbounded::<()>();
                let (sent, client_sent) = new_unbounded::<()>();
                let server = glommio::spawn_local(async move {
                    let tcp = l.accept().await.unwrap();
                    let mut ws = async_tungstenite::accept_async(tcp).await.unwrap();
                    let groups: [Vec<Message>; 4] = [
                        vec![
                            Message::text("a1"),
                            Message::text("b22"),
                            Message::text("c333"),
                        ],
                        vec![Message::text("d")],
                        vec![
                            Message::text("e"),
                            Message::Ping(vec![7].into()),
                            Message::text("f"),
                        ],
                        vec![
                            Message::text("g"),
                            Message::text("x".repeat(MAX_COPY + 1)),
                            Message::text("h"),
                        ],
                    ];
                    for group in groups {
                        for m in group {
                            ws.feed(m).await.unwrap();
                        }
                        ws.flush().await.unwrap();
                        sent.try_send(()).unwrap();
                        if server_go.recv().await.is_none() {
                            break;
                        }
                    }
                    ws
                });
                let url = Url::parse(&format!("ws://{addr}/")).unwrap();
                let mut stream = ws::connect(&url, None, ms(5000)).await.unwrap();
                let stream = &mut stream;
                let mut inbox = Inbox::default();
                // Sent, and (loopback) in the socket after a moment.
                let landed = || async {
                    client_sent.recv().await.unwrap();
                    glommio::timer::sleep(ms(20)).await;
                };
                landed().await;
                // One read brings a, b and c; then d reaches the socket.
                let item = stream.next().await;
                go.try_send(()).unwrap();
                landed().await;
                inbox.take(item, 5, stream).await;
                let got = drain(&mut inbox);
                let texts: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
                assert_eq!(texts, ["a1", "b22", "c333"]);
                assert_eq!(got[0].1, 5);
                assert!(got[1].1 > 5 && got[2].1 == got[1].1, "{got:?}");
                assert!(inbox.is_empty());
                take(&mut inbox, stream, 9).await;
                assert_eq!(drain(&mut inbox), [("d".to_string(), 9)]);
                go.try_send(()).unwrap();
                landed().await;
                take(&mut inbox, stream, 11).await;
                let got = drain(&mut inbox);
                assert_eq!(got.len(), 2, "{got:?}");
                assert_eq!(got[0], ("e".to_string(), 11));
                assert!(got[1].0.starts_with("other Ping"), "{got:?}");
                assert!(got[1].1 > 11);
                take(&mut inbox, stream, 13).await;
                assert_eq!(drain(&mut inbox), [("f".to_string(), 13)]);
                // A text too large to copy ends the take like the ping.
                go.try_send(()).unwrap();
                landed().await;
                // (It may take more than one read: it is larger than
                // tungstenite's read buffer.)
                let mut got = Vec::new();
                while got.len() < 3 {
                    take(&mut inbox, stream, 15).await;
                    while let Some(t) = inbox.pop() {
                        got.push(match t {
                            Taken::Text(s, _) => ("copied", s.len()),
                            Taken::Other(Some(Ok(Message::Text(t))), _) => ("held", t.len()),
                            Taken::Other(other, _) => panic!("{other:?}"),
                        });
                    }
                }
                assert_eq!(got, [("copied", 1), ("held", MAX_COPY + 1), ("copied", 1)]);
                drop(go);
                server.await;
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
