//! The venue side of the plan: one connection and the streams it carries.
//! Owned here so venues need nothing from `config`, which assembles them.

use crate::model::{DataType, VenueId};

/// One subscription: a symbol's data type on a venue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    pub symbol: String,
    pub data_type: DataType,
}

/// One WebSocket connection and the streams it carries.
#[derive(Debug, Clone)]
pub struct ConnectionPlan {
    /// Stable id across the whole plan (also the log/metric id).
    pub id: usize,
    pub venue: VenueId,
    /// Position among this venue's connections.
    pub venue_conn: usize,
    /// The venue's entry point for these streams (Binance USDⓈ-M `public` /
    /// `market`; "" where the venue has one).
    pub route: &'static str,
    pub streams: Vec<StreamSpec>,
}
