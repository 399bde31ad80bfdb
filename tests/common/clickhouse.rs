//! A ClickHouse for integration tests: `tests/clickhouse/chdb_http.py`, the
//! real ClickHouse 26.9 engine (PyPI `chdb` 4.4) behind ClickHouse's HTTP
//! interface, as a child process on a free loopback port; plus the model of
//! MarketPrism's hot-storage rows (`tests/clickhouse/hot_storage_model.py`).
//! The HTTP client here is a minimal HTTP/1.1 one over `TcpStream`, so the
//! stand does not share code with the sink under test.

use super::{spawn_cmd, Proc};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const SERVER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clickhouse/chdb_http.py");
const MODEL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/clickhouse/hot_storage_model.py"
);
const NEED_CHDB: &str = "python3 with chdb 4.4 is required: pip install chdb==4.4.0";

/// One HTTP answer.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The chdb-backed ClickHouse process; killed on drop.
pub struct ClickHouse {
    proc: Option<Proc>,
    dir: PathBuf,
    port: u16,
    auth: Option<(String, String)>,
}

impl ClickHouse {
    /// Starts the server on `dir` (engine files in `dir/chdb`), on a free port.
    pub fn start(dir: &Path) -> ClickHouse {
        Self::launch(dir, 0, None)
    }

    /// As [`start`](Self::start), requiring this user and password on every query.
    pub fn start_with_auth(dir: &Path, user: &str, password: &str) -> ClickHouse {
        Self::launch(dir, 0, Some((user.to_string(), password.to_string())))
    }

    /// As [`start`](Self::start), on `port` (a collector configured before
    /// ClickHouse was up).
    pub fn start_on(dir: &Path, port: u16) -> ClickHouse {
        Self::launch(dir, port, None)
    }

    fn launch(dir: &Path, port: u16, auth: Option<(String, String)>) -> ClickHouse {
        require_chdb();
        let port_file = dir.join("http.port");
        let _ = std::fs::remove_file(&port_file);
        let mut cmd = Command::new("python3");
        cmd.arg(SERVER)
            .arg("--path")
            .arg(dir.join("chdb"))
            .arg("--port")
            .arg(port.to_string())
            .arg("--port-file")
            .arg(&port_file);
        if let Some((u, p)) = &auth {
            cmd.args(["--user", u, "--password", p]);
        }
        let mut proc = spawn_cmd(cmd);
        let end = Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Ok(s) = std::fs::read_to_string(&port_file) {
                if let Ok(p) = s.trim().parse::<u16>() {
                    break p;
                }
            }
            if let Some(st) = proc.child.try_wait().unwrap() {
                panic!(
                    "chdb_http.py exited ({st}) before listening:\n{}",
                    proc.output()
                );
            }
            if Instant::now() > end {
                panic!("chdb_http.py not listening after 60 s:\n{}", proc.output());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        ClickHouse {
            proc: Some(proc),
            dir: dir.to_path_buf(),
            port,
            auth,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's stderr so far (one line per request).
    pub fn log(&self) -> String {
        self.proc.as_ref().map(|p| p.output()).unwrap_or_default()
    }

    /// SIGKILL, as a crash would (no flush, no goodbye).
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.signal_and_wait(libc::SIGKILL, Duration::from_secs(10));
        }
    }

    /// Starts it again on the same directory, on the same port when that is free.
    pub fn restart(&mut self) {
        self.kill();
        let port = if std::net::TcpListener::bind(("127.0.0.1", self.port)).is_ok() {
            self.port
        } else {
            0
        };
        let fresh = Self::launch(&self.dir, port, self.auth.clone());
        self.port = fresh.port;
        self.proc = fresh.take_proc();
    }

    fn take_proc(mut self) -> Option<Proc> {
        self.proc.take()
    }

    /// One request on its own connection; `None` when the server closed the
    /// connection without answering.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Option<Reply> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))
            .unwrap_or_else(|e| panic!("connect to ClickHouse on {}: {e}", self.port));
        s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
        parse_reply(&buf)
    }

    fn auth_headers(&self) -> Vec<(&str, &str)> {
        match &self.auth {
            Some((u, p)) => vec![
                ("X-ClickHouse-User", u.as_str()),
                ("X-ClickHouse-Key", p.as_str()),
            ],
            None => Vec::new(),
        }
    }

    /// POSTs `body` to `/?<params>` with this server's credentials.
    pub fn post(&self, params: &[(&str, &str)], body: &[u8]) -> Option<Reply> {
        let q: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", url_encode(k), url_encode(v)))
            .collect();
        self.request(
            "POST",
            &format!("/?{}", q.join("&")),
            &self.auth_headers(),
            body,
        )
    }

    /// Runs `sql` (in the POST body); the answer, or (status, body) on error.
    pub fn try_query(&self, sql: &str) -> Result<String, (u16, String)> {
        let r = self
            .post(&[], sql.as_bytes())
            .unwrap_or_else(|| panic!("ClickHouse closed the connection on {sql:?}"));
        if r.status == 200 {
            Ok(r.text())
        } else {
            Err((r.status, r.text()))
        }
    }

    /// Runs `sql`; panics with the server's answer on error.
    pub fn query(&self, sql: &str) -> String {
        self.try_query(sql)
            .unwrap_or_else(|(st, body)| panic!("{sql}\n-> HTTP {st}: {body}"))
    }

    /// `INSERT ... FORMAT X` in the `query` parameter, the data in the body,
    /// extra URL parameters as settings (e.g. `insert_deduplication_token`).
    pub fn insert(&self, head: &str, settings: &[(&str, &str)], data: &[u8]) -> Option<Reply> {
        let mut params = vec![("query", head)];
        params.extend_from_slice(settings);
        self.post(&params, data)
    }

    /// Queues a test fault: `kind` is `error` (params `code`, `status`),
    /// `apply_then_drop` or `delay` (param `ms`); `count` in params or 1.
    pub fn fault(&self, kind: &str, params: &[(&str, &str)]) {
        let mut q = format!("/_test/fault?kind={kind}");
        for (k, v) in params {
            q.push_str(&format!("&{}={}", url_encode(k), url_encode(v)));
        }
        let r = self.request("POST", &q, &[], b"").expect("fault answer");
        assert_eq!(r.status, 200, "fault {q}: {}", r.text());
    }

    /// `/_test/stats`: inserts received / applied / failed, rows per table.
    pub fn stats(&self) -> sonic_rs::Value {
        let r = self
            .request("GET", "/_test/stats", &[], b"")
            .expect("stats answer");
        sonic_rs::from_slice(&r.body).unwrap_or_else(|e| panic!("stats {e}: {}", r.text()))
    }
}

impl Drop for ClickHouse {
    fn drop(&mut self) {
        // Proc's own Drop kills and reaps the child.
        self.proc.take();
    }
}

fn require_chdb() {
    let ok = Command::new("python3")
        .args(["-c", "import chdb"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "{NEED_CHDB}");
}

fn parse_reply(buf: &[u8]) -> Option<Reply> {
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    if let Some(n) = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(n);
    }
    Some(Reply {
        status,
        headers,
        body,
    })
}

/// Percent-encodes everything but unreserved characters.
pub fn url_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Runs the model: `expected.*` as MarketPrism's service would have filled it
/// from the records under `records_dir`; returns its output.
pub fn model_expected(url: &str, records_dir: &Path) -> String {
    let o = Command::new("python3")
        .arg(MODEL)
        .args(["--url", url, "--records"])
        .arg(records_dir)
        .output()
        .expect("run hot_storage_model.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "hot_storage_model.py failed:\n{text}");
    text
}

/// `marketprism_hot` against `expected`: (equal, report).
pub fn model_compare(url: &str) -> (bool, String) {
    compare(&["--url", url])
}

/// As [`model_compare`], also checking the sink-only columns against the records.
pub fn model_compare_extras(url: &str, records_dir: &Path) -> (bool, String) {
    let dir = records_dir.to_str().expect("utf-8 path");
    compare(&["--url", url, "--extras", "--records", dir])
}

fn compare(args: &[&str]) -> (bool, String) {
    let o = Command::new("python3")
        .arg(MODEL)
        .arg("compare")
        .args(args)
        .output()
        .expect("run hot_storage_model.py compare");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    match o.status.code() {
        Some(0) => (true, text),
        Some(1) => (false, text),
        _ => panic!("hot_storage_model.py compare failed:\n{text}"),
    }
}

/// RowBinary encoders for building insert bodies in tests.
pub mod rowbinary {
    pub fn i64(out: &mut Vec<u8>, v: i64) {
        out.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(out: &mut Vec<u8>, v: u64) {
        out.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u32(out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u8(out: &mut Vec<u8>, v: u8) {
        out.push(v);
    }

    /// `String` / `LowCardinality(String)`: LEB128 length, then the bytes.
    pub fn str(out: &mut Vec<u8>, s: &str) {
        let mut n = s.len() as u64;
        loop {
            let b = (n & 0x7f) as u8;
            n >>= 7;
            if n == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(s.as_bytes());
    }
}
