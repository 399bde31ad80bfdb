//! The ClickHouse sink: MarketPrism's tables, written straight from each
//! core, exactly once.
//!
//! Per core, records go through three stages:
//! 1. **Build** ([`ClickHouseSink::write`]): each record of a batch is
//!    encoded as a RowBinary row ([`rows`]) into its table's block, in
//!    memory. No JSON, no second parse.
//! 2. **Seal**: a block is sealed when it has `block_max_rows` rows, its
//!    first row is `block_max_delay_ms` old, the blocks being built reach
//!    `max_buffered_bytes`, or at shutdown. Sealing appends it to the core's
//!    journal (the on-disk [`Spill`] NATS also uses, in journal mode) under
//!    a token unique to this block: `c<core>.<run>.<seq>`.
//! 3. **Send** ([`sender`]): a task on the core's executor sends the
//!    journal's oldest block as one INSERT with `insert_deduplication_token`
//!    = its token, over one kept-alive HTTP connection ([`client`]), and
//!    takes it off the journal only when ClickHouse acknowledged it. A retry,
//!    or a resend after a crash, carries the same bytes and token, so the
//!    server stores it once.
//!
//! Faults: ClickHouse down or slow: blocks wait in the journal (disk), the
//! exchange sockets never wait. The journal's disk budget (`sink.spill_max_bytes`)
//! used up: records are dropped, counted, and described by rows of the
//! `gaps` table once there is room. A row ClickHouse refuses: the block is
//! split until the row is found; it is counted and logged, the rest inserted.
//! Rows we know ClickHouse would refuse (a decimal beyond `Decimal64(8)`)
//! are refused here, the same way.

pub mod client;
pub mod config;
pub mod rowbinary;
pub mod rows;
pub mod schema;
pub mod sender;
pub mod setup;

pub use config::ClickHouseSinkConfig;

use super::overflow::{note_gap, Gap};
use super::spill::{Spill, SpillError};
use super::Sink;
use crate::batch::Batch;
use crate::logging::RateLimit;
use crate::metrics::{ClickHouseStats, CoreStats};
use schema::Table;
use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;

/// Journal segment size: small, so a crash resends little and the dedup
/// window covers it (see `Spill::open_journal`).
const JOURNAL_SEGMENT_BYTES: u64 = 16 << 20;

/// A sealed block still in memory: the sender sends it from here and only
/// skips it in the journal (no read back).
pub struct Cached {
    pub subject: String,
    pub token: String,
    pub data: bytes::Bytes,
}

/// What the core and its sender task share (same thread).
pub struct Shared {
    pub journal: RefCell<Spill>,
    /// Blocks the journal holds from a previous run (read back from disk).
    pub leftover: Cell<u64>,
    /// The blocks sealed by this run, in journal order; `None`: not kept in
    /// memory (over `max_buffered_bytes`), read back from the journal.
    pub cache: RefCell<std::collections::VecDeque<Option<Cached>>>,
    pub cache_bytes: Cell<usize>,
    /// Set when the core stops: the sender ends once the journal is empty.
    pub closing: Cell<bool>,
    wake: glommio::channels::local_channel::LocalSender<()>,
}

impl Shared {
    /// Tells the sender there is a new block (never waits).
    pub fn wake(&self) {
        let _ = self.wake.try_send(());
    }
}

/// One table's block being built.
#[derive(Default)]
struct Builder {
    buf: Vec<u8>,
    rows: u32,
    /// When its first row came (ns), for `block_max_delay_ms`.
    since_ns: u64,
}

pub struct ClickHouseSink {
    shared: Rc<Shared>,
    builders: Vec<Builder>,
    building_bytes: usize,
    block_max_rows: u32,
    block_max_delay_ns: u64,
    max_buffered_bytes: usize,
    shard: usize,
    /// Process start (ns): makes tokens unique across runs.
    run_id: u64,
    seq: u64,
    /// The journal refused a block (budget or I/O): records are dropped
    /// into `gaps` until a seal succeeds again.
    blocked: bool,
    gaps: Vec<Gap>,
    stats: Arc<ClickHouseStats>,
    log: RateLimit,
    reject_log: RateLimit,
    sender: Option<glommio::task::JoinHandle<()>>,
}

impl ClickHouseSink {
    /// Opens the core's journal (`<dir>`) and starts its sender task on the
    /// current executor. Blocks left by a previous run are sent first.
    pub fn open(
        cfg: &ClickHouseSinkConfig,
        shard: usize,
        dir: &Path,
        journal_max_bytes: u64,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<ClickHouseSink, String> {
        let journal = Spill::open_journal(dir, journal_max_bytes, JOURNAL_SEGMENT_BYTES)
            .map_err(|e| format!("ClickHouse journal {}: {e}", dir.display()))?;
        if !journal.is_empty() {
            log::info!(
                "core {shard}: {} ClickHouse blocks left in the journal by the last run are sent first",
                journal.len()
            );
        }
        let stats = Arc::new(ClickHouseStats::default());
        let (tx, rx) = glommio::channels::local_channel::new_bounded(1);
        let shared = Rc::new(Shared {
            leftover: Cell::new(journal.len()),
            cache: RefCell::new(std::collections::VecDeque::new()),
            cache_bytes: Cell::new(0),
            journal: RefCell::new(journal),
            closing: Cell::new(false),
            wake: tx,
        });
        let (user, password) = cfg.credentials()?;
        let client = client::Client::new(
            cfg.parsed_url()?,
            tls,
            user,
            password,
            std::time::Duration::from_millis(cfg.connect_timeout_ms),
        )?;
        let task = sender::Sender::new(cfg, shard, client, shared.clone(), stats.clone(), rx);
        let handle = glommio::spawn_local(task.run()).detach();
        Ok(ClickHouseSink {
            shared,
            builders: (0..Table::COUNT).map(|_| Builder::default()).collect(),
            building_bytes: 0,
            block_max_rows: cfg.block_max_rows.min(u32::MAX as usize) as u32,
            block_max_delay_ns: cfg.block_max_delay_ms * 1_000_000,
            max_buffered_bytes: cfg.max_buffered_bytes,
            shard,
            run_id: crate::sys::now_ns(),
            seq: 0,
            blocked: false,
            gaps: Vec::new(),
            stats,
            log: RateLimit::new(1_000_000_000),
            reject_log: RateLimit::new(1_000_000_000),
            sender: Some(handle),
        })
    }

    pub fn stats_arc(&self) -> Arc<ClickHouseStats> {
        self.stats.clone()
    }

    /// Blocks waiting for ClickHouse (journal) or being built.
    pub fn pending_blocks(&self) -> u64 {
        self.shared.journal.borrow().len()
            + self.builders.iter().filter(|b| b.rows > 0).count() as u64
    }

    /// The sender task, for the core to stop after its drain (what it did
    /// not send stays in the journal for the next start).
    pub fn take_sender(&mut self) -> Option<glommio::task::JoinHandle<()>> {
        self.sender.take()
    }

    /// Seals table `t`'s block into the journal. False: the journal refused
    /// it (the block stays in memory).
    fn seal(&mut self, t: Table, now_ns: u64) -> bool {
        let b = &mut self.builders[t.index()];
        if b.rows == 0 {
            return true;
        }
        let token = format!("c{}.{}.{}", self.shard, self.run_id, self.seq);
        let subject = format!("{}:{}", t.default_name(), b.rows);
        let r = self
            .shared
            .journal
            .borrow_mut()
            .push(subject.as_bytes(), token.as_bytes(), &b.buf);
        match r {
            Ok(()) => {
                self.seq += 1;
                self.building_bytes -= b.buf.len();
                b.rows = 0;
                // Kept for the sender while memory allows (one allocation
                // per block: the builder starts again at the same capacity).
                let sh = &self.shared;
                let len = b.buf.len();
                let cached = if sh.cache_bytes.get() + len <= self.max_buffered_bytes {
                    let cap = b.buf.capacity();
                    let data = std::mem::replace(&mut b.buf, Vec::with_capacity(cap));
                    sh.cache_bytes.set(sh.cache_bytes.get() + len);
                    Some(Cached {
                        subject,
                        token,
                        data: bytes::Bytes::from(data),
                    })
                } else {
                    b.buf.clear();
                    None
                };
                sh.cache.borrow_mut().push_back(cached);
                self.shared.wake();
                true
            }
            Err(e) => {
                if let Some(n) = self.log.check(now_ns) {
                    log::error!(
                        "core {}: ClickHouse journal refused a {} block ({e}); {}; {n} similar lines suppressed",
                        self.shard,
                        t.default_name(),
                        match e {
                            SpillError::Full => "its disk budget (sink.spill_max_bytes) is used up while ClickHouse does not keep up: new records are dropped and gap rows written when there is room",
                            SpillError::Io(_) => "new records are dropped until it writes again",
                        }
                    );
                }
                false
            }
        }
    }

    /// Seals what is due; `all`: everything (shutdown, memory bound).
    fn seal_due(&mut self, now_ns: u64, all: bool) {
        let mut ok = true;
        for t in Table::ALL {
            let b = &self.builders[t.index()];
            let due = b.rows > 0
                && (all
                    || b.rows >= self.block_max_rows
                    || now_ns.saturating_sub(b.since_ns) >= self.block_max_delay_ns);
            if due {
                ok &= self.seal(t, now_ns);
            }
        }
        if !ok {
            self.blocked = true;
        } else if self.blocked && self.builders.iter().all(|b| b.rows == 0) {
            self.blocked = false;
            self.write_gap_rows(now_ns);
        }
        self.report();
    }

    /// Rows of the `gaps` table for what was dropped while blocked.
    fn write_gap_rows(&mut self, now_ns: u64) {
        let gaps = std::mem::take(&mut self.gaps);
        if gaps.is_empty() {
            return;
        }
        let b = &mut self.builders[Table::Gaps.index()];
        let before = b.buf.len();
        for g in &gaps {
            if rows::encode_gap_row(g, now_ns / 1_000_000, &mut b.buf).is_ok() {
                if b.rows == 0 {
                    b.since_ns = now_ns;
                }
                b.rows += 1;
            }
        }
        self.building_bytes += b.buf.len() - before;
        log::warn!(
            "core {}: ClickHouse journal has room again; {} gap rows describe the records dropped",
            self.shard,
            gaps.len()
        );
    }

    fn report(&self) {
        let j = self.shared.journal.borrow();
        self.stats.journal_blocks.set(j.len() as i64);
        self.stats.journal_bytes.set(j.bytes() as i64);
        self.stats
            .building_rows
            .set(self.builders.iter().map(|b| b.rows as i64).sum());
        self.stats.building_bytes.set(self.building_bytes as i64);
    }
}

impl Sink for ClickHouseSink {
    /// Rows encoded.
    type Report = u64;

    fn write(&mut self, batch: &Batch, _stats: &CoreStats) -> u64 {
        let now_ns = crate::sys::now_ns();
        let mut encoded = 0;
        for rec in batch.iter() {
            let Some(t) = Table::for_data_type(rec.data_type()) else {
                self.stats.no_table.inc();
                continue;
            };
            if self.blocked {
                self.stats.dropped.inc();
                note_gap(&mut self.gaps, rec);
                continue;
            }
            let b = &mut self.builders[t.index()];
            let before = b.buf.len();
            match rows::encode_row(t, rec, &mut b.buf) {
                Ok(()) => {
                    if b.rows == 0 {
                        b.since_ns = now_ns;
                    }
                    b.rows += 1;
                    encoded += 1;
                    self.building_bytes += b.buf.len() - before;
                    if b.rows >= self.block_max_rows && !self.seal(t, now_ns) {
                        self.blocked = true;
                    }
                }
                Err(e) => {
                    self.stats.rejected_rows[t.index()].inc();
                    if let Some(n) = self.reject_log.check(now_ns) {
                        log::warn!(
                            "core {}: a {} row refused before sending ({e}): {} {} {}; {n} similar lines suppressed",
                            self.shard,
                            t.default_name(),
                            rec.venue().exchange(),
                            rec.data_type().name(),
                            rec.symbol(),
                        );
                    }
                }
            }
        }
        let all = self.building_bytes >= self.max_buffered_bytes;
        self.seal_due(now_ns, all);
        encoded
    }

    fn poll(&mut self, _stats: &CoreStats) -> u64 {
        self.seal_due(crate::sys::now_ns(), false);
        0
    }

    /// Seals everything; the sender keeps sending while the core drains.
    fn close(&mut self, _stats: &CoreStats) -> u64 {
        self.seal_due(crate::sys::now_ns(), true);
        self.shared.closing.set(true);
        self.shared.wake();
        0
    }

    fn has_pending(&self) -> bool {
        self.pending_blocks() > 0 || !self.gaps.is_empty()
    }
}
