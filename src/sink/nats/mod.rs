//! NATS JetStream sink: one [`Publisher`] per core, on that core's glommio
//! executor, with its own small NATS client (no tokio).
//!
//! - [`adapter`]: the publisher as a core's message sink, record by record;
//! - [`config`]: the `[sink.nats]` TOML section, defaults, validation;
//! - [`proto`]: protocol encoding (HPUB, PUB, CONNECT, SUB) and the
//!   incremental parser for server operations; [`json`]: the JSON bodies
//!   (INFO, CONNECT, PubAcks, API replies);
//! - [`conn`]: connecting: TCP, INFO, TLS upgrade, CONNECT/PING/PONG;
//! - [`queue`]: the encoded, ordered per-core queue of undelivered messages;
//!   [`tail`]: a JetStream message as the spill keeps it, the queue's frame
//!   but its first three fields;
//!   [`receive_ts`]: a record's receive time read back for the receive →
//!   acked histogram;
//! - [`route`]: which transport each data type takes (JetStream stream, core
//!   NATS, or none: a configuration error), decided from the server's streams;
//! - [`jsapi`]: the JetStream API calls behind that (list, create, add
//!   subjects) and the start-up preflight;
//! - [`stored`]: API calls about what streams hold (last message per
//!   subject, key-value buckets);
//! - [`apiconn`]: a connection of its own for API calls;
//! - [`control`]: [`Control`], those calls on such a connection, reconnecting;
//! - [`order_key`], [`resend`]: before resending, skip what the stream
//!   already holds (exactly once past `duplicate_window`);
//! - [`publisher`]: the run loop: stream setup, pipelined publishes and acks,
//!   pings, reconnect with backoff and in-order resend.
//!
//! Delivery: a JetStream message counts as delivered when its PubAck
//! arrives. Unacked messages are resent after a reconnect, and the
//! `Nats-Msg-Id` header lets the server drop what it already stored (within
//! `duplicate_window_s`). Messages published with `ack = false` are plain PUBs:
//! delivered once written, never resent. A message the server can never store
//! (no stream captures its subject) is set aside in the core's dead-letter
//! store instead of blocking the ones behind it.

pub mod adapter;
pub mod apiconn;
pub mod config;
pub mod conn;
pub mod control;
pub mod jsapi;
pub mod json;
pub mod order_key;
pub mod preflight;
pub mod proto;
pub mod proto_error;
pub mod publisher;
pub mod queue;
pub mod receive_ts;
pub mod resend;
pub mod route;
pub mod stored;
pub mod tail;

pub use adapter::NatsAdapter;
pub use config::{CoreNats, NatsSinkConfig};
pub use control::{Control, KvEntry, StoredMsg};
pub use jsapi::ApiFail;
pub use publisher::{Full, NatsStats, Publisher};
