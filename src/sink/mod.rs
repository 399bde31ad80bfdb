//! Sinks: where a core's flushed batches go. Each core owns its own sink
//! instance (no sharing across cores). This build has the file sink; the NATS
//! sink plugs in beside it.

pub mod encode;
pub mod file;
pub mod file_config;
pub mod nats;
pub mod spill;
pub mod uring;

pub use file::{FileSink, WriteError, WriteReport};

/// A message sink that delivers asynchronously (NATS): the core hands it
/// encoded messages and never waits. `false` means "full right now": the
/// caller keeps the message (spills it) and retries later, in order.
pub trait MessageSink {
    fn try_send(&self, subject: &str, msg_id: &str, payload: &[u8]) -> bool;
}
