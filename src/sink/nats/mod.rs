//! NATS JetStream sink: one [`Publisher`] per core, on that core's glommio
//! executor, with its own small NATS client (no tokio).
//!
//! - [`config`]: the `[sink.nats]` TOML section, defaults, validation;
//! - [`proto`]: protocol encoding (HPUB, PUB, CONNECT, SUB) and the
//!   incremental parser for server operations and JSON replies;
//! - [`conn`]: connecting: TCP, INFO, TLS upgrade, CONNECT/PING/PONG;
//! - [`queue`]: the encoded, ordered per-core queue of undelivered messages;
//! - [`publisher`]: the run loop: stream setup, pipelined publishes and acks,
//!   pings, reconnect with backoff and in-order resend.
//!
//! Delivery: a JetStream message counts as delivered when its PubAck
//! arrives. Unacked messages are resent after a reconnect, and the
//! `Nats-Msg-Id` header lets the server drop what it already stored (within
//! `duplicate_window_s`). Messages published with `ack = false` are plain PUBs:
//! delivered once written, never resent.

pub mod config;
pub mod conn;
pub mod proto;
pub mod publisher;
pub mod queue;

pub use config::NatsSinkConfig;
pub use publisher::{Full, NatsStats, Publisher};
