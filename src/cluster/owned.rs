//! A core's ownership table: which of its planned symbols it collects now.
//! One per core (`Rc`, `Cell`s: cores never share it); the core's cluster
//! task writes it, the core's sessions and polls read and await it.
//!
//! Static mode marks every slot on for good, so sessions pass through.

use crate::model::VenueId;
use std::cell::{Cell, RefCell};
use std::time::Instant;

/// Where one symbol stands on this core.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Not collected here.
    Off,
    /// Becoming owned: the stream's last stored trade is being read to seed
    /// continuity; sessions wait.
    Seeding,
    /// Collected here.
    On,
    /// Still collected until `Instant` (make-before-break handover).
    Leaving(Instant),
}

impl State {
    /// Whether sessions and polls of the symbol run.
    pub fn runs(self) -> bool {
        matches!(self, State::On | State::Leaving(_))
    }
}

/// One venue × symbol of the core's plan.
pub struct Slot {
    pub venue: VenueId,
    /// The venue's own symbol.
    pub symbol: Box<str>,
    /// Connections of the core's plan carrying the symbol.
    pub conns: u32,
    /// Streams (symbol × data type) on those connections, polls included.
    pub streams: u32,
    state: Cell<State>,
    /// Connections of the symbol up and subscribed now.
    up: Cell<u32>,
    /// When the last of them came up (Unix ns).
    up_since_ns: Cell<u64>,
}

/// The table, with a wake-up for every task waiting on a change.
pub struct Ownership {
    slots: Vec<Slot>,
    /// Bumped on every change; waiters compare.
    version: Cell<u64>,
    wakers: RefCell<Vec<std::task::Waker>>,
}

impl Ownership {
    /// `symbols`: (venue, symbol, connections, streams) of the core's plan;
    /// `on`: static mode (every slot owned for good).
    pub fn new(symbols: Vec<(VenueId, String, u32, u32)>, on: bool) -> Ownership {
        let state = if on { State::On } else { State::Off };
        Ownership {
            slots: symbols
                .into_iter()
                .map(|(venue, s, conns, streams)| Slot {
                    venue,
                    symbol: s.into_boxed_str(),
                    conns,
                    streams,
                    state: Cell::new(state),
                    up: Cell::new(0),
                    up_since_ns: Cell::new(0),
                })
                .collect(),
            version: Cell::new(0),
            wakers: RefCell::new(Vec::new()),
        }
    }

    pub fn slots(&self) -> &[Slot] {
        &self.slots
    }

    pub fn slot_of(&self, venue: VenueId, symbol: &str) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.venue == venue && &*s.symbol == symbol)
    }

    pub fn state(&self, i: usize) -> State {
        self.slots.get(i).map_or(State::On, |s| s.state.get())
    }

    /// Whether slot `i` runs; an unknown slot (static mode has all) runs.
    pub fn runs(&self, i: Option<usize>) -> bool {
        i.is_none_or(|i| self.state(i).runs())
    }

    pub fn set(&self, i: usize, st: State) {
        if self.slots[i].state.replace(st) != st {
            self.version.set(self.version.get() + 1);
            for w in self.wakers.borrow_mut().drain(..) {
                w.wake();
            }
        }
    }

    /// Resolves once `pred(runs)` holds for slot `i` (`None`: at once).
    pub async fn wait_until(&self, i: Option<usize>, want_runs: bool) {
        let Some(i) = i else {
            if want_runs {
                return;
            }
            // Never released: static mode.
            return std::future::pending().await;
        };
        std::future::poll_fn(|cx| {
            if self.state(i).runs() == want_runs {
                return std::task::Poll::Ready(());
            }
            let mut w = self.wakers.borrow_mut();
            if !w.iter().any(|x| x.will_wake(cx.waker())) {
                w.push(cx.waker().clone());
            }
            std::task::Poll::Pending
        })
        .await
    }

    /// A connection of slot `i` is up and subscribed (`true`) or closed.
    pub fn conn_up(&self, i: Option<usize>, up: bool, now_ns: u64) {
        let Some(s) = i.and_then(|i| self.slots.get(i)) else {
            return;
        };
        if up {
            s.up.set(s.up.get() + 1);
            s.up_since_ns.set(now_ns);
        } else {
            s.up.set(s.up.get().saturating_sub(1));
        }
    }

    /// Whether every connection of slot `i` is up, and since when (ns).
    pub fn all_up(&self, i: usize) -> Option<u64> {
        let s = &self.slots[i];
        (s.up.get() >= s.conns).then(|| s.up_since_ns.get())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    #[test]
    fn waiters_see_changes_and_static_slots_always_run() {
        let o = Ownership::new(vec![(VenueId::BinanceSpot, "BTCUSDT".into(), 1, 2)], false);
        let i = o.slot_of(VenueId::BinanceSpot, "BTCUSDT");
        assert_eq!(i, Some(0));
        assert_eq!(o.slot_of(VenueId::OkxSpot, "BTCUSDT"), None);
        let mut cx = Context::from_waker(Waker::noop());
        let mut on = pin!(o.wait_until(i, true));
        assert_eq!(on.as_mut().poll(&mut cx), Poll::Pending);
        o.set(0, State::Seeding);
        assert_eq!(on.as_mut().poll(&mut cx), Poll::Pending);
        o.set(0, State::On);
        assert_eq!(on.as_mut().poll(&mut cx), Poll::Ready(()));
        o.set(0, State::Leaving(Instant::now()));
        assert!(o.runs(i));
        let mut off = pin!(o.wait_until(i, false));
        assert_eq!(off.as_mut().poll(&mut cx), Poll::Pending);
        o.set(0, State::Off);
        assert_eq!(off.as_mut().poll(&mut cx), Poll::Ready(()));
        assert!(o.runs(None));
        assert_eq!(o.all_up(0), None);
        o.conn_up(i, true, 7);
        assert_eq!(o.all_up(0), Some(7));
        o.conn_up(i, false, 9);
        assert_eq!(o.all_up(0), None);
    }
}
