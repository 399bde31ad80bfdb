//! JetStream API calls made on a connection before it starts publishing:
//! list the server's streams, decide every data type's transport
//! ([`super::route`]), and make the one change allowed to the configured
//! stream (create it when absent; when present, add missing subjects in one
//! update that carries every other setting exactly as the server reported it).
//! [`super::preflight`] runs the same on a connection of its own.

use super::config::NatsSinkConfig;
use super::conn::{self, ConnError, ReadBuf};
use super::proto::{self, Op};
use super::route::{self, Change, Resolution, StreamSubjects, Want};
use futures_lite::io::{AsyncRead, AsyncWrite};
use sonic_rs::{JsonContainerTrait, JsonValueMutTrait, JsonValueTrait};
use std::cell::Cell;
use std::time::Duration;

pub const API_TIMEOUT: Duration = Duration::from_secs(5);
/// "stream name already in use" (another core created it a moment ago).
pub const ERR_NAME_IN_USE: u32 = 10058;
/// "stream not found".
pub const ERR_NOT_FOUND: u32 = 10059;

/// Why an API call failed.
#[derive(Debug)]
pub enum ApiFail {
    /// The connection failed: the session ends.
    Conn(ConnError),
    /// The server answered with an error (JetStream's own, or a status such
    /// as 503 when JetStream is not enabled).
    Refused {
        code: u32,
        err_code: u32,
        why: String,
    },
}

impl std::fmt::Display for ApiFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiFail::Conn(e) => write!(f, "{e}"),
            ApiFail::Refused {
                code,
                err_code,
                why,
            } => write!(f, "{why} (code {code}, err_code {err_code})"),
        }
    }
}

impl From<ConnError> for ApiFail {
    fn from(e: ConnError) -> Self {
        ApiFail::Conn(e)
    }
}

/// A connection's halves while no reader/writer loop runs on them.
pub struct ApiIo<'a, R, W> {
    pub rd: &'a mut R,
    pub wr: &'a mut W,
    pub rbuf: &'a mut ReadBuf,
    /// `_INBOX.<token>`, subscribed as `<inbox>.*`; replies go to `<inbox>.c<n>`.
    pub inbox: &'a str,
    pub seq: &'a Cell<u64>,
    pub max_payload: usize,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> ApiIo<'_, R, W> {
    /// One request, its reply payload (an API error in the body is the
    /// caller's to read; a status header is a `Refused`).
    pub async fn request(&mut self, subject: &str, body: &[u8]) -> Result<Vec<u8>, ApiFail> {
        let n = self.seq.get() + 1;
        self.seq.set(n);
        let reply = format!("{}.c{n}", self.inbox);
        let mut out = Vec::with_capacity(body.len() + 128);
        proto::encode_pub(&mut out, subject, Some(&reply), body);
        conn::write_flush(self.wr, &out).await?;
        let (rd, wr, rbuf, max_payload) = (
            &mut *self.rd,
            &mut *self.wr,
            &mut *self.rbuf,
            self.max_payload,
        );
        let got = conn::with_timeout(API_TIMEOUT, "JetStream API reply", async {
            loop {
                while let Some((op, used)) = proto::parse_op(rbuf.data(), max_payload)? {
                    let res = match op {
                        Op::Msg {
                            subject: s,
                            headers,
                            payload,
                            ..
                        } if s == reply.as_bytes() => {
                            Some(match headers.and_then(proto::header_status) {
                                Some(code) => Err(code),
                                None => Ok(payload.to_vec()),
                            })
                        }
                        Op::Ping => {
                            conn::write_flush(wr, b"PONG\r\n").await?;
                            None
                        }
                        Op::Err(e) => {
                            // Consumed: a permissions violation leaves the
                            // connection open for the caller to go on.
                            let why = String::from_utf8_lossy(e).into_owned();
                            rbuf.consume(used);
                            return Err(ConnError::Server(why));
                        }
                        _ => None,
                    };
                    rbuf.consume(used);
                    if let Some(r) = res {
                        return Ok(r);
                    }
                }
                rbuf.fill(rd, conn::read_limit(max_payload)).await?;
            }
        })
        .await?;
        got.map_err(|code| ApiFail::Refused {
            code: code as u32,
            err_code: 0,
            why: if code == 503 {
                "no responders: JetStream is not enabled on this server (or its account)".into()
            } else {
                format!("status {code}")
            },
        })
    }

    /// A request whose reply is JSON: parsed, with an `error` object turned
    /// into `Refused`.
    pub(super) async fn call(
        &mut self,
        subject: &str,
        body: &[u8],
    ) -> Result<sonic_rs::Value, ApiFail> {
        let raw = self.request(subject, body).await?;
        let v: sonic_rs::Value = sonic_rs::from_slice(&raw).map_err(|e| {
            ApiFail::Conn(ConnError::Proto(format!("bad JetStream API reply ({e})")))
        })?;
        if let Some(e) = v.get("error") {
            return Err(ApiFail::Refused {
                code: e.get("code").and_then(|c| c.as_u64()).unwrap_or(0) as u32,
                err_code: e.get("err_code").and_then(|c| c.as_u64()).unwrap_or(0) as u32,
                why: e
                    .get("description")
                    .and_then(|d| d.as_str())
                    .unwrap_or("")
                    .to_string(),
            });
        }
        Ok(v)
    }

    /// Every stream on the server with its subjects (`STREAM.LIST`, paged).
    pub async fn list_streams(&mut self) -> Result<Vec<StreamSubjects>, ApiFail> {
        let mut out = Vec::new();
        loop {
            let body = format!("{{\"offset\":{}}}", out.len());
            let v = self.call("$JS.API.STREAM.LIST", body.as_bytes()).await?;
            let total = v.get("total").and_then(|t| t.as_u64()).unwrap_or(0) as usize;
            let mut got = 0;
            if let Some(list) = v.get("streams").and_then(|s| s.as_array()) {
                for s in list.iter() {
                    let Some(c) = s.get("config") else { continue };
                    got += 1;
                    out.push(StreamSubjects {
                        name: c
                            .get("name")
                            .and_then(|n| n.as_str())
                            .unwrap_or("")
                            .to_string(),
                        subjects: subjects_of(c),
                    });
                }
            }
            if got == 0 || out.len() >= total {
                return Ok(out);
            }
        }
    }

    /// The stream's configuration exactly as the server reports it.
    async fn stream_config(&mut self, name: &str) -> Result<Option<sonic_rs::Value>, ApiFail> {
        match self.call(&format!("$JS.API.STREAM.INFO.{name}"), b"").await {
            Ok(v) => Ok(v.get("config").cloned()),
            Err(ApiFail::Refused { err_code, .. }) if err_code == ERR_NOT_FOUND => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Adds `subjects` to the existing stream `name`: one UPDATE carrying the
    /// configuration as read with only `subjects` extended. Returns the
    /// subjects actually added (none if another core added them first).
    async fn add_subjects(
        &mut self,
        name: &str,
        subjects: &[String],
    ) -> Result<Vec<String>, ApiFail> {
        let Some(mut config) = self.stream_config(name).await? else {
            return Err(ApiFail::Refused {
                code: 404,
                err_code: ERR_NOT_FOUND,
                why: format!("stream {name} disappeared"),
            });
        };
        let mut have = subjects_of(&config);
        let added: Vec<String> = subjects
            .iter()
            .filter(|s| !have.contains(s))
            .cloned()
            .collect();
        if added.is_empty() {
            return Ok(added);
        }
        have.extend(added.iter().cloned());
        let list: sonic_rs::Value = sonic_rs::to_value(&have)
            .map_err(|e| ApiFail::Conn(ConnError::Proto(format!("encoding subjects: {e}"))))?;
        let Some(obj) = config.as_object_mut() else {
            return Err(ApiFail::Conn(ConnError::Proto(
                "stream config is not an object".into(),
            )));
        };
        obj.insert("subjects", list);
        let body = sonic_rs::to_vec(&config).unwrap_or_default();
        self.call(&format!("$JS.API.STREAM.UPDATE.{name}"), &body)
            .await?;
        Ok(added)
    }

    async fn create(&mut self, cfg: &NatsSinkConfig, subjects: &[String]) -> Result<(), ApiFail> {
        let body = proto::encode_json(&proto::StreamConfig {
            name: &cfg.stream,
            subjects,
            storage: &cfg.storage,
            max_age: cfg.max_age_s.saturating_mul(1_000_000_000),
            duplicate_window: cfg.duplicate_window_s.saturating_mul(1_000_000_000),
            retention: "limits",
            discard: "old",
            num_replicas: cfg.replicas,
        });
        self.call(&format!("$JS.API.STREAM.CREATE.{}", cfg.stream), &body)
            .await
            .map(|_| ())
    }

    /// Lists the streams, decides the transports and (if `apply`) makes the
    /// stream change. A change the server refuses is logged with what the
    /// operator can do, and the types that needed it become unroutable.
    pub async fn resolve(
        &mut self,
        cfg: &NatsSinkConfig,
        wants: &[Want],
        apply: bool,
    ) -> Result<Resolution, ApiFail> {
        if !cfg.jetstream {
            return Ok(route::resolve(cfg, wants, &[]));
        }
        let streams = self.list_streams().await?;
        let res = route::resolve(cfg, wants, &streams);
        if !apply {
            return Ok(res);
        }
        let outcome = match &res.change {
            Change::None => return Ok(res),
            Change::Create(subjects) => match self.create(cfg, subjects).await {
                Ok(()) => {
                    log::info!(
                        "NATS stream {} created (subjects {})",
                        cfg.stream,
                        subjects.join(" ")
                    );
                    Ok(())
                }
                // Created by another core or instance meanwhile: take it as found.
                Err(ApiFail::Refused { err_code, .. }) if err_code == ERR_NAME_IN_USE => {
                    let streams = self.list_streams().await?;
                    let again = route::resolve(cfg, wants, &streams);
                    if let Change::AddSubjects(s) = &again.change {
                        self.add_logged(&cfg.stream, s).await?;
                    }
                    return Ok(again);
                }
                Err(e) => Err(e),
            },
            Change::AddSubjects(subjects) => self.add_logged(&cfg.stream, subjects).await,
        };
        match outcome {
            Ok(()) => Ok(res),
            Err(ApiFail::Conn(e)) => Err(ApiFail::Conn(e)),
            Err(e) => {
                log::error!(
                    "NATS stream {}: the change `{}` was refused: {e}. The types that need it \
                     cannot be stored; fix the stream (add the subjects, or check the account's \
                     JetStream limits and permissions for $JS.API.STREAM.*), or list those types \
                     in sink.nats.core_nats_data_types",
                    cfg.stream,
                    match &res.change {
                        Change::Create(s) => format!("create with {}", s.join(" ")),
                        Change::AddSubjects(s) => format!("add subjects {}", s.join(" ")),
                        Change::None => String::new(),
                    }
                );
                let mut hands_off = cfg.clone();
                hands_off.create_stream = false;
                let streams = self.list_streams().await?;
                Ok(route::resolve(&hands_off, wants, &streams))
            }
        }
    }

    async fn add_logged(&mut self, name: &str, subjects: &[String]) -> Result<(), ApiFail> {
        let added = self.add_subjects(name, subjects).await?;
        if !added.is_empty() {
            log::warn!(
                "NATS stream {name}: added subjects {} (every other setting kept as the \
                 operator set it; its limits now also hold these subjects)",
                added.join(" ")
            );
        }
        Ok(())
    }
}

/// A stream configuration's `subjects`.
fn subjects_of(config: &sonic_rs::Value) -> Vec<String> {
    config
        .get("subjects")
        .and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
