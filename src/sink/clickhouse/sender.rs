//! The core's sender task: the journal's oldest block → one INSERT, taken
//! off the journal only once ClickHouse acknowledged it.
//!
//! - Transient failures (no answer, 5xx, timeouts): the same block with the
//!   same token again, backing off 100 ms → 5 s. The server drops a block
//!   whose token it has seen, so a block that landed before its answer was
//!   lost is not stored twice.
//! - Configuration failures (authentication, unknown table): retried every
//!   5 s; the blocks wait in the journal until an operator fixes it.
//! - Rejected data: the block is split in halves (tokens `<token>.<from>-<to>`,
//!   deterministic, so a crash mid-split resends the same sub-blocks) until
//!   the refused rows stand alone; each is counted and logged, the rest land.

use super::client::{ChError, Client};
use super::schema::Table;
use super::{rowbinary, Cached, ClickHouseSinkConfig, Shared};
use crate::logging::RateLimit;
use crate::metrics::ClickHouseStats;
use crate::sink::spill::Entry;
use bytes::Bytes;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Without a wake-up, look at the journal this often anyway.
const IDLE_LOOK: Duration = Duration::from_secs(1);

pub struct Sender {
    shard: usize,
    client: Client,
    shared: Rc<Shared>,
    stats: Arc<ClickHouseStats>,
    wake: glommio::channels::local_channel::LocalReceiver<()>,
    database: String,
    /// `INSERT INTO <name> (<cols>) FORMAT RowBinary` per table.
    insert_sql: Vec<String>,
    /// Statements creating the database and tables, run before the first
    /// insert when the start-up check could not (ClickHouse was down).
    create: Option<Vec<String>>,
    timeout: Duration,
    backoff: Duration,
    log: RateLimit,
    reject_log: RateLimit,
}

impl Sender {
    pub fn new(
        cfg: &ClickHouseSinkConfig,
        shard: usize,
        client: Client,
        shared: Rc<Shared>,
        stats: Arc<ClickHouseStats>,
        wake: glommio::channels::local_channel::LocalReceiver<()>,
    ) -> Sender {
        Sender {
            shard,
            client,
            shared,
            stats,
            wake,
            database: cfg.database.clone(),
            insert_sql: Table::ALL
                .iter()
                .map(|t| t.insert_sql(cfg.table_name(*t)))
                .collect(),
            create: cfg.create_tables.then(|| super::setup::statements(cfg)),
            timeout: Duration::from_millis(cfg.request_timeout_ms),
            backoff: BACKOFF_MIN,
            log: RateLimit::new(1_000_000_000),
            reject_log: RateLimit::new(1_000_000_000),
        }
    }

    pub async fn run(mut self) {
        let mut e = Entry::default();
        loop {
            match self.next_block(&mut e) {
                Ok(Some((
                    Cached {
                        subject,
                        token,
                        data,
                    },
                    from_memory,
                ))) => {
                    match parse_subject(&subject) {
                        Some((t, rows)) => self.deliver(t, rows, &token, data.clone()).await,
                        None => log::error!(
                            "core {}: ClickHouse journal entry `{subject}` names no table; skipped",
                            self.shard
                        ),
                    }
                    let done = if from_memory {
                        self.shared.journal.borrow_mut().skip_front(
                            subject.len(),
                            token.len(),
                            data.len(),
                        )
                    } else {
                        self.shared.journal.borrow_mut().pop_front()
                    };
                    if let Err(err) = done {
                        log::error!(
                            "core {}: recording a delivered ClickHouse block failed: {err} (it may be sent again; its token makes the server drop it)",
                            self.shard
                        );
                    }
                    let j = self.shared.journal.borrow();
                    self.stats.journal_blocks.set(j.len() as i64);
                    self.stats.journal_bytes.set(j.bytes() as i64);
                }
                Ok(None) => {
                    if self.shared.closing.get() {
                        return;
                    }
                    let wake = self.wake.recv();
                    let _ = futures_lite::FutureExt::or(async { wake.await.is_some() }, async {
                        glommio::timer::sleep(IDLE_LOOK).await;
                        false
                    })
                    .await;
                }
                Err(err) => {
                    self.stats.errors[0].inc();
                    if let Some(n) = self.log.check(crate::sys::now_ns()) {
                        log::error!(
                            "core {}: reading the ClickHouse journal failed: {err} ({n} similar lines suppressed)",
                            self.shard
                        );
                    }
                    glommio::timer::sleep(BACKOFF_MAX).await;
                }
            }
        }
    }

    /// The journal's oldest block, and whether it came from memory. A
    /// previous run's blocks, and blocks memory had no room for, are read
    /// back from disk.
    fn next_block(&mut self, e: &mut Entry) -> std::io::Result<Option<(Cached, bool)>> {
        let sh = &self.shared;
        let from_disk = sh.leftover.get() > 0;
        if !from_disk {
            let mut cache = sh.cache.borrow_mut();
            match cache.front() {
                None => return Ok(None),
                Some(Some(_)) => {
                    let Some(Some(c)) = cache.pop_front() else {
                        return Ok(None);
                    };
                    sh.cache_bytes.set(sh.cache_bytes.get() - c.data.len());
                    return Ok(Some((c, true)));
                }
                Some(None) => {}
            }
        }
        // Read back; the marker (leftover count or cache slot) is taken only
        // once the read worked, so an I/O error keeps the two in step.
        if !sh.journal.borrow_mut().front(e)? {
            return Ok(None);
        }
        self.stats.read_back.inc();
        if from_disk {
            sh.leftover.set(sh.leftover.get() - 1);
        } else {
            sh.cache.borrow_mut().pop_front();
        }
        let block = Cached {
            subject: String::from_utf8_lossy(&e.subject).into_owned(),
            token: String::from_utf8_lossy(&e.id).into_owned(),
            data: Bytes::from(std::mem::take(&mut e.payload)),
        };
        Ok(Some((block, false)))
    }

    /// Delivers one block: every row lands once, or is refused and counted.
    async fn deliver(&mut self, t: Table, rows: u32, token: &str, data: Bytes) {
        // Row boundaries, computed only if the server refuses something.
        let mut ends: Option<Vec<usize>> = None;
        let mut todo = vec![(0usize, rows as usize)];
        while let Some((a, b)) = todo.pop() {
            let whole = a == 0 && b == rows as usize;
            let (part, tok) = if whole {
                (data.clone(), token.to_string())
            } else {
                let Some(e) = ends.as_ref() else { break };
                let from = if a == 0 { 0 } else { e[a - 1] };
                (data.slice(from..e[b - 1]), format!("{token}.{a}-{b}"))
            };
            match self.insert(t, &tok, part).await {
                Ok(written) => {
                    let sent = (b - a) as u64;
                    // The server says what it wrote: 0 for a block it had
                    // already (a resend); a server that does not say wrote all.
                    let w = written.unwrap_or(sent).min(sent);
                    self.stats.rows[t.index()].add(w);
                    if w == 0 {
                        self.stats.duplicate_blocks.inc();
                    }
                }
                Err((code, message)) => {
                    if ends.is_none() {
                        match rowbinary::row_ends(t, &data) {
                            Ok(e) if e.len() == rows as usize => ends = Some(e),
                            _ => {
                                self.refused(
                                    t,
                                    (b - a) as u64,
                                    code,
                                    "the block does not split into its rows",
                                    &message,
                                );
                                continue;
                            }
                        }
                    }
                    if b - a == 1 {
                        self.refused(t, 1, code, "row refused", &message);
                    } else {
                        let mid = a + (b - a) / 2;
                        // Stack: left half first.
                        todo.push((mid, b));
                        todo.push((a, mid));
                    }
                }
            }
        }
    }

    fn refused(&mut self, t: Table, rows: u64, code: u32, what: &str, message: &str) {
        self.stats.rejected_rows[t.index()].add(rows);
        if let Some(n) = self.reject_log.check(crate::sys::now_ns()) {
            log::error!(
                "core {}: ClickHouse refused {rows} {} row(s): {what} (Code {code}: {message}); not retried; {n} similar lines suppressed",
                self.shard,
                t.default_name()
            );
        }
    }

    /// One INSERT, retried until it lands or the server refuses its data:
    /// Ok(rows the server wrote, if it says), Err((code, message)) only for
    /// refused data.
    async fn insert(
        &mut self,
        t: Table,
        token: &str,
        data: Bytes,
    ) -> Result<Option<u64>, (u32, String)> {
        loop {
            if let Some(stmts) = self.create.as_ref() {
                match super::setup::run(&mut self.client, stmts, self.timeout).await {
                    Ok(()) => self.create = None,
                    Err(e) => {
                        self.failed(&e).await;
                        continue;
                    }
                }
            }
            let started = Instant::now();
            let len = data.len() as u64;
            let r = self
                .client
                .insert(
                    &self.database,
                    &self.insert_sql[t.index()],
                    token,
                    data.clone(),
                    self.timeout,
                )
                .await;
            match r {
                Ok(written) => {
                    self.stats
                        .insert_latency
                        .observe(started.elapsed().as_nanos() as u64);
                    self.stats.inserts[t.index()].inc();
                    self.stats.bytes[t.index()].add(len);
                    if self.stats.up.get() == 0 {
                        log::info!("core {}: ClickHouse takes inserts", self.shard);
                    }
                    self.stats.up.set(1);
                    self.backoff = BACKOFF_MIN;
                    return Ok(written);
                }
                Err(ChError::Rejected { code, message }) => {
                    self.stats.errors[1].inc();
                    self.stats.up.set(1);
                    return Err((code, message));
                }
                Err(e) => self.failed(&e).await,
            }
        }
    }

    /// Counts, logs and waits before the next attempt.
    async fn failed(&mut self, e: &ChError) {
        self.stats.errors[e.kind()].inc();
        self.stats.up.set(0);
        let wait = match e {
            ChError::Config { .. } => BACKOFF_MAX,
            _ => self.backoff,
        };
        if let Some(n) = self.log.check(crate::sys::now_ns()) {
            log::error!(
                "core {}: ClickHouse insert failed ({}): {e}; retrying in {wait:?} ({} blocks waiting; {n} similar lines suppressed)",
                self.shard,
                ChError::KINDS[e.kind()],
                self.shared.journal.borrow().len()
            );
        }
        glommio::timer::sleep(wait).await;
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }
}

/// `<table>:<rows>` as the sink journals it.
fn parse_subject(s: &str) -> Option<(Table, u32)> {
    let (name, rows) = s.split_once(':')?;
    let t = Table::ALL.into_iter().find(|t| t.default_name() == name)?;
    Some((t, rows.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_subjects_name_table_and_rows() {
        assert_eq!(parse_subject("trades:17"), Some((Table::Trades, 17)));
        assert_eq!(parse_subject("gaps:1"), Some((Table::Gaps, 1)));
        assert_eq!(parse_subject("nope:1"), None);
        assert_eq!(parse_subject("trades"), None);
    }

    /// The metrics' `table` label follows the table order.
    #[test]
    fn metric_labels_are_the_table_names() {
        let names: Vec<&str> = Table::ALL.iter().map(|t| t.default_name()).collect();
        assert_eq!(names, crate::metrics::clickhouse::TABLES);
    }
}
