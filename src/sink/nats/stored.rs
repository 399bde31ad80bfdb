//! JetStream calls about what a stream holds, on any API connection
//! ([`ApiIo`]): the last message stored for a subject, the stream capturing
//! a subject, and key-value buckets in JetStream's KV convention (stream
//! `KV_<bucket>`, subjects `$KV.<bucket>.<key>`), so the `nats kv` tools
//! read and write the same buckets.

use super::conn::ConnError;
use super::jsapi::{ApiFail, ApiIo, ERR_NAME_IN_USE, ERR_NOT_FOUND};
use super::proto;
use super::route;
use base64::Engine;
use futures_lite::io::{AsyncRead, AsyncWrite};
use serde::Serialize;
use sonic_rs::{JsonContainerTrait, JsonValueTrait};
use std::time::Duration;

/// "no message found".
pub const ERR_NO_MESSAGE: u32 = 10037;
/// The server's own default and cap for a KV bucket's duplicate window.
const KV_MAX_DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// A message as the stream stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMsg {
    pub seq: u64,
    /// Its `Nats-Msg-Id` header, if it had one.
    pub msg_id: Option<String>,
    pub payload: Vec<u8>,
}

/// One present key of a bucket and its latest value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvEntry {
    pub key: String,
    pub seq: u64,
    pub value: Vec<u8>,
}

/// A stored message with its raw header block.
struct Raw {
    seq: u64,
    headers: Vec<u8>,
    payload: Vec<u8>,
}

#[derive(Serialize)]
struct LastBySubj<'a> {
    last_by_subj: &'a str,
}

#[derive(Serialize)]
struct SubjectsFilter<'a> {
    subjects_filter: &'a str,
    offset: usize,
}

/// The settings `nats kv add` gives a bucket (history 1).
#[derive(Serialize)]
struct KvStreamConfig<'a> {
    name: &'a str,
    subjects: [&'a str; 1],
    retention: &'a str,
    max_msgs_per_subject: i64,
    max_msgs: i64,
    max_bytes: i64,
    max_age: u64,
    max_msg_size: i64,
    storage: &'a str,
    discard: &'a str,
    num_replicas: u32,
    duplicate_window: u64,
    allow_rollup_hdrs: bool,
    deny_delete: bool,
    allow_direct: bool,
}

fn invalid(why: String) -> ApiFail {
    ApiFail::Refused {
        code: 400,
        err_code: 0,
        why,
    }
}

/// A stream or bucket name: one subject token, no wildcard.
fn check_name(what: &str, s: &str) -> Result<(), ApiFail> {
    let ok = !s.is_empty()
        && s.len() <= 255
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "invalid {what} {s:?}: use letters, digits, '_' and '-'"
        )))
    }
}

/// A KV key: the characters the KV convention allows (dots separate tokens).
fn check_key(key: &str) -> Result<(), ApiFail> {
    let ok = proto::valid_subject(key)
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "invalid key {key:?}: use letters, digits and - / _ = . (not at either end)"
        )))
    }
}

fn bad_reply(what: &str) -> ApiFail {
    ApiFail::Conn(ConnError::Proto(format!("bad JetStream API reply: {what}")))
}

/// The value of header `name` (case-insensitive) in a NATS header block.
pub fn header<'a>(block: &'a [u8], name: &str) -> Option<&'a str> {
    let text = std::str::from_utf8(block).ok()?;
    text.split("\r\n").skip(1).find_map(|line| {
        let (k, v) = line.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn b64(v: &sonic_rs::Value, key: &str) -> Result<Vec<u8>, ApiFail> {
    match v.get(key).and_then(|x| x.as_str()) {
        None => Ok(Vec::new()),
        Some(s) => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| bad_reply(&format!("{key} is not base64 ({e})"))),
    }
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> ApiIo<'_, R, W> {
    async fn get_last(&mut self, stream: &str, subject: &str) -> Result<Option<Raw>, ApiFail> {
        check_name("stream name", stream)?;
        let body = proto::encode_json(&LastBySubj {
            last_by_subj: subject,
        });
        let v = match self
            .call(&format!("$JS.API.STREAM.MSG.GET.{stream}"), &body)
            .await
        {
            Ok(v) => v,
            Err(ApiFail::Refused { err_code, .. }) if err_code == ERR_NO_MESSAGE => {
                return Ok(None)
            }
            Err(e) => return Err(e),
        };
        let m = v.get("message").ok_or_else(|| bad_reply("no message"))?;
        let seq = m
            .get("seq")
            .and_then(|s| s.as_u64())
            .ok_or_else(|| bad_reply("message without seq"))?;
        Ok(Some(Raw {
            seq,
            headers: b64(m, "hdrs")?,
            payload: b64(m, "data")?,
        }))
    }

    /// The last message `stream` stores for `subject` (no wildcards), or
    /// `None` when it holds none (`Refused` when the stream does not exist).
    pub async fn last_by_subject(
        &mut self,
        stream: &str,
        subject: &str,
    ) -> Result<Option<StoredMsg>, ApiFail> {
        Ok(self.get_last(stream, subject).await?.map(|r| StoredMsg {
            seq: r.seq,
            msg_id: header(&r.headers, "Nats-Msg-Id").map(str::to_string),
            payload: r.payload,
        }))
    }

    /// The stream whose subjects capture `subject`, if any.
    pub async fn stream_for_subject(&mut self, subject: &str) -> Result<Option<String>, ApiFail> {
        let streams = self.list_streams().await?;
        Ok(streams
            .into_iter()
            .find(|s| {
                s.subjects
                    .iter()
                    .any(|f| route::subject_matches(f, subject))
            })
            .map(|s| s.name))
    }

    /// Creates bucket `bucket` (stream `KV_<bucket>`) whose keys expire
    /// `ttl` after their last put, unless it exists (its settings are then
    /// left as they are). True if created here.
    pub async fn kv_ensure(
        &mut self,
        bucket: &str,
        ttl: Duration,
        replicas: u32,
    ) -> Result<bool, ApiFail> {
        check_name("bucket name", bucket)?;
        if ttl.is_zero() {
            return Err(invalid("a bucket's ttl must be positive".into()));
        }
        let stream = format!("KV_{bucket}");
        match self
            .call(&format!("$JS.API.STREAM.INFO.{stream}"), b"")
            .await
        {
            Ok(_) => return Ok(false),
            Err(ApiFail::Refused { err_code, .. }) if err_code == ERR_NOT_FOUND => {}
            Err(e) => return Err(e),
        }
        let subject = format!("$KV.{bucket}.>");
        let ttl_ns = crate::sys::duration_ns(ttl);
        let body = proto::encode_json(&KvStreamConfig {
            name: &stream,
            subjects: [&subject],
            retention: "limits",
            max_msgs_per_subject: 1,
            max_msgs: -1,
            max_bytes: -1,
            max_age: ttl_ns,
            max_msg_size: -1,
            storage: "file",
            discard: "new",
            num_replicas: replicas.max(1),
            // The server refuses a window longer than max_age.
            duplicate_window: ttl_ns.min(KV_MAX_DUPLICATE_WINDOW.as_nanos() as u64),
            allow_rollup_hdrs: true,
            deny_delete: true,
            allow_direct: true,
        });
        match self
            .call(&format!("$JS.API.STREAM.CREATE.{stream}"), &body)
            .await
        {
            Ok(_) => Ok(true),
            // Created by another instance meanwhile.
            Err(ApiFail::Refused { err_code, .. }) if err_code == ERR_NAME_IN_USE => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Stores `value` under `key`; returns its stream sequence once the
    /// server acknowledged it.
    pub async fn kv_put(&mut self, bucket: &str, key: &str, value: &[u8]) -> Result<u64, ApiFail> {
        check_name("bucket name", bucket)?;
        check_key(key)?;
        let raw = match self.request(&format!("$KV.{bucket}.{key}"), value).await {
            Err(ApiFail::Refused { code: 503, .. }) => {
                return Err(ApiFail::Refused {
                    code: 503,
                    err_code: 0,
                    why: format!(
                        "no responders: no stream captures $KV.{bucket}.{key} \
                         (bucket {bucket} absent? see kv_ensure)"
                    ),
                })
            }
            r => r?,
        };
        let ack = proto::parse_pub_ack(&raw).map_err(|e| ApiFail::Conn(ConnError::Proto(e.0)))?;
        match (ack.error, ack.seq) {
            (Some(e), _) => Err(ApiFail::Refused {
                code: e.code,
                err_code: e.err_code,
                why: e.description,
            }),
            (None, Some(seq)) => Ok(seq),
            (None, None) => Err(bad_reply("PubAck without seq")),
        }
    }

    /// Every present key of `bucket` with its latest value, sorted by key
    /// (keys whose last operation is a delete or purge are absent).
    pub async fn kv_entries(&mut self, bucket: &str) -> Result<Vec<KvEntry>, ApiFail> {
        check_name("bucket name", bucket)?;
        let stream = format!("KV_{bucket}");
        let prefix = format!("$KV.{bucket}.");
        let filter = format!("{prefix}>");
        let mut subjects: Vec<String> = Vec::new();
        // STREAM.INFO lists a page of subjects per call.
        loop {
            let body = proto::encode_json(&SubjectsFilter {
                subjects_filter: &filter,
                offset: subjects.len(),
            });
            let v = self
                .call(&format!("$JS.API.STREAM.INFO.{stream}"), &body)
                .await?;
            let total = v.get("total").and_then(|t| t.as_u64()).unwrap_or(0) as usize;
            let before = subjects.len();
            if let Some(map) = v
                .get("state")
                .and_then(|s| s.get("subjects"))
                .and_then(|s| s.as_object())
            {
                subjects.extend(map.iter().map(|(k, _)| k.to_string()));
            }
            if subjects.len() == before || subjects.len() >= total {
                break;
            }
        }
        subjects.sort_unstable();
        subjects.dedup();
        let mut out = Vec::with_capacity(subjects.len());
        for subject in subjects {
            // Expired between the listing and this read: absent.
            let Some(r) = self.get_last(&stream, &subject).await? else {
                continue;
            };
            if matches!(header(&r.headers, "KV-Operation"), Some("DEL" | "PURGE")) {
                continue;
            }
            let Some(key) = subject.strip_prefix(&prefix) else {
                continue;
            };
            out.push(KvEntry {
                key: key.to_string(),
                seq: r.seq,
                value: r.payload,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_found_case_insensitively() {
        let h =
            b"NATS/1.0\r\nNats-Msg-Id: trade:binance:spot:BTC-USDT:42\r\nKV-Operation: DEL\r\n\r\n";
        assert_eq!(
            header(h, "nats-msg-id"),
            Some("trade:binance:spot:BTC-USDT:42")
        );
        assert_eq!(header(h, "KV-Operation"), Some("DEL"));
        assert_eq!(header(h, "Other"), None);
        assert_eq!(header(b"", "Nats-Msg-Id"), None);
        assert_eq!(header(b"NATS/1.0\r\n\r\n", "Nats-Msg-Id"), None);
    }

    #[test]
    fn names_and_keys_checked() {
        assert!(check_name("bucket", "marketprism_members-1").is_ok());
        for bad in ["", "a.b", "a*", "a>", "a b"] {
            assert!(check_name("bucket", bad).is_err(), "{bad:?}");
        }
        assert!(check_key("node-a").is_ok());
        assert!(check_key("a.b/c=d_e").is_ok());
        for bad in ["", ".a", "a.", "a..b", "a b", "a*", "a>"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
    }
}
