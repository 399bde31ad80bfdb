//! Receive → parsed latency with one clock read per socket read, not per
//! frame.
//!
//! The frames one read brought are parsed back to back and share receive
//! stamps (the first has its own, the rest one taken just after the read;
//! see `engine::session::inbox`). So their parse end is read once, when the
//! read loop has handled them all ([`super::Pipeline::parsed_through`]), and
//! each frame still counts once in `receive_to_parsed`. At full speed a clock
//! read per frame was about 4 % of the core (the VM's `clock_gettime`).

/// Frames parsed and not yet timed, as (receive stamp, frames) runs. Two
/// runs hold one read's frames; a third stamp means the caller times the
/// first two before noting it.
#[derive(Debug, Default)]
pub(super) struct Untimed {
    runs: [(u64, u32); 2],
    len: usize,
}

impl Untimed {
    /// Notes a frame received at `receive_ns`. False: no room, time the
    /// noted frames ([`Untimed::take`]) and note it again.
    #[inline]
    pub fn note(&mut self, receive_ns: u64) -> bool {
        if self.len > 0 && self.runs[self.len - 1].0 == receive_ns {
            self.runs[self.len - 1].1 += 1;
            return true;
        }
        if self.len == self.runs.len() {
            return false;
        }
        self.runs[self.len] = (receive_ns, 1);
        self.len += 1;
        true
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The noted runs, oldest first; leaves none.
    pub fn take(&mut self) -> impl Iterator<Item = (u64, u32)> {
        let n = std::mem::take(&mut self.len);
        self.runs.into_iter().take(n)
    }
}

#[cfg(test)]
mod tests {
    use super::Untimed;

    #[test]
    fn frames_of_one_stamp_share_a_run_and_a_third_stamp_asks_for_timing() {
        let mut u = Untimed::default();
        assert!(u.is_empty());
        assert!(u.note(10));
        assert!(u.note(20));
        assert!(u.note(20));
        assert!(u.note(20));
        assert!(!u.note(30), "a third stamp does not fit");
        assert_eq!(u.take().collect::<Vec<_>>(), vec![(10, 1), (20, 3)]);
        assert!(u.is_empty());
        assert!(u.note(30));
        assert!(
            u.note(10),
            "a stamp seen before, not the last, is a new run"
        );
        assert_eq!(u.take().collect::<Vec<_>>(), vec![(30, 1), (10, 1)]);
        assert_eq!(u.take().count(), 0);
    }
}
