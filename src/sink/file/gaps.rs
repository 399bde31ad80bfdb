//! `gap` lines the file sink writes itself: one per stream that lost records
//! to the memory bound while the disk refused writes, and one for a previous
//! run that did not stop cleanly (`crash_recovery`).

use super::writer::GAP_LINE;
use super::FileSink;
use crate::batch::{Record, TradeId};
use crate::json::{json_str, push_u64};
use crate::model::{DataType, VenueId};

/// Dropped records of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DropGap {
    pub(super) venue: VenueId,
    pub(super) data_type: DataType,
    pub(super) symbol: String,
    pub(super) reason: &'static str,
    pub(super) count: u64,
    pub(super) from_ts_ms: u64,
    pub(super) to_ts_ms: u64,
    pub(super) from_id: Option<String>,
    pub(super) to_id: Option<String>,
}

impl FileSink {
    /// Drop path only (may allocate).
    #[cold]
    pub(super) fn note_drop(&mut self, rec: &Record<'_>) {
        self.dropped += 1;
        let o = rec.origin();
        let dt = rec.data_type();
        let ms = o.receive_ts_ns / 1_000_000;
        let id = match rec {
            Record::Trade(t) => Some(match t.trade_id {
                TradeId::Num(n) => n.to_string(),
                TradeId::Str(s) => s.to_string(),
            }),
            Record::Book(b) => Some(b.last_update_id.to_string()),
            _ => None,
        };
        let reason = if self.disk_full.is_some() {
            "disk_full"
        } else {
            "file_sink_error"
        };
        match self
            .gaps
            .iter_mut()
            .find(|g| g.venue == o.venue && g.data_type == dt && g.symbol == o.symbol)
        {
            Some(g) => {
                g.count += 1;
                g.to_ts_ms = ms;
                if id.is_some() {
                    g.to_id = id;
                }
            }
            None => self.gaps.push(DropGap {
                venue: o.venue,
                data_type: dt,
                symbol: o.symbol.to_string(),
                reason,
                count: 1,
                from_ts_ms: ms,
                to_ts_ms: ms,
                from_id: id.clone(),
                to_id: id,
            }),
        }
    }

    /// One `gap` line per stream that lost records (same fields as the
    /// message sink's gap records, `reason` `disk_full` or `file_sink_error`).
    pub(super) fn queue_drop_gaps(&mut self) {
        for g in std::mem::take(&mut self.gaps) {
            let o = &mut self.pending;
            o.extend_from_slice(b"{\"data_type\":\"gap\",\"exchange\":");
            json_str(o, g.venue.exchange());
            o.extend_from_slice(b",\"market_type\":");
            json_str(o, g.venue.market_type_of(g.data_type));
            o.extend_from_slice(b",\"symbol\":");
            json_str(o, &g.symbol);
            o.extend_from_slice(b",\"channel\":");
            json_str(o, g.data_type.name());
            o.extend_from_slice(b",\"reason\":");
            json_str(o, g.reason);
            o.extend_from_slice(b",\"lost\":");
            push_u64(o, g.count);
            o.extend_from_slice(b",\"from_ts_ms\":");
            push_u64(o, g.from_ts_ms);
            o.extend_from_slice(b",\"to_ts_ms\":");
            push_u64(o, g.to_ts_ms);
            if let (Some(a), Some(b)) = (&g.from_id, &g.to_id) {
                o.extend_from_slice(b",\"from_id\":");
                json_str(o, a);
                o.extend_from_slice(b",\"to_id\":");
                json_str(o, b);
            }
            o.extend_from_slice(b",\"filled\":false,\"ts_ms\":");
            push_u64(o, g.to_ts_ms);
            o.extend_from_slice(b",\"data_source\":\"marketprism\"}\n");
            self.pending_gaps += 1;
            self.note_line(GAP_LINE, 0);
        }
    }

    /// The record that says the previous run died: which file lost its
    /// torn tail (or where the run stopped), bytes and lines cut, and the
    /// window of the loss (last surviving receive time → this start).
    /// The loss covers every stream of the core, hence `"*"`.
    pub(super) fn queue_recovery_gap(&mut self) {
        let now = crate::sys::now_ms();
        let r = &self.recovery;
        let o = &mut self.pending;
        o.extend_from_slice(
            b"{\"data_type\":\"gap\",\"exchange\":\"*\",\"market_type\":\"*\",\"symbol\":\"*\",\
              \"channel\":\"*\",\"reason\":\"crash_recovery\",\"core\":",
        );
        push_u64(o, self.shard as u64);
        o.extend_from_slice(b",\"file\":");
        match r.torn_files.last().or(r.last_file.as_ref()) {
            Some(f) => json_str(o, f),
            None => o.extend_from_slice(b"null"),
        }
        o.extend_from_slice(b",\"dropped_bytes\":");
        push_u64(o, r.torn_bytes);
        o.extend_from_slice(b",\"dropped_lines\":");
        push_u64(o, r.torn_lines);
        o.extend_from_slice(b",\"previous_run\":");
        match &r.previous_run {
            Some(p) => json_str(o, p),
            None => o.extend_from_slice(b"null"),
        }
        if let Some(t) = r.last_ts_ms {
            o.extend_from_slice(b",\"from_ts_ms\":");
            push_u64(o, t);
        }
        o.extend_from_slice(b",\"to_ts_ms\":");
        push_u64(o, now);
        o.extend_from_slice(b",\"filled\":false,\"ts_ms\":");
        push_u64(o, now);
        o.extend_from_slice(b",\"data_source\":\"marketprism\"}\n");
        self.pending_gaps += 1;
        self.note_line(GAP_LINE, 0);
    }
}
