//! The floor: one thread on the collector's CPU, TLS (rustls) + WebSocket
//! (tungstenite) read loop, each text frame stamped on arrival with the
//! collector's clock and copied aside; nothing parsed until the run is over.
//! Parked: blocking reads. Spinning: a non-blocking socket polled in a loop.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;
use tungstenite::Message;

/// What the bare receiver saw: per text frame (symbol, trade id, receive
/// ns), and its own CPU time over the window.
pub struct Bare {
    pub frames: Vec<(String, u64, u64)>,
    pub cpu_ns: u64,
}

fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the struct we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn pin_to(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t with one bit set, for this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let rc = libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        assert_eq!(rc, 0, "cannot pin the bare receiver to CPU {cpu}");
    }
}

/// `"key":value` of a Binance trade frame, unquoted.
fn frame_field<'a>(text: &'a str, key: &str) -> &'a str {
    let pat = format!("\"{key}\":");
    let i = text
        .find(&pat)
        .unwrap_or_else(|| panic!("no {key} in {text}"));
    let v = text[i + pat.len()..].trim_start_matches('"');
    &v[..v.find(['"', ',', '}']).unwrap_or(v.len())]
}

/// Reads `wss://localhost:<port><path>` on CPU 0 (the collector's) until `until_ns`
/// plus a grace for the frames sent just before it; CPU is measured from the
/// first frame at or after `from_ns` to the first at or after `until_ns`.
pub fn run(
    addr: SocketAddr,
    ca: &Path,
    path: &str,
    spin: bool,
    (from_ns, until_ns): (u64, u64),
    capacity: usize,
) -> Bare {
    let ca = ca.to_path_buf();
    let path = path.to_string();
    std::thread::spawn(move || {
        pin_to(0);
        let cfg = marketprism::conn::tls::client_config(Some(&ca), false).unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_nodelay(true).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let name = "localhost".try_into().unwrap();
        let conn = rustls::ClientConnection::new(cfg, name).unwrap();
        let tls = rustls::StreamOwned::new(conn, tcp);
        let url = format!("wss://localhost:{}{path}", addr.port());
        let (mut ws, _) = tungstenite::client::client_with_config(
            url.as_str(),
            tls,
            Some(marketprism::conn::ws::ws_config()),
        )
        .unwrap_or_else(|e| panic!("bare receiver handshake: {e}"));
        if spin {
            ws.get_ref().sock.set_nonblocking(true).unwrap();
        }
        let mut stamps: Vec<u64> = Vec::with_capacity(capacity);
        let mut ends: Vec<usize> = Vec::with_capacity(capacity);
        let mut bytes: Vec<u8> = Vec::with_capacity(capacity * 256);
        let mut cpu0 = None;
        let mut cpu_ns = None;
        let stop_ns = until_ns + 300_000_000;
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => {
                    let now = marketprism::sys::now_ns();
                    stamps.push(now);
                    bytes.extend_from_slice(t.as_bytes());
                    ends.push(bytes.len());
                    if now >= from_ns && cpu0.is_none() {
                        cpu0 = Some(thread_cpu_ns());
                    }
                    if now >= until_ns && cpu_ns.is_none() {
                        cpu_ns = Some(thread_cpu_ns() - cpu0.unwrap_or(0));
                    }
                    if now >= stop_ns {
                        break;
                    }
                }
                Ok(_) => {}
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("bare receiver: {e}"),
            }
        }
        let cpu_ns = cpu_ns.unwrap_or(0);
        let mut frames = Vec::with_capacity(stamps.len());
        let mut start = 0;
        for (ts, end) in stamps.iter().zip(&ends) {
            let text = std::str::from_utf8(&bytes[start..*end]).unwrap();
            start = *end;
            let id: u64 = frame_field(text, "t").parse().unwrap();
            frames.push((frame_field(text, "s").to_string(), id, *ts));
        }
        Bare { frames, cpu_ns }
    })
    .join()
    .expect("bare receiver thread")
}
