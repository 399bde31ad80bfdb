//! Sinks: where a core's flushed batches go. Each core owns its own sink
//! instance (no sharing across cores). This build has the file sink; the NATS
//! sink plugs in beside it.

pub mod encode;
pub mod file;
pub mod spill;

pub use file::{FileSink, WriteError, WriteReport};
