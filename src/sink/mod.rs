//! Sinks: where a core's flushed batches go. Each core owns its own sink
//! instances (nothing shared across cores, no locks).
//!
//! - [`file`]: JSON Lines files, rotated, crash-safe (the embedded default);
//! - [`nats`]: NATS JetStream / core NATS, one publisher per core;
//! - [`overflow`]: the policy every asynchronous sink shares: memory →
//!   [`spill`] → drop with a `gap` record;
//! - [`encode`]: a record as MarketPrism's JSON, subject and message id.
//!
//! Two contracts:
//! - [`Sink`] is what the pipeline drives once per flush and between
//!   flushes: `write` a batch, `poll` for progress (completions, acks, the
//!   spill), `close` at shutdown, `has_pending` while anything waits. Each
//!   sink reports into the core's stats itself, per call (never per record
//!   through shared state).
//! - [`MessageSink`] is the transport side of an asynchronous sink: it takes
//!   one encoded message or says "full right now", and never blocks.
//!   [`Overflow`] wraps it with the spill and the drop-and-`gap` policy.
//!
//! Adding a sink (ClickHouse, say): a folder `sink/clickhouse/` with its
//! config types (`config.rs`, the `[sink.clickhouse]` section), a per-core
//! client task on the core's executor (like [`nats::Publisher`]: batches
//! rows per table, sends one INSERT per table and batch, counts acks), and
//! an adapter implementing [`MessageSink`] whose `try_send` appends to the
//! table's batch and answers `false` under backpressure, so the records
//! spill in order and go out when [`Overflow::pump`] finds room. The
//! subject routes a record to its table and the message id is its
//! deduplication token. The engine does not change: the core is given
//! `Overflow::new(adapter, spill)`.

pub mod clickhouse;
pub mod encode;
pub mod file;
pub mod file_config;
pub mod nats;
pub mod overflow;
pub mod secret;
pub mod spill;
pub mod uring;

use crate::batch::Batch;
use crate::metrics::CoreStats;

pub use file::{FileSink, WriteError, WriteReport};
pub use overflow::{Gap, Overflow};

/// A core's sink as the pipeline drives it. Calls run on the core's
/// thread and never wait on the network; a sink that cannot take data now
/// holds it under its overflow policy and says so through `has_pending`.
pub trait Sink {
    /// What one call did, in the sink's terms (the pipeline logs and counts
    /// what the sink did not publish to `stats` itself).
    type Report;
    /// Takes one flushed batch.
    fn write(&mut self, batch: &Batch, stats: &CoreStats) -> Self::Report;
    /// Progress between flushes: finished writes, room come back.
    fn poll(&mut self, stats: &CoreStats) -> Self::Report;
    /// Clean shutdown: everything out that can go now. Calling it again retries.
    fn close(&mut self, stats: &CoreStats) -> Self::Report;
    /// Data waits inside the sink (memory, spill, in flight, `gap` records).
    fn has_pending(&self) -> bool;
}

/// The transport of an asynchronous sink (NATS): the core hands it encoded
/// messages and never waits. `false` means "full right now": the caller
/// keeps the message (spills it) and retries later, in order.
pub trait MessageSink {
    fn try_send(&self, subject: &str, msg_id: &str, payload: &[u8]) -> bool;
}
