//! REST answers into the batch: polled data, book snapshots and trade
//! history fetched to backfill a reconnect gap; the throttled book
//! publisher; and the books and instruments the REST worker reads. Each
//! counts what it adds like a frame does.

use super::Pipeline;
use crate::book::{BookAction, Books};
use crate::model::{DataType, VenueId};
use crate::venue::{self, FrameOutcome, InstrumentMap, Malformed};

impl Pipeline {
    /// Gives the pipeline this core's books.
    pub fn with_books(mut self, books: Books) -> Pipeline {
        self.books = books;
        self
    }

    pub fn books(&self) -> &Books {
        &self.books
    }

    pub fn books_mut(&mut self) -> &mut Books {
        &mut self.books
    }

    /// Instruments of a venue (this core's copy).
    pub fn instruments(&self, venue: VenueId) -> &InstrumentMap {
        &self.instruments[venue.index()]
    }

    /// A REST trade-history body for the gap `from..=to` of `raw_symbol`:
    /// pushes the trades of that range, oldest first, marked backfilled.
    /// Returns the range of sequence numbers recovered (`None`: none).
    pub fn on_trade_history(
        &mut self,
        venue: VenueId,
        raw_symbol: &str,
        (from, to): (u64, u64),
        body: &[u8],
        receive_ns: u64,
    ) -> Result<Option<(u64, u64)>, Malformed> {
        let proto = venue::protocol(venue);
        let Some(inst) = self.instruments[venue.index()].get(raw_symbol) else {
            return Err(Malformed::UnknownSymbol);
        };
        let start = self.batch.len();
        let got = proto.parse_trade_history(inst, body, (from, to), receive_ns, &mut self.batch);
        if let Err(r) = got {
            let text = std::str::from_utf8(body).unwrap_or("");
            self.count_malformed(venue, r, text, receive_ns);
        }
        let n = (self.batch.len() - start) as u64;
        if n > 0 {
            self.stats.venue(venue).trades_backfilled.add(n);
            self.count_parsed(start, receive_ns);
        }
        got
    }

    /// A REST body polled for `dt` of `raw_symbol` → records. `last_ts_ms` is
    /// the newest datapoint already published for this poll: an answer that
    /// repeats it adds nothing (polls run more often than the data changes).
    pub fn on_poll(
        &mut self,
        venue: VenueId,
        dt: DataType,
        raw_symbol: &str,
        body: &[u8],
        receive_ns: u64,
        last_ts_ms: &mut u64,
    ) -> FrameOutcome {
        let start = self.batch.len();
        let Some(inst) = self.instruments[venue.index()].get(raw_symbol) else {
            self.count_malformed(venue, Malformed::UnknownSymbol, raw_symbol, receive_ns);
            return FrameOutcome::Malformed(Malformed::UnknownSymbol);
        };
        let out = venue::protocol(venue).parse_poll(dt, inst, body, receive_ns, &mut self.batch);
        if self.batch.len() > start {
            // A valid answer, changed or not, shows the stream alive.
            self.stats.venue(venue).last_record_ns[dt.index()].set(receive_ns as i64);
            let newest = self
                .batch
                .iter_from(start)
                .map(|r| r.origin().ts_ms)
                .max()
                .unwrap_or(0);
            if newest <= *last_ts_ms {
                self.batch.truncate(start);
                self.stats.venue(venue).poll_unchanged.inc();
            } else {
                *last_ts_ms = newest;
            }
        }
        match out {
            FrameOutcome::Malformed(r) => {
                let text = std::str::from_utf8(body).unwrap_or("");
                self.count_malformed(venue, r, text, receive_ns)
            }
            FrameOutcome::ControlError => {
                self.stats.venue(venue).control_errors.inc();
                if let Some(n) = self.control_log.check(receive_ns) {
                    let what = venue::error_body::poll_error(venue, dt, raw_symbol, body);
                    log::warn!("{what} ({n} more suppressed)");
                }
            }
            _ => {}
        }
        if self.batch.len() > start {
            self.count_parsed(start, receive_ns);
        }
        out
    }

    /// A REST book snapshot body for `raw_symbol` → the books.
    pub fn on_book_snapshot(
        &mut self,
        venue: VenueId,
        raw_symbol: &str,
        body: &[u8],
        receive_ns: u64,
    ) -> BookAction {
        self.book_msg.clear();
        let parsed = venue::protocol(venue).parse_book_snapshot(
            raw_symbol,
            body,
            receive_ns,
            &mut self.book_msg,
        );
        if let Err(r) = parsed {
            let text = std::str::from_utf8(body).unwrap_or("");
            self.count_malformed(venue, r, text, receive_ns);
            self.books.on_snapshot_failed(venue, raw_symbol);
            return BookAction::FetchSnapshot;
        }
        let start = self.batch.len();
        let action =
            self.books
                .on_rest_snapshot(venue, &self.book_msg, receive_ns, &mut self.batch);
        if self.batch.len() > start {
            self.count_parsed(start, receive_ns);
        }
        action
    }

    /// Publishes throttled books that are due; returns the next deadline (ns).
    pub fn publish_books(&mut self, now_ns: u64) -> Option<u64> {
        let start = self.batch.len();
        let next = self.books.publish_due(now_ns, &mut self.batch);
        if self.batch.len() > start {
            for rec in self.batch.iter_from(start) {
                let (vs, dt) = (self.stats.venue(rec.venue()), rec.data_type().index());
                vs.parsed[dt].inc();
                vs.last_record_ns[dt].set(rec.receive_ts_ns() as i64);
            }
        }
        next
    }
}
