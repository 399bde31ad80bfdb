//! SIGINT/SIGTERM handling. A plain thread waits for signals and raises a flag
//! that each core polls from its control task (not the message path). A
//! second signal exits at once for operators who really mean it.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// True once a stop was requested.
#[inline]
pub fn requested() -> bool {
    REQUESTED.load(Ordering::Relaxed)
}

/// Requests a stop (signal thread, or an engine error).
pub fn request() {
    REQUESTED.store(true, Ordering::Relaxed);
}

/// Starts the signal thread. Call once, before the executors start.
pub fn install() -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut seen = 0;
            for sig in signals.forever() {
                seen += 1;
                if seen == 1 {
                    log::info!(
                        "signal {sig}: stopping (flushing every core); send again to exit at once"
                    );
                    request();
                } else {
                    log::warn!("second signal {sig}: exiting without flushing");
                    std::process::exit(130);
                }
            }
        })?;
    Ok(())
}
