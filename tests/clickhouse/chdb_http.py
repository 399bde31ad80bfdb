#!/usr/bin/env python3
"""ClickHouse's HTTP interface in front of chdb (ClickHouse 26.9 embedded), for tests.

    python3 chdb_http.py --path DIR --port N --port-file FILE [--user U --password P]

The engine is real: DDL, input-format parsing, DEFAULTs, constraints, TTL,
insert deduplication and the exception texts all come from ClickHouse itself.
The HTTP front is ours: one process, one chdb connection on DIR, every engine
call serialized by one lock. Paths under /_test/ are test controls that real
ClickHouse does not have (faults, counters); see tests/README.md.

INSERT ... FORMAT X with data runs as
`INSERT INTO t (cols) SELECT * FROM file(<data>, X, <the columns' own types>)`:
chdb's streaming insert (Connection.send_insert) reports success and writes
nothing when a CHECK constraint fails, so errors would be lost; the file()
form raises them, and columns left out of the list still get their DEFAULT.
"""

import argparse
import base64
import json
import os
import re
import socket
import sys
import tempfile
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import chdb
from chdb import state

# ClickHouse's exceptionCodeToHTTPStatus (src/Server/HTTP/exceptionCodeToHTTPStatus.cpp),
# by error name; names are turned into codes by the engine's errorCodeToName().
STATUS_BY_NAME = {
    401: ["REQUIRED_PASSWORD"],
    403: ["UNKNOWN_USER", "WRONG_PASSWORD", "AUTHENTICATION_FAILED", "SET_NON_GRANTED_ROLE",
          "ACCESS_DENIED"],
    400: ["BAD_ARGUMENTS", "CANNOT_COMPILE_REGEXP", "CANNOT_PARSE_TEXT",
          "CANNOT_PARSE_ESCAPE_SEQUENCE", "CANNOT_PARSE_QUOTED_STRING", "CANNOT_PARSE_DATE",
          "CANNOT_PARSE_DATETIME", "CANNOT_PARSE_NUMBER", "CANNOT_PARSE_DOMAIN_VALUE_FROM_STRING",
          "CANNOT_PARSE_IPV4", "CANNOT_PARSE_IPV6", "CANNOT_PARSE_INPUT_ASSERTION_FAILED",
          "CANNOT_PARSE_UUID", "DUPLICATE_COLUMN", "ILLEGAL_COLUMN", "UNKNOWN_ELEMENT_IN_AST",
          "UNKNOWN_TYPE_OF_AST_NODE", "THERE_IS_NO_COLUMN", "TOO_DEEP_AST", "TOO_BIG_AST",
          "UNEXPECTED_AST_STRUCTURE", "SYNTAX_ERROR", "INCORRECT_DATA", "TYPE_MISMATCH",
          "VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE"],
    404: ["UNKNOWN_TABLE", "UNKNOWN_FUNCTION", "UNKNOWN_IDENTIFIER", "UNKNOWN_TYPE",
          "UNKNOWN_STORAGE", "UNKNOWN_DATABASE", "UNKNOWN_SETTING", "UNKNOWN_DIRECTION_OF_SORTING",
          "UNKNOWN_AGGREGATE_FUNCTION", "UNKNOWN_FORMAT", "UNKNOWN_DATABASE_ENGINE",
          "UNKNOWN_TYPE_OF_QUERY", "UNKNOWN_ROLE"],
    413: ["QUERY_IS_TOO_LARGE"],
    501: ["NOT_IMPLEMENTED"],
    503: ["SOCKET_TIMEOUT", "CANNOT_OPEN_FILE", "CANNOT_SCHEDULE_TASK"],
    411: ["HTTP_LENGTH_REQUIRED"],
    408: ["TIMEOUT_EXCEEDED"],
    415: ["UNSUPPORTED_MEDIA_TYPE"],
}

# URL parameters that are not settings (ClickHouse's HTTP handler reserves them).
RESERVED = {"query", "database", "user", "password", "default_format", "query_id", "session_id",
            "session_timeout", "session_check", "compress", "decompress", "buffer_size",
            "wait_end_of_query", "role", "quota_key", "stacktrace"}

INSERT_HEAD = re.compile(
    rb"^\s*INSERT\s+INTO\s+(?:TABLE\s+)?(?P<table>[`\"\w.]+)\s*(?:\((?P<cols>[^)]*)\))?\s*"
    rb"(?:SETTINGS\s+(?P<settings>.*?)\s*)?FORMAT\s+(?P<fmt>\w+)",
    re.IGNORECASE | re.DOTALL,
)

TEXT_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(?:TABLE\s+)?(?P<table>[`\"\w.]+)", re.IGNORECASE)


class ChError(Exception):
    """An engine (or test-fault) exception: its code and ClickHouse's message."""

    def __init__(self, code, text):
        super().__init__(text)
        self.code = code
        self.text = text


class Engine:
    """The chdb connection; every call holds `lock` (chdb runs one statement at a time)."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.conn = state.connect(path)
        # Insert bodies are staged beside DIR (not in it, which is the engine's),
        # so a test's temporary directory takes them away even after kill -9.
        self.tmpdir = tempfile.mkdtemp(prefix=".chdb_http_tmp_",
                                       dir=os.path.dirname(os.path.abspath(path)))
        self.version = self.run("SELECT version()").decode().strip()
        names = self.run("SELECT number, errorCodeToName(number) FROM numbers(2000) "
                         "WHERE errorCodeToName(number) != ''").decode()
        code_of = {}
        for line in names.splitlines():
            num, name = line.split("\t")
            code_of[name] = int(num)
        self.code_of = code_of
        self.name_of = {c: n for n, c in code_of.items()}
        self.status_of_code = {}
        for status, group in STATUS_BY_NAME.items():
            for name in group:
                if name in code_of:
                    self.status_of_code[code_of[name]] = status

    def run(self, sql, fmt="TabSeparated", params=None):
        try:
            res = self.conn.query(sql, fmt, params=params) if params else self.conn.query(sql, fmt)
        except Exception as e:  # chdb raises ChdbError or RuntimeError with ClickHouse's text
            raise self.as_ch_error(str(e)) from None
        return res.bytes() if res is not None else b""

    def as_ch_error(self, msg):
        m = re.search(r"Code: (\d+)\. ", msg)
        code = int(m.group(1)) if m else 1001
        if m:
            msg = msg[m.start():]
        else:
            msg = f"Code: 1001. DB::Exception: {msg}. (STD_EXCEPTION)"
        msg = msg.rstrip()
        if "(version " not in msg:
            msg += f" (version {self.version})"
        return ChError(code, msg)

    def status(self, code):
        return self.status_of_code.get(code, 500)

    def error(self, name, message):
        code = self.code_of.get(name, 1001)
        return ChError(code, f"Code: {code}. DB::Exception: {message}. ({name}) (version {self.version})")

    def count(self, db, table):
        try:
            return int(self.run(f"SELECT count() FROM {db}.{table}").strip() or 0)
        except ChError:
            return None

    def columns(self, db, table):
        """(name, type) of the columns an INSERT without a column list fills."""
        out = self.run(
            "SELECT name, type FROM system.columns WHERE database = {d:String} AND "
            "table = {t:String} AND default_kind NOT IN ('MATERIALIZED', 'ALIAS', 'EPHEMERAL') "
            "ORDER BY position",
            "TabSeparatedRaw",  # TabSeparated would escape the quotes in `DateTime64(3, 'UTC')`
            params={"d": db, "t": table},
        ).decode()
        cols = [tuple(line.split("\t", 1)) for line in out.splitlines() if line]
        if not cols:
            if not self.run("SELECT 1 FROM system.databases WHERE name = {d:String}",
                            params={"d": db}).strip():
                raise self.error("UNKNOWN_DATABASE", f"Database {db} does not exist")
            raise self.error("UNKNOWN_TABLE", f"Table {db}.{table} does not exist")
        return cols

    def execute(self, sql, data, insert, database, settings, fmt, params):
        """Runs one request's query; returns (result bytes, {table: rows added})."""
        with self.lock:
            applied = []
            try:
                if database:
                    self.run(f"USE {quote_ident(database)}")
                for k, v in settings.items():
                    applied.append(k)
                    self.run(f"SET {quote_ident(k)} = {quote_str(v)}")
                if insert is not None:
                    return self.insert(insert, data, database or "default")
                target = TEXT_INSERT.match(sql)
                if target is None:
                    return self.run(sql, fmt, params), {}
                # An INSERT ... VALUES / SELECT: rows added, counted as for FORMAT bodies.
                name = target.group("table").replace("`", "").replace('"', "")
                db, _, table = name.rpartition(".")
                db = db or database or "default"
                before = self.count(db, table)
                out = self.run(sql, fmt, params)
                after = self.count(db, table)
                added = (after - before) if before is not None and after is not None else 0
                return out, {f"{db}.{table}": added}
            finally:
                for k in applied:
                    try:
                        self.run(f"SET {quote_ident(k)} = DEFAULT")
                    except ChError:
                        pass
                if database:
                    self.run("USE default")

    def insert(self, head, data, database):
        table = head.group("table").decode().replace("`", "").replace('"', "")
        db, _, name = table.rpartition(".")
        db = db or database
        table_cols = dict(self.columns(db, name))
        if head.group("cols") is not None:
            wanted = [c.strip().strip('`"') for c in head.group("cols").decode().split(",") if c.strip()]
        else:
            wanted = list(table_cols)
        for c in wanted:
            if c not in table_cols:
                raise self.error("NO_SUCH_COLUMN_IN_TABLE", f"No such column {c} in table {db}.{name}")
        structure = ", ".join(f"{quote_ident(c)} {table_cols[c]}" for c in wanted)
        fd, path = tempfile.mkstemp(dir=self.tmpdir)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            # An INSERT SELECT is deduplicated only when its SELECT is "stable";
            # reading one file is, so it deduplicates as the plain INSERT it stands for.
            settings = "deduplicate_insert_select = 'enable_even_for_bad_queries'"
            if head.group("settings"):
                settings += ", " + head.group("settings").decode()
            sql = (f"INSERT INTO {quote_ident(db)}.{quote_ident(name)} "
                   f"({', '.join(quote_ident(c) for c in wanted)}) SETTINGS {settings} "
                   + f"SELECT * FROM file({quote_str(path)}, {quote_str(head.group('fmt').decode())}, "
                   f"{quote_str(structure)})")
            before = self.count(db, name)
            self.run(sql)
            after = self.count(db, name)
            added = (after - before) if before is not None and after is not None else 0
            return b"", {f"{db}.{name}": added}
        finally:
            os.unlink(path)


def quote_ident(s):
    return "`" + s.replace("\\", "\\\\").replace("`", "\\`") + "`"


def quote_str(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def insert_data_start(text, end):
    """Where inline INSERT data begins after `FORMAT X`: after the first newline
    if there is one among the following whitespace, else after all of it (as
    ClickHouse's INSERT parser does)."""
    i = end
    while i < len(text) and text[i:i + 1] in (b" ", b"\t", b"\r", b"\n", b"\f"):
        if text[i:i + 1] == b"\n":
            return i + 1
        i += 1
    return i


class Faults:
    """Queued test faults (`/_test/fault`) and counters (`/_test/stats`)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.queue = []  # [kind, params, remaining]
        self.stats = {"requests": 0, "inserts_received": 0, "inserts_applied": 0,
                      "inserts_failed": 0, "inserts_failed_by_fault": 0,
                      "inserts_dropped_after_apply": 0, "inserts_delayed": 0,
                      "inserts_answered_late": 0, "late_tokens": [], "rows": {}, "tokens": {}}

    def add(self, kind, params, count):
        with self.lock:
            self.queue.append([kind, params, count])

    def take(self):
        with self.lock:
            if not self.queue:
                return None
            f = self.queue[0]
            f[2] -= 1
            if f[2] <= 0:
                self.queue.pop(0)
            return f[0], f[1]

    def bump(self, key, n=1):
        with self.lock:
            self.stats[key] += n

    def rows(self, added):
        with self.lock:
            for t, n in added.items():
                self.stats["rows"][t] = self.stats["rows"].get(t, 0) + n

    def token(self, tok, added):
        """Rows each INSERT with deduplication token `tok` added (0: deduplicated)."""
        with self.lock:
            self.stats["tokens"].setdefault(tok, []).append(added)

    def snapshot(self):
        with self.lock:
            return json.dumps(self.stats).encode()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "chdb_http"

    def log_message(self, fmt, *args):  # the one line per request is ours
        pass

    def log(self, what, outcome):
        sys.stderr.write(f"{self.command} {what[:120]!r} -> {outcome}\n")
        sys.stderr.flush()

    def answer(self, status, body, headers=()):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def fail(self, err, what, status=None, note=""):
        status = status or self.server.engine.status(err.code)
        self.answer(status, (err.text + "\n").encode(),
                    [("Content-Type", "text/plain; charset=UTF-8"),
                     ("X-ClickHouse-Exception-Code", str(err.code))])
        self.log(what, f"{status} Code {err.code}{note}")

    def do_GET(self):
        self.handle_any()

    def do_POST(self):
        self.handle_any()

    def do_HEAD(self):
        self.handle_any()

    def handle_any(self):
        srv = self.server
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        try:
            body = self.read_body()
        except (ValueError, zlib.error) as e:
            err = srv.engine.error("CANNOT_DECOMPRESS", f"Cannot read the request body: {e}")
            self.close_connection = True
            return self.fail(err, url.path)
        srv.faults.bump("requests")
        if url.path.startswith("/_test/"):
            return self.test_control(url.path, params)
        if url.path in ("/ping", "/") and "query" not in params and not body:
            self.answer(200, b"Ok.\n", [("Content-Type", "text/html; charset=UTF-8")])
            return self.log(url.path, "200")
        if url.path not in ("/", "/query"):
            err = srv.engine.error("UNKNOWN_TYPE_OF_QUERY", f"There is no handle {url.path}")
            return self.fail(err, url.path)
        if not self.authorized(params):
            user = self.supplied_user(params)
            err = srv.engine.error(
                "AUTHENTICATION_FAILED",
                f"{user}: Authentication failed: password is incorrect, or there is no user with such name")
            return self.fail(err, params.get("query", "") or body[:120].decode("utf-8", "replace"))
        self.run_query(params, body)

    def read_body(self):
        """The body by Content-Length or chunked, decoded per Content-Encoding
        (gzip and deflate; ClickHouse also knows others, this stand does not)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(parts)
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        enc = self.headers.get("Content-Encoding", "").lower().strip()
        if enc == "gzip":
            body = zlib.decompress(body, 16 + zlib.MAX_WBITS)
        elif enc == "deflate":
            body = zlib.decompress(body)
        elif enc not in ("", "identity"):
            raise ValueError(f"unsupported Content-Encoding {enc}")
        return body

    def supplied_user(self, params):
        h = self.headers
        if h.get("X-ClickHouse-User"):
            return h.get("X-ClickHouse-User")
        auth = h.get("Authorization", "")
        if auth.startswith("Basic "):
            try:
                return base64.b64decode(auth[6:]).decode().split(":", 1)[0]
            except Exception:
                return ""
        return params.get("user", "default")

    def authorized(self, params):
        srv = self.server
        if srv.user is None:
            return True
        h = self.headers
        user = password = None
        if h.get("X-ClickHouse-User") is not None:
            user, password = h.get("X-ClickHouse-User"), h.get("X-ClickHouse-Key", "")
        elif h.get("Authorization", "").startswith("Basic "):
            try:
                user, _, password = base64.b64decode(h["Authorization"][6:]).decode().partition(":")
            except Exception:
                return False
        elif "user" in params:
            user, password = params["user"], params.get("password", "")
        return user == srv.user and password == srv.password

    def run_query(self, params, body):
        srv = self.server
        head_sql = params.get("query", "").encode()
        if head_sql and body:
            insert = INSERT_HEAD.match(head_sql)
            if insert is not None:
                # Data after `FORMAT X` in the parameter, then the body, as ClickHouse concatenates.
                data = head_sql[insert_data_start(head_sql, insert.end()):] + body
                sql_text = head_sql
            else:
                sql_text, data = head_sql + b"\n" + body, b""
        else:
            sql_text = head_sql or body
            insert = INSERT_HEAD.match(sql_text)
            data = sql_text[insert_data_start(sql_text, insert.end()):] if insert is not None else b""
        shown = sql_text[:insert.end()] if insert is not None else sql_text  # not the data
        what = shown[:120].decode("utf-8", "replace").replace("\n", " ")
        if not sql_text.strip():
            return self.fail(srv.engine.error("SYNTAX_ERROR", "Empty query"), what)
        is_insert = re.match(rb"^\s*INSERT\b", sql_text, re.IGNORECASE) is not None
        drop_after = False
        late_ms = 0
        if is_insert:
            srv.faults.bump("inserts_received")
            fault = srv.faults.take()
            if fault is not None:
                kind, fp = fault
                if kind == "error":
                    srv.faults.bump("inserts_failed_by_fault")
                    code = int(fp.get("code", 1001))
                    name = fp.get("name") or srv.engine.name_of.get(code, "TEST_FAULT")
                    err = ChError(code, f"Code: {code}. DB::Exception: Fault injected by /_test/fault. "
                                        f"({name}) (version {srv.engine.version})")
                    status = int(fp["status"]) if "status" in fp else srv.engine.status(code)
                    return self.fail(err, what, status, " (fault)")
                if kind == "delay":
                    srv.faults.bump("inserts_delayed")
                    time.sleep(int(fp.get("ms", 0)) / 1000.0)
                elif kind == "apply_then_drop":
                    drop_after = True
                elif kind == "apply_then_delay":
                    late_ms = int(fp.get("ms", 0))
        settings = {k: v for k, v in params.items() if k not in RESERVED and not k.startswith("param_")}
        qparams = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        database = params.get("database") or self.headers.get("X-ClickHouse-Database") or ""
        fmt = params.get("default_format") or self.headers.get("X-ClickHouse-Format") or "TabSeparated"
        try:
            out, added = srv.engine.execute(sql_text.decode("utf-8", "replace") if insert is None else None,
                                            data, insert, database, settings, fmt, qparams)
        except ChError as err:
            if is_insert:
                srv.faults.bump("inserts_failed")
            return self.fail(err, what)
        except Exception as e:  # a bug of this front: answered as ClickHouse answers std exceptions
            if is_insert:
                srv.faults.bump("inserts_failed")
            return self.fail(srv.engine.error("STD_EXCEPTION", f"chdb_http: {type(e).__name__}: {e}"), what)
        if is_insert:
            srv.faults.bump("inserts_applied")
            srv.faults.rows(added)
            tok = params.get("insert_deduplication_token")
            if tok:
                srv.faults.token(tok, sum(added.values()))
            what += f" token={tok}"
        if late_ms:
            # Applied; the answer comes late (a client may be gone by then).
            srv.faults.bump("inserts_answered_late")
            with srv.faults.lock:
                srv.faults.stats["late_tokens"].append(tok)
            time.sleep(late_ms / 1000.0)
        if drop_after:
            srv.faults.bump("inserts_dropped_after_apply")
            self.log(what, "applied, connection dropped (fault)")
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        written = sum(added.values())
        self.answer(200, out, [("Content-Type", "text/tab-separated-values; charset=UTF-8"),
                               ("X-ClickHouse-Summary", json.dumps({"written_rows": str(written)}))])
        self.log(what, f"200 {len(out)} bytes" + (f", {written} rows added" if is_insert else ""))

    def test_control(self, path, params):
        srv = self.server
        if path == "/_test/stats":
            self.answer(200, srv.faults.snapshot(), [("Content-Type", "application/json")])
            return self.log(path, "200")
        if path == "/_test/fault":
            kind = params.get("kind", "")
            if kind not in ("error", "apply_then_drop", "delay", "apply_then_delay"):
                self.answer(400, b"kind must be error, apply_then_drop, delay or apply_then_delay\n")
                return self.log(path, "400")
            count = int(params.get("count", "1"))
            srv.faults.add(kind, {k: v for k, v in params.items() if k not in ("kind", "count")}, count)
            self.answer(200, b"Ok.\n")
            return self.log(path + "?" + kind, "200")
        self.answer(404, b"unknown test control\n")
        self.log(path, "404")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--path", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--user")
    ap.add_argument("--password", default="")
    a = ap.parse_args()
    os.makedirs(a.path, exist_ok=True)
    srv = Server(("127.0.0.1", a.port), Handler)
    srv.engine = Engine(a.path)
    srv.faults = Faults()
    srv.user = a.user
    srv.password = a.password
    port = srv.server_address[1]
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{port}\n")
    os.replace(tmp, a.port_file)
    sys.stderr.write(f"chdb_http: ClickHouse {srv.engine.version} (chdb {chdb.__version__}) on "
                     f"{a.path}, listening on 127.0.0.1:{port}\n")
    sys.stderr.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
