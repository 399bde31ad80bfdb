//! JSON helpers the venue parsers share: error labels, streaming over an
//! array without collecting it, and locating a borrowed slice in its frame.

use crate::venue::Malformed;
use serde::de::{self, Deserialize, SeqAccess, Visitor};
use std::fmt;
use std::marker::PhantomData;

/// sonic-rs error → malformed-frame label.
pub fn classify(e: &sonic_rs::Error) -> Malformed {
    if e.is_unmatched_type() {
        Malformed::WrongType
    } else {
        Malformed::BadJson
    }
}

/// Calls `f` on each element of the JSON array `raw` as it is parsed (no
/// intermediate `Vec`). Stops at the first error `f` returns.
pub fn each<'de, T, F>(raw: &'de str, mut f: F) -> Result<(), Malformed>
where
    T: Deserialize<'de>,
    F: FnMut(T) -> Result<(), Malformed>,
{
    let mut failed = None;
    let mut de = sonic_rs::Deserializer::from_str(raw);
    let r = de::Deserializer::deserialize_seq(
        &mut de,
        EachVisitor {
            f: &mut f,
            failed: &mut failed,
            _t: PhantomData,
        },
    );
    match (failed, r) {
        (Some(m), _) => Err(m),
        (None, Err(e)) => Err(classify(&e)),
        (None, Ok(())) => Ok(()),
    }
}

struct EachVisitor<'x, T, F> {
    f: &'x mut F,
    failed: &'x mut Option<Malformed>,
    _t: PhantomData<fn() -> T>,
}

impl<'de, T, F> Visitor<'de> for EachVisitor<'_, T, F>
where
    T: Deserialize<'de>,
    F: FnMut(T) -> Result<(), Malformed>,
{
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(item) = seq.next_element::<T>()? {
            if let Err(m) = (self.f)(item) {
                *self.failed = Some(m);
                return Err(de::Error::custom("rejected element"));
            }
        }
        Ok(())
    }
}

/// Byte range of `s` inside `whole` (`s` was deserialized from `whole`), so
/// a sub-array can be parsed again later without copying it.
pub fn range_in(whole: &str, s: &str) -> Result<(usize, usize), Malformed> {
    let start = (s.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
    if start > whole.len() || whole.len() - start < s.len() {
        return Err(Malformed::WrongType);
    }
    Ok((start, start + s.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_streams_and_stops_at_the_first_rejection() {
        let mut seen = Vec::new();
        assert_eq!(
            each::<u32, _>("[1,2,3]", |x| {
                seen.push(x);
                Ok(())
            }),
            Ok(())
        );
        assert_eq!(seen, vec![1, 2, 3]);
        let r = each::<u32, _>("[1,2,3]", |x| {
            if x == 2 {
                Err(Malformed::InvalidNumber)
            } else {
                Ok(())
            }
        });
        assert_eq!(r, Err(Malformed::InvalidNumber));
        assert_eq!(
            each::<u32, _>("[1,\"x\"]", |_| Ok(())),
            Err(Malformed::WrongType)
        );
        assert_eq!(each::<u32, _>("[1,", |_| Ok(())), Err(Malformed::BadJson));
    }

    #[test]
    fn range_in_locates_a_borrowed_slice() {
        let whole = "abc[1,2]def";
        assert_eq!(range_in(whole, &whole[3..8]), Ok((3, 8)));
        assert_eq!(range_in(whole, "elsewhere"), Err(Malformed::WrongType));
    }
}

/// A string of ASCII digits as a number (OKX `tradeId`); `None` otherwise.
pub fn digits_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}
