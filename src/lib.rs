//! marketprism: a thread-per-core market-data collector for crypto exchanges,
//! wire-compatible with MarketPrism (subjects, JSON field names, metrics).
//!
//! The flow, one folder per stage:
//! - [`engine`]: pinned executors, one [`engine::shard::Shard`] per core;
//! - [`conn`]: DNS, TCP + rustls, WebSocket, reconnect backoff;
//! - [`venue`]: each venue's protocol (Binance: [`venue::binance::wire`] turns a frame into a record);
//! - [`batch`]: records in a bump arena per batch;
//! - [`sink`]: per-core writers (JSON Lines files, NATS) behind one [`sink::Sink`] contract;
//! - [`json`]: JSON writing primitives (a leaf: imports nothing of ours);
//! - [`metrics`]: per-core stats, `/metrics` and `/health`;
//! - [`config`]: TOML → validated [`config::Plan`];
//! - [`capture`]: raw frame capture and its reader for `replay`;
//! - `mock`: a local exchange speaking the venues' real protocols, for tests and demos
//!   (the default-on `mock` cargo feature; a production build leaves it out).

pub mod batch;
pub mod book;
pub mod capture;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod engine;
pub mod json;
pub mod logging;
pub mod metrics;
#[cfg(feature = "mock")]
pub mod mock;
pub mod model;
pub mod notify;
pub mod rest;
pub mod sink;
pub mod swar;
pub mod sys;
pub mod top;
pub mod tune;
pub mod venue;
