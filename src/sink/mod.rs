//! Sinks: where a core's flushed batches go. Each core owns its own sink
//! instances (nothing shared across cores, no locks).
//!
//! - [`file`]: JSON Lines files, rotated, crash-safe (the embedded default);
//! - [`nats`]: NATS JetStream / core NATS, one publisher per core;
//! - [`clickhouse`]: MarketPrism's ClickHouse tables, RowBinary blocks
//!   journaled on disk and inserted by a per-core sender;
//! - [`overflow`]: the policy of a message sink (NATS): memory →
//!   [`spill`] → drop with a `gap` record;
//! - [`encode`]: a record as MarketPrism's JSON, subject and message id.
//!
//! Two contracts:
//! - [`Sink`] is what the pipeline drives once per flush and between
//!   flushes: `write` a batch, `poll` for progress (completions, acks, the
//!   spill), `close` at shutdown, `has_pending` while anything waits. Each
//!   sink reports into the core's stats itself, per call (never per record
//!   through shared state).
//! - [`MessageSink`] is the transport side of a sink that sends one record
//!   per message: it takes one encoded message or says "full right now",
//!   and never blocks. [`Overflow`] wraps it with the spill and the
//!   drop-and-`gap` policy.
//!
//! Adding a sink: a folder `sink/<name>/` with its config types
//! (`config.rs`, its `[sink.<name>]` section, referenced from
//! `config::raw::SinkConfig`) and a type implementing [`Sink`], given to the
//! pipeline by `engine::mod` like `Pipeline::with_clickhouse`. A sink that
//! sends records one by one implements [`MessageSink`] and is given
//! `Overflow::new(adapter, spill)`; one that sends blocks (ClickHouse) keeps
//! its own builder and uses [`spill::Spill`] in journal mode and
//! [`overflow::Gap`] for what it drops. The disk budget is
//! `sink.spill_max_bytes` either way.

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

    /// The message as the transport would have the spill keep it, so taking
    /// it back costs a copy, not a decode and an encode: its bookkeeping
    /// into `meta`, what precedes the payload into `head`; returns what
    /// follows the payload. None (the default): the spill keeps the record.
    fn spill_form(
        &self,
        _subject: &str,
        _msg_id: &str,
        _payload: &[u8],
        _receive_ns: u64,
        _meta: &mut Vec<u8>,
        _head: &mut Vec<u8>,
    ) -> Option<&'static [u8]> {
        None
    }

    /// Takes back a message the spill kept in its [`MessageSink::spill_form`]
    /// (`frame`: head, payload and end); false: full right now, as
    /// `try_send`. Only a transport whose `spill_form` gives one gets these.
    fn try_send_framed(&self, _subject: &str, _meta: &[u8], _frame: &[u8]) -> bool {
        false
    }

    /// A synchronous run of sends begins (`true`) or ends: a transport may
    /// share clock reads among its messages (see `Publisher::hand_off`).
    fn hand_off(&self, _on: bool) {}
}
