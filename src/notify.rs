//! A one-waiter wake-up flag for tasks on the same executor: `notify` sets
//! the flag and wakes the waiting task; `wait` resolves once the flag is set
//! (and clears it). Single-threaded (`Cell`/`RefCell`), so no atomics.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::task::{Poll, Waker};

#[derive(Default)]
pub struct Notify {
    flag: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl Notify {
    pub fn notify(&self) {
        self.flag.set(true);
        let waker = self.waker.borrow_mut().take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    pub fn wait(&self) -> impl Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.flag.replace(false) {
                Poll::Ready(())
            } else {
                *self.waker.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;
    use std::task::{Context, Waker};

    #[test]
    fn notify_before_or_after_wait() {
        let n = Notify::default();
        let mut cx = Context::from_waker(Waker::noop());
        n.notify();
        assert!(pin!(n.wait()).poll(&mut cx).is_ready());
        let mut w = pin!(n.wait());
        assert!(w.as_mut().poll(&mut cx).is_pending());
        n.notify();
        assert!(w.as_mut().poll(&mut cx).is_ready());
    }
}
