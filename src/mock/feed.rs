//! Subscriptions to the deterministic feeds and books of [`venues`], and the
//! one routine that turns what is due into WebSocket frames for any venue:
//! event streams send items `next..=available`; book streams send an initial
//! snapshot where the venue does, then every non-hidden update in order.

use super::venues::Chan;
use super::venues::{self, Stream};
use super::ws;
use super::Shared;
use crate::model::VenueId;

/// Items taken from one subscription before moving to the next (fairness).
const BURST: u64 = 64;

/// One subscribed stream of a connection.
#[derive(Debug)]
pub(crate) struct FeedSub {
    pub venue: VenueId,
    /// `Some(channel)` for an event stream, `None` for the book.
    pub chan: Option<Chan>,
    /// Feed index (see [`venues::symbols`](super::venues::symbols)).
    pub idx: usize,
    /// The name the client used: Binance stream, OKX `channel:instId`, Bybit
    /// topic, Deribit channel. Used for unsubscribe and in frames.
    pub name: String,
    /// Native symbol (stats, frames).
    pub symbol: String,
    /// Next item / update number to send.
    pub next: u64,
    /// The first push must be a snapshot (books; Bybit linear tickers).
    pub fresh: bool,
    /// Accepted but never fed (Binance USDⓈ-M stream on the wrong route).
    pub silent: bool,
}

impl FeedSub {
    /// A subscription starting from "now": after what the feed has produced.
    pub fn new(
        shared: &Shared,
        venue: VenueId,
        chan: Option<Chan>,
        idx: usize,
        name: String,
        symbol: String,
    ) -> FeedSub {
        let mut s = FeedSub {
            venue,
            chan,
            idx,
            name,
            symbol,
            next: 1,
            fresh: false,
            silent: false,
        };
        match chan {
            Some(c) => {
                if let Some(m) = shared.feeds.market(venue, c) {
                    s.next = m.produced(idx).saturating_add(1);
                }
                s.fresh = venues::snapshot_first(venue, c);
            }
            None => {
                let snapshots = venues::book_snapshot_on_ws(venue);
                s.fresh = snapshots;
                if let Some(b) = shared.feeds.book(venue, idx) {
                    let mut b = b.borrow_mut();
                    b.catch_up();
                    s.next = b.n() + 1;
                    if !snapshots {
                        b.note_subscriber(s.next);
                    }
                }
            }
        }
        s
    }

    /// What the venue's frame writers need of this subscription.
    fn stream(&self) -> Stream<'_> {
        Stream {
            venue: self.venue,
            idx: self.idx,
            name: &self.name,
            symbol: &self.symbol,
            fresh: self.fresh,
        }
    }
}

/// Appends due frames of every subscription (round robin, `BURST` items
/// each) until `cap` bytes; returns whether anything was written.
pub(crate) fn fill(
    shared: &Shared,
    subs: &mut [FeedSub],
    combined: bool,
    buf: &mut Vec<u8>,
    scratch: &mut String,
    cap: usize,
) -> bool {
    let mut any = false;
    loop {
        let mut progressed = false;
        for s in subs.iter_mut() {
            if s.silent || buf.len() >= cap {
                continue;
            }
            let mut sent = 0;
            match s.chan {
                Some(c) => {
                    let Some(m) = shared.feeds.market(s.venue, c) else {
                        continue;
                    };
                    let avail = m.available_up_to(s.idx, s.next);
                    while s.next <= avail && sent < BURST && buf.len() < cap {
                        scratch.clear();
                        venues::write_event(
                            &shared.opts,
                            &s.stream(),
                            c,
                            s.next,
                            combined,
                            scratch,
                        );
                        ws::write_frame(buf, ws::OP_TEXT, scratch.as_bytes());
                        s.fresh = false;
                        s.next += 1;
                        sent += 1;
                    }
                }
                None => {
                    let Some(cell) = shared.feeds.book(s.venue, s.idx) else {
                        continue;
                    };
                    let mut f = cell.borrow_mut();
                    if s.fresh {
                        f.catch_up();
                        scratch.clear();
                        venues::write_book_snapshot(&s.stream(), &f, scratch);
                        ws::write_frame(buf, ws::OP_TEXT, scratch.as_bytes());
                        s.next = f.n() + 1;
                        s.fresh = false;
                        sent += 1;
                    }
                    let avail = f.pull(s.next);
                    if s.next < f.oldest() {
                        // Fell out of the history: the client sees a gap.
                        s.next = f.oldest();
                    }
                    while s.next <= avail && sent < BURST && buf.len() < cap {
                        if let Some(u) = f.update(s.next) {
                            if !u.hidden {
                                scratch.clear();
                                venues::write_book_update(&s.stream(), &f, u, combined, scratch);
                                ws::write_frame(buf, ws::OP_TEXT, scratch.as_bytes());
                            }
                        }
                        s.next += 1;
                        sent += 1;
                    }
                }
            }
            if sent > 0 {
                progressed = true;
            }
        }
        any |= progressed;
        if !progressed || buf.len() >= cap {
            return any;
        }
    }
}

/// Whether any subscription is paced by a clock and not finished (the
/// writer then polls at a short interval instead of sleeping long;
/// on-demand feeds are filled on every pass anyway).
pub(crate) fn active(shared: &Shared, subs: &[FeedSub]) -> bool {
    subs.iter().any(|s| {
        if s.silent {
            return false;
        }
        match s.chan {
            Some(c) => shared
                .feeds
                .market(s.venue, c)
                .is_some_and(|m| m.rate() > 0 && !m.exhausted(s.next)),
            None => shared.feeds.book(s.venue, s.idx).is_some_and(|b| {
                let b = b.borrow();
                b.rate() > 0 && !b.exhausted(s.next)
            }),
        }
    })
}
