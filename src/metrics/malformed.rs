//! Why a frame was rejected: the `reason` label of `malformed_frames`.
//! Venue parsers report it ([`crate::venue::FrameOutcome::Malformed`]); it
//! lives here, with the counters it indexes, so metrics import no venue.

/// Why a frame was rejected; the label of the malformed-frames metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not JSON at all, or truncated.
    BadJson,
    /// JSON, but a field has the wrong type or a required field is missing.
    WrongType,
    /// An event or stream this collector does not know.
    UnknownEvent,
    /// A price/quantity that is not an exact decimal.
    InvalidNumber,
    /// A symbol missing from the instrument list.
    UnknownSymbol,
    /// A binary (or otherwise non-text) frame where text is expected.
    NonText,
    /// Text that is not valid UTF-8 (caught by the WebSocket layer).
    InvalidUtf8,
    /// A frame over the size limit.
    Oversized,
}

impl Malformed {
    pub const ALL: [Malformed; 8] = [
        Malformed::BadJson,
        Malformed::WrongType,
        Malformed::UnknownEvent,
        Malformed::InvalidNumber,
        Malformed::UnknownSymbol,
        Malformed::NonText,
        Malformed::InvalidUtf8,
        Malformed::Oversized,
    ];
    pub const COUNT: usize = Self::ALL.len();

    pub fn label(self) -> &'static str {
        match self {
            Malformed::BadJson => "bad_json",
            Malformed::WrongType => "wrong_type",
            Malformed::UnknownEvent => "unknown_event",
            Malformed::InvalidNumber => "invalid_number",
            Malformed::UnknownSymbol => "unknown_symbol",
            Malformed::NonText => "non_text",
            Malformed::InvalidUtf8 => "invalid_utf8",
            Malformed::Oversized => "oversized",
        }
    }

    #[inline]
    pub fn index(self) -> usize {
        self as usize
    }
}
