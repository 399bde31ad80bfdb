//! ClickHouse's HTTP interface from a core: one kept-alive HTTP/1 connection
//! (hyper over the same [`Transport`] the venue sockets and REST use, on the
//! core's own executor), one request at a time. It sends INSERTs with their
//! deduplication token and queries, and sorts every failure into what the
//! sender should do about it ([`ChError`]).

use crate::conn::{dns, Transport};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use rustls::ClientConfig;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Error bodies and query answers larger than this are cut (start-up
/// queries answer a few KB; an error body is one line).
const MAX_ANSWER_BYTES: usize = 4 << 20;

/// What a failed request means for the block it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChError {
    /// No answer, a broken connection, a timeout, or a server-side error
    /// unrelated to the data: the same block goes again later.
    Transient(String),
    /// The server refused the data (parse, type, range, constraint): some
    /// row of the block is bad; the sender splits the block to find it.
    Rejected { code: u32, message: String },
    /// Authentication, an unknown table or column, a permission, a syntax
    /// error: nothing changes until an operator acts; retried slowly.
    Config { code: u32, message: String },
}

impl ChError {
    /// The `kind` label of `marketprism_clickhouse_errors_total`.
    pub fn kind(&self) -> usize {
        match self {
            ChError::Transient(_) => 0,
            ChError::Rejected { .. } => 1,
            ChError::Config { .. } => 2,
        }
    }
    pub const KINDS: [&'static str; 3] = ["transient", "rejected", "config"];
}

impl fmt::Display for ChError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChError::Transient(m) => f.write_str(m),
            ChError::Rejected { message, .. } | ChError::Config { message, .. } => {
                f.write_str(message)
            }
        }
    }
}

/// Exception codes meaning "this data is bad" (ClickHouse's ErrorCodes).
const DATA_CODES: &[u32] = &[
    6,   // CANNOT_PARSE_TEXT
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    32,  // ATTEMPT_TO_READ_AFTER_EOF
    33,  // CANNOT_READ_ALL_DATA
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    131, // TOO_LARGE_STRING_SIZE
    321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
    407, // DECIMAL_OVERFLOW
    469, // VIOLATED_CONSTRAINT
];

/// Codes an operator has to fix (credentials, schema, rights, settings).
const CONFIG_CODES: &[u32] = &[
    16,  // NO_SUCH_COLUMN_IN_TABLE
    47,  // UNKNOWN_IDENTIFIER
    60,  // UNKNOWN_TABLE
    62,  // SYNTAX_ERROR
    81,  // UNKNOWN_DATABASE
    115, // UNKNOWN_SETTING
    164, // READONLY
    192, // UNKNOWN_USER
    193, // WRONG_PASSWORD
    194, // REQUIRED_PASSWORD
    497, // ACCESS_DENIED
    516, // AUTHENTICATION_FAILED
];

/// Sorts a non-200 answer by its exception code (header, else `Code: N.`
/// at the start of the body), then by status.
pub fn classify(status: u16, code_header: Option<u32>, body: &str) -> ChError {
    let code = code_header.or_else(|| {
        let rest = body.trim_start().strip_prefix("Code: ")?;
        let end = rest.find(|c: char| !c.is_ascii_digit())?;
        rest[..end].parse().ok()
    });
    let message = body.trim().chars().take(600).collect::<String>();
    match code {
        Some(c) if DATA_CODES.contains(&c) => ChError::Rejected { code: c, message },
        Some(c) if CONFIG_CODES.contains(&c) => ChError::Config { code: c, message },
        Some(_) => ChError::Transient(format!("HTTP {status}: {message}")),
        None if (400..500).contains(&status) && status != 408 && status != 429 => ChError::Config {
            code: 0,
            message: format!("HTTP {status}: {message}"),
        },
        None => ChError::Transient(format!("HTTP {status}: {message}")),
    }
}

/// `"written_rows":"N"` of ClickHouse's `X-ClickHouse-Summary` header.
fn summary_written_rows(s: &str) -> Option<u64> {
    let rest = &s[s.find("\"written_rows\"")? + "\"written_rows\"".len()..];
    let rest = rest.trim_start().strip_prefix(':')?.trim_start();
    let rest = rest.strip_prefix('"').unwrap_or(rest);
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// A successful answer.
struct Answer {
    body: Bytes,
    written_rows: Option<u64>,
}

/// One core's connection to ClickHouse.
pub struct Client {
    base: Url,
    host: String,
    port: u16,
    tls: Option<Arc<ClientConfig>>,
    user: Option<String>,
    password: Option<String>,
    connect_timeout: Duration,
    conn: Option<Conn>,
}

struct Conn {
    tx: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    driver: glommio::task::JoinHandle<()>,
}

impl Client {
    pub fn new(
        base: Url,
        tls: Option<Arc<ClientConfig>>,
        user: Option<String>,
        password: Option<String>,
        connect_timeout: Duration,
    ) -> Result<Client, String> {
        let (host, port) = dns::host_port(&base).map_err(|e| e.to_string())?;
        let tls = if base.scheme() == "https" { tls } else { None };
        Ok(Client {
            base,
            host,
            port,
            tls,
            user,
            password,
            connect_timeout,
            conn: None,
        })
    }

    /// `INSERT INTO <table> (<cols>) FORMAT RowBinary` with `data`, deduplicated
    /// by `token`. Ok(rows the server says it wrote: 0 for a block it had
    /// already; `None` when it does not say).
    pub async fn insert(
        &mut self,
        database: &str,
        insert_sql: &str,
        token: &str,
        data: Bytes,
        timeout: Duration,
    ) -> Result<Option<u64>, ChError> {
        let mut url = self.base.clone();
        url.query_pairs_mut()
            .append_pair("database", database)
            .append_pair("query", insert_sql)
            .append_pair("insert_deduplication_token", token)
            // The summary header then covers the whole insert.
            .append_pair("wait_end_of_query", "1");
        self.request(&url, data, timeout)
            .await
            .map(|a| a.written_rows)
    }

    /// Runs one statement (`sql` in the body), returning the answer.
    pub async fn query(&mut self, sql: &str, timeout: Duration) -> Result<String, ChError> {
        let url = self.base.clone();
        let a = self
            .request(&url, Bytes::copy_from_slice(sql.as_bytes()), timeout)
            .await?;
        Ok(String::from_utf8_lossy(&a.body).into_owned())
    }

    async fn request(
        &mut self,
        url: &Url,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer, ChError> {
        let work = async {
            if self.conn.as_ref().is_none_or(|c| c.tx.is_closed()) {
                self.drop_conn();
                self.conn = Some(self.open().await?);
            }
            let Some(conn) = self.conn.as_mut() else {
                return Err(ChError::Transient("no connection".into()));
            };
            conn.tx
                .ready()
                .await
                .map_err(|e| ChError::Transient(format!("connection not ready: {e}")))?;
            let mut path = url.path().to_string();
            if let Some(q) = url.query() {
                path.push('?');
                path.push_str(q);
            }
            let mut req = hyper::Request::post(path)
                .header(hyper::header::HOST, format!("{}:{}", self.host, self.port))
                .header(
                    hyper::header::USER_AGENT,
                    concat!("marketprism/", env!("CARGO_PKG_VERSION")),
                )
                .header(hyper::header::CONTENT_TYPE, "application/octet-stream");
            if let Some(u) = &self.user {
                req = req.header("X-ClickHouse-User", u);
            }
            if let Some(p) = &self.password {
                req = req.header("X-ClickHouse-Key", p);
            }
            let req = req
                .body(Full::new(body))
                .map_err(|e| ChError::Transient(format!("request: {e}")))?;
            let resp = conn
                .tx
                .send_request(req)
                .await
                .map_err(|e| ChError::Transient(format!("POST to ClickHouse: {e}")))?;
            let status = resp.status().as_u16();
            let code = resp
                .headers()
                .get("x-clickhouse-exception-code")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            let written_rows = resp
                .headers()
                .get("x-clickhouse-summary")
                .and_then(|v| v.to_str().ok())
                .and_then(summary_written_rows);
            let answer = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| ChError::Transient(format!("reading ClickHouse's answer: {e}")))?
                .to_bytes();
            if status == 200 && code.is_none() {
                Ok(Answer {
                    body: answer,
                    written_rows,
                })
            } else {
                Err(classify(status, code, &String::from_utf8_lossy(&answer)))
            }
        };
        let r = futures_lite::FutureExt::or(work, async {
            glommio::timer::sleep(timeout).await;
            Err(ChError::Transient(format!(
                "no answer from ClickHouse within {timeout:?}"
            )))
        })
        .await;
        if matches!(r, Err(ChError::Transient(_))) {
            // It may be mid-response: never reuse it.
            self.drop_conn();
        }
        r
    }

    async fn open(&self) -> Result<Conn, ChError> {
        let transport = Transport::connect(
            &self.host,
            self.port,
            self.tls.as_ref(),
            self.connect_timeout,
        )
        .await
        .map_err(|e| ChError::Transient(format!("connect {}:{}: {e}", self.host, self.port)))?;
        let (tx, conn) = hyper::client::conn::http1::handshake::<_, Full<Bytes>>(
            smol_hyper::rt::FuturesIo::new(transport),
        )
        .await
        .map_err(|e| ChError::Transient(format!("HTTP handshake: {e}")))?;
        let driver = glommio::spawn_local(async move {
            let _ = conn.await;
        })
        .detach();
        Ok(Conn { tx, driver })
    }

    fn drop_conn(&mut self) {
        if let Some(old) = self.conn.take() {
            drop(old.tx);
            old.driver.cancel();
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.drop_conn();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_says_the_rows_written() {
        let h = r#"{"read_rows":"0","read_bytes":"0","written_rows":"1234","written_bytes":"99"}"#;
        assert_eq!(summary_written_rows(h), Some(1234));
        assert_eq!(summary_written_rows(r#"{"written_rows": 0}"#), Some(0));
        assert_eq!(summary_written_rows("{}"), None);
    }

    #[test]
    fn answers_sort_by_code_then_status() {
        let b = "Code: 469. DB::Exception: Constraint `c` for table t is violated. (VIOLATED_CONSTRAINT)";
        assert!(matches!(
            classify(400, None, b),
            ChError::Rejected { code: 469, .. }
        ));
        assert!(matches!(
            classify(404, Some(60), "Code: 60. unknown table"),
            ChError::Config { code: 60, .. }
        ));
        assert!(matches!(
            classify(403, Some(516), ""),
            ChError::Config { code: 516, .. }
        ));
        // TOO_MANY_PARTS: the server is behind; the data is fine.
        assert!(matches!(
            classify(500, Some(252), ""),
            ChError::Transient(_)
        ));
        assert!(matches!(
            classify(502, None, "bad gateway"),
            ChError::Transient(_)
        ));
        assert!(matches!(classify(429, None, ""), ChError::Transient(_)));
        assert!(matches!(
            classify(401, None, "who"),
            ChError::Config { code: 0, .. }
        ));
    }
}
