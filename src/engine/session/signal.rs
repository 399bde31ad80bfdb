//! A one-way flag the tasks of a core's sessions wait on (a rotation's old
//! connection is told to stop): a leaf both the read loop and rotation use.

use std::cell::{Cell, RefCell};

/// A one-way flag several tasks of this core can wait for.
#[derive(Default)]
pub(super) struct Signal {
    set: Cell<bool>,
    wakers: RefCell<Vec<std::task::Waker>>,
}

impl Signal {
    pub(super) fn raise(&self) {
        self.set.set(true);
        for w in self.wakers.borrow_mut().drain(..) {
            w.wake();
        }
    }

    pub(super) fn is_set(&self) -> bool {
        self.set.get()
    }

    pub(super) fn wait(&self) -> impl std::future::Future<Output = ()> + '_ {
        std::future::poll_fn(move |cx| {
            if self.set.get() {
                return std::task::Poll::Ready(());
            }
            let mut w = self.wakers.borrow_mut();
            if !w.iter().any(|x| x.will_wake(cx.waker())) {
                w.push(cx.waker().clone());
            }
            std::task::Poll::Pending
        })
    }
}
