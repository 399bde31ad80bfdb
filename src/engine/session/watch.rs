//! Streams gone silent on a live connection: the venue dropped the
//! subscription (it happens, and pings keep such a socket looking healthy),
//! so the session subscribes them again.

use super::{resubscription, Core, RequestLog, Session};
use crate::config::plan::StreamSpec;
use crate::conn::ws;
use crate::venue;
use async_tungstenite::tungstenite::{self, Message};

/// A stream of a connection watched for silence (`stream_stale_after_ms`).
pub(super) struct Watch {
    /// Index in the connection plan's streams.
    stream: usize,
    pub(super) limit_ns: u64,
    /// Start of the current silence window: connect or last resubscription.
    since_ns: u64,
}

impl<C: Core> Session<'_, C> {
    /// The streams whose silence means a dropped subscription, watched from
    /// `started_ns` (those with a `stream_stale_after` for their data type).
    pub(super) fn watch_list(&self, started_ns: u64) -> Vec<Watch> {
        self.conn
            .streams
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                self.v.stream_stale_after[s.data_type.index()].map(|d| Watch {
                    stream: i,
                    limit_ns: d.as_nanos() as u64,
                    since_ns: started_ns,
                })
            })
            .collect()
    }

    /// Subscribes again to the watched streams of `conn` silent past their
    /// limit while the connection itself is alive (the venue dropped the
    /// subscription: it happens, and pings keep such a socket looking
    /// healthy). Their next records are checked for what was missed, which
    /// is backfilled or reported like a reconnect's loss. `Ok(false)`: the
    /// venue's control-request budget would be exceeded; reconnect instead.
    pub(super) async fn resubscribe_silent(
        &self,
        stream: &mut ws::WsStream,
        watch: &mut [Watch],
        requests: &mut RequestLog,
    ) -> Result<bool, tungstenite::Error> {
        let conn = self.conn;
        let venue = conn.venue;
        let now = crate::sys::now_ns();
        let mut silent: Vec<&StreamSpec> = Vec::new();
        {
            let p = self.core.pipeline().borrow();
            for w in watch.iter_mut() {
                let s = &conn.streams[w.stream];
                let seen = p
                    .stream_last_seen_ns(venue, s.data_type, &s.symbol)
                    .max(w.since_ns);
                if now.saturating_sub(seen) > w.limit_ns {
                    silent.push(s);
                    // A full window again before the next attempt.
                    w.since_ns = now;
                }
            }
        }
        if silent.is_empty() {
            return Ok(true);
        }
        let proto = venue::protocol(venue);
        // Several data types may share a channel (Bybit `tickers`).
        let mut channels: Vec<String> = silent
            .iter()
            .map(|s| proto.channel(&s.symbol, s.data_type))
            .collect();
        channels.sort_unstable();
        channels.dedup();
        let Some(frames) = resubscription(venue, &channels, requests) else {
            return Ok(false);
        };
        let vs = self.core.stats().venue(venue);
        {
            let mut p = self.core.pipeline().borrow_mut();
            for s in &silent {
                vs.stale_streams[s.data_type.index()].inc();
                p.stream_lost(venue, s.data_type, &s.symbol);
            }
        }
        if let Some(n) = self.core.sessions().stale_log.borrow_mut().check(now) {
            log::warn!(
                "conn {} {venue}: no data on {} for their silence limit while the connection is up; subscribing again ({n} more such lines suppressed)",
                conn.id,
                channels.join(", ")
            );
        }
        for f in frames {
            stream.send(Message::text(f)).await?;
        }
        Ok(true)
    }
}
