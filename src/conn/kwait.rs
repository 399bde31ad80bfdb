//! Waiting for a core's sockets in `ppoll(2)` instead of parking glommio.
//!
//! Why: at everyday rates (a frame every millisecond or so) a parked core
//! wakes once per frame through glommio's park, which costs about ten
//! io_uring entries and a `membarrier` per frame on this project's VM: 43 µs
//! of CPU per frame against 15 µs for a thread blocked in `read(2)`. For a
//! window after a socket's last data, a read that finds nothing registers
//! the socket here instead ([`register`]), and one task per core (spawned on
//! first use) blocks the executor in `ppoll` on every registered socket and
//! wakes the readers whose sockets became ready.
//!
//! Blocking the executor holds back its other work (timers, sink I/O
//! completions, other tasks), so: the blocker yields once before each wait,
//! letting every task already runnable go first; a wait lasts at most
//! [`MAX_BLOCK`]; and the core's preempt timer still ends a run of tasks, at
//! which point glommio reaps its ring and fires its timers. Timers that
//! must not wait for that (the batch flusher's) use [`sleep`], which the
//! blocker also ends `ppoll` for.
//!
//! The window is the core's (`engine.poll_before_park_us`, [`set_window`]):
//! every socket the core opens takes it, so the NATS and ClickHouse
//! connections' replies wake the core as promptly as exchange frames.

use std::cell::RefCell;
use std::future::Future;
use std::os::fd::RawFd;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

/// The longest one `ppoll` may hold the core.
pub const MAX_BLOCK: Duration = Duration::from_millis(5);

struct Waiter {
    fd: RawFd,
    waker: Waker,
    /// After this (ns, `sys::now_ns`) the reader goes back to glommio.
    until_ns: u64,
}

struct Timed {
    id: u64,
    waker: Waker,
    at_ns: u64,
}

#[derive(Default)]
struct Waiters {
    list: Vec<Waiter>,
    /// [`sleep`]s in progress: `ppoll` ends by the first of them.
    timed: Vec<Timed>,
    next_id: u64,
    /// The core's window for new sockets.
    window: Duration,
    /// The blocker task, while it waits for a first waiter.
    blocker: Option<Waker>,
    spawned: bool,
    /// `ppoll` failed (other than EINTR): the core parks through glommio
    /// from then on.
    broken: bool,
}

thread_local! {
    // One per executor thread: a core's sockets are only ever read there.
    static WAIT: RefCell<Waiters> = RefCell::new(Waiters::default());
}

/// Sets the window new sockets of this core take (0: they wait on glommio).
pub fn set_window(window: Duration) {
    WAIT.with(|w| w.borrow_mut().window = window);
}

/// The window new sockets of this core take.
pub fn window() -> Duration {
    WAIT.try_with(|w| w.borrow().window).unwrap_or_default()
}

/// Wakes `waker` once `fd` is readable (or hung up), or at `until_ns`.
/// Replaces an earlier registration of the same fd. `false`: this core
/// cannot wait in `ppoll` (it failed once); wait on glommio instead.
pub fn register(fd: RawFd, waker: &Waker, until_ns: u64) -> bool {
    let (waiting_blocker, spawn) = WAIT.with(|w| {
        let mut w = w.borrow_mut();
        if w.broken {
            return (None, None);
        }
        match w.list.iter_mut().find(|x| x.fd == fd) {
            Some(x) => {
                x.waker.clone_from(waker);
                x.until_ns = until_ns;
            }
            None => w.list.push(Waiter {
                fd,
                waker: waker.clone(),
                until_ns,
            }),
        }
        let spawn = !std::mem::replace(&mut w.spawned, true);
        (w.blocker.take(), Some(spawn))
    });
    let Some(spawn) = spawn else {
        return false;
    };
    // Outside the borrow: glommio may run what it wakes or spawns at once.
    if let Some(b) = waiting_blocker {
        b.wake();
    }
    if spawn {
        glommio::spawn_local(blocker()).detach();
    }
    true
}

/// Drops `fd`'s registration (its stream is closing: the number may be
/// reused by the next socket).
pub fn forget(fd: RawFd) {
    let _ = WAIT.try_with(|w| {
        if let Ok(mut w) = w.try_borrow_mut() {
            w.list.retain(|x| x.fd != fd);
        }
    });
}

/// Registered sockets (for tests).
pub fn waiting() -> usize {
    WAIT.with(|w| w.borrow().list.len())
}

/// The per-core task that blocks in `ppoll`.
async fn blocker() {
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut wake: Vec<Waker> = Vec::new();
    loop {
        std::future::poll_fn(|cx| {
            WAIT.with(|w| {
                let mut w = w.borrow_mut();
                if w.list.is_empty() {
                    w.blocker = Some(cx.waker().clone());
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
        })
        .await;
        // Tasks woken before the last registration run first.
        Once {
            polled: false,
            wake_self: true,
        }
        .await;
        let now = crate::sys::now_ns();
        let timeout = collect(&mut fds, &mut wake, now);
        wake.drain(..).for_each(Waker::wake);
        let Some(timeout_ns) = timeout else {
            continue;
        };
        let ts = libc::timespec {
            tv_sec: (timeout_ns / 1_000_000_000) as libc::time_t,
            tv_nsec: (timeout_ns % 1_000_000_000) as libc::c_long,
        };
        // SAFETY: `fds` holds `fds.len()` initialised pollfds; `ts` lives
        // across the call; a null sigmask leaves the mask alone.
        let n = unsafe {
            libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                &ts,
                std::ptr::null(),
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                // Not expected with open sockets; rather than risk a loop
                // of failing calls, this core goes back to glommio's park.
                log::error!("ppoll over {} sockets failed ({e}); this core parks through glommio from now on", fds.len());
                give_up(&mut wake);
                wake.drain(..).for_each(Waker::wake);
                return;
            }
        }
        wake_ready(&fds, n > 0, crate::sys::now_ns(), &mut wake);
        wake.drain(..).for_each(Waker::wake);
    }
}

/// Fills `fds` with the registered sockets, moving those whose window has
/// ended to `wake`; returns the wait, or `None` when nobody is left to wait for.
fn collect(fds: &mut Vec<libc::pollfd>, wake: &mut Vec<Waker>, now: u64) -> Option<u64> {
    WAIT.with(|w| {
        let mut w = w.borrow_mut();
        fds.clear();
        let mut first_end = u64::MAX;
        w.list.retain(|x| {
            if x.until_ns <= now {
                wake.push(x.waker.clone());
                return false;
            }
            first_end = first_end.min(x.until_ns);
            fds.push(libc::pollfd {
                fd: x.fd,
                events: libc::POLLIN,
                revents: 0,
            });
            true
        });
        if fds.is_empty() {
            return None;
        }
        for t in &w.timed {
            first_end = first_end.min(t.at_ns);
        }
        Some(
            first_end
                .saturating_sub(now)
                .min(MAX_BLOCK.as_nanos() as u64),
        )
    })
}

/// Marks the core broken and moves every waiter to `wake`.
fn give_up(wake: &mut Vec<Waker>) {
    WAIT.with(|w| {
        let mut w = w.borrow_mut();
        w.broken = true;
        wake.extend(w.list.drain(..).map(|x| x.waker));
    });
}

/// Moves to `wake` (and drops) the waiters whose socket is ready or whose window ended.
fn wake_ready(fds: &[libc::pollfd], ready: bool, now: u64, wake: &mut Vec<Waker>) {
    WAIT.with(|w| {
        let mut w = w.borrow_mut();
        w.list.retain(|x| {
            let hit = ready && fds.iter().any(|p| p.fd == x.fd && p.revents != 0);
            if hit || x.until_ns <= now {
                wake.push(x.waker.clone());
                false
            } else {
                true
            }
        });
        w.timed.retain(|t| {
            if t.at_ns <= now {
                wake.push(t.waker.clone());
                false
            } else {
                true
            }
        });
    });
}

/// Sleeps for `d` on glommio's timer, and, while the core waits in
/// `ppoll`, on the blocker too, which ends its wait by the deadline: a
/// glommio timer alone would fire only at the next pass of the executor's
/// loop, up to a preempt period late.
pub fn sleep(d: Duration) -> Sleep {
    Sleep {
        at_ns: crate::sys::now_ns().saturating_add(crate::sys::duration_ns(d)),
        timer: glommio::timer::Timer::new(d),
        id: None,
    }
}

/// See [`sleep`].
pub struct Sleep {
    at_ns: u64,
    timer: glommio::timer::Timer,
    /// Its entry in the blocker's deadlines, once polled.
    id: Option<u64>,
}

impl Future for Sleep {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if crate::sys::now_ns() >= self.at_ns || Pin::new(&mut self.timer).poll(cx).is_ready() {
            self.forget();
            return Poll::Ready(());
        }
        let at_ns = self.at_ns;
        let id = self.id;
        self.id = Some(WAIT.with(|w| {
            let mut w = w.borrow_mut();
            match id.and_then(|id| w.timed.iter_mut().find(|t| t.id == id)) {
                Some(t) => {
                    t.waker.clone_from(cx.waker());
                    t.id
                }
                None => {
                    w.next_id += 1;
                    let id = w.next_id;
                    w.timed.push(Timed {
                        id,
                        waker: cx.waker().clone(),
                        at_ns,
                    });
                    id
                }
            }
        }));
        Poll::Pending
    }
}

impl Sleep {
    fn forget(&mut self) {
        if let Some(id) = self.id.take() {
            let _ = WAIT.try_with(|w| {
                if let Ok(mut w) = w.try_borrow_mut() {
                    w.timed.retain(|t| t.id != id);
                }
            });
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.forget();
    }
}

/// Pending once, then ready: waits for the wake-up of a registration the
/// task already made (see [`register`]).
pub fn woken() -> impl Future<Output = ()> {
    Once {
        polled: false,
        wake_self: false,
    }
}

/// Pending once (waking itself if `wake_self`), then ready.
struct Once {
    polled: bool,
    wake_self: bool,
}

impl Future for Once {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.polled {
            return Poll::Ready(());
        }
        self.polled = true;
        if self.wake_self {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixStream;
    use std::rc::Rc;

    /// A task that registers `fd` until `until`, waits for its wake-up and
    /// counts it.
    fn waiter(fd: RawFd, until: u64, woke: Rc<Cell<u32>>) -> glommio::Task<()> {
        glommio::spawn_local(async move {
            let mut first = true;
            std::future::poll_fn(|cx| {
                if std::mem::replace(&mut first, false) {
                    assert!(register(fd, cx.waker(), until));
                    return Poll::Pending;
                }
                Poll::Ready(())
            })
            .await;
            woke.set(woke.get() + 1);
        })
    }

    #[test]
    fn wakes_exactly_the_ready_socket_and_expires_the_rest() {
        glommio::LocalExecutorBuilder::default()
            .preempt_timer(Duration::from_millis(5))
            .spawn(|| async {
                let (a_in, mut a_out) = UnixStream::pair().unwrap();
                let (b_in, _b_out) = UnixStream::pair().unwrap();
                let woke_a = Rc::new(Cell::new(0u32));
                let woke_b = Rc::new(Cell::new(0u32));
                let far = crate::sys::now_ns() + 10_000_000_000;
                let near = crate::sys::now_ns() + 300_000_000;
                let ta = waiter(a_in.as_raw_fd(), far, woke_a.clone());
                let tb = waiter(b_in.as_raw_fd(), near, woke_b.clone());
                glommio::timer::sleep(Duration::from_millis(5)).await;
                assert_eq!((woke_a.get(), woke_b.get(), waiting()), (0, 0, 2));
                std::io::Write::write_all(&mut a_out, b"x").unwrap();
                ta.await;
                assert_eq!((woke_a.get(), woke_b.get(), waiting()), (1, 0, 1));
                // b's window ends without data: it is woken to fall back.
                tb.await;
                assert_eq!((woke_a.get(), woke_b.get(), waiting()), (1, 1, 0));
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
