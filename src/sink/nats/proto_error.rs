//! The error of reading the NATS protocol (a control line or a JSON body),
//! a leaf shared by [`super::proto`] and [`super::json`].

#[derive(Debug, PartialEq, Eq)]
pub struct ProtoError(pub String);

impl std::fmt::Display for ProtoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A `ProtoError` showing at most 120 bytes of the offending input.
pub(super) fn perr(msg: &str, line: &[u8]) -> ProtoError {
    let shown = &line[..line.len().min(120)];
    ProtoError(format!("{msg}: {:?}", String::from_utf8_lossy(shown)))
}
