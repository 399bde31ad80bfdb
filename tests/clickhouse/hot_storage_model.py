#!/usr/bin/env python3
"""What MarketPrism's hot-storage service would have written, for comparison.

    hot_storage_model.py --url URL --records DIR [--db expected] [--like marketprism_hot]
    hot_storage_model.py compare --url URL [--actual marketprism_hot] [--expected expected] [--extras --records DIR]

The first form reads our file sink's JSON Lines (every *.jsonl under DIR), keeps
the eight data types MarketPrism stores, and inserts into `<db>.<table>` (made
with `CREATE TABLE <db>.t AS <like>.t`) the rows its service
(services/hot-storage-service/main.py) builds from each record: the same field
picks and Python conversions (float()/int() of strings, bool(), JSON re-dumped
compactly), sent as the same SQL VALUES text (`toDateTime64(ms/1000.0, 3,
'UTC')`, strings quoted as is) so the ClickHouse engine converts them as it
would for the service. A batch the engine refuses is retried record by record;
records it still refuses are reported (the service would have lost them).

`compare` checks, per table, the multiset of rows over the columns the service
writes, and exits 1 on any difference. `--extras` checks the columns our sink
fills and the service leaves at their default against the JSON records.
"""

import argparse
import json
import os
import time
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from decimal import ROUND_DOWN, Decimal, InvalidOperation

TABLES = {
    "trade": "trades",
    "orderbook": "orderbooks",
    "funding_rate": "funding_rates",
    "open_interest": "open_interests",
    "liquidation": "liquidations",
    "lsr_top_position": "lsr_top_positions",
    "lsr_all_account": "lsr_all_accounts",
    "volatility_index": "volatility_indices",
}

BASE = ["timestamp", "exchange", "market_type", "symbol", "data_source"]
# The columns the service's INSERT names, per table (its _build_batch_insert_sql).
FIELDS = {
    "trades": BASE + ["trade_id", "price", "quantity", "side", "is_maker", "trade_time"],
    "orderbooks": BASE + ["last_update_id", "bids_count", "asks_count", "best_bid_price",
                          "best_ask_price", "best_bid_quantity", "best_ask_quantity", "bids", "asks"],
    "funding_rates": BASE + ["funding_rate", "funding_time", "next_funding_time"],
    "open_interests": list(BASE),
    "liquidations": BASE + ["side", "price", "quantity", "liquidation_time"],
    "lsr_top_positions": BASE + ["long_position_ratio", "short_position_ratio", "period"],
    "lsr_all_accounts": BASE + ["long_account_ratio", "short_account_ratio", "period"],
    "volatility_indices": list(BASE),
}

# Columns our sink fills that the service leaves at their default: column -> JSON key.
EXTRAS = {
    "funding_rates": {"mark_price": "mark_price", "index_price": "index_price"},
    "open_interests": {"open_interest": "open_interest", "open_interest_value": "open_interest_value"},
    "volatility_indices": {"index_value": "volatility_index", "underlying_asset": "underlying_asset"},
}
TEXT_EXTRAS = {"underlying_asset"}

BATCH = 1000


class Http:
    def __init__(self, url):
        self.url = url.rstrip("/") + "/"

    def query(self, sql, **settings):
        """Runs sql; returns the body; raises RuntimeError with the server's answer."""
        url = self.url + ("?" + urllib.parse.urlencode(settings) if settings else "")
        req = urllib.request.Request(url, data=sql.encode(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            raise RuntimeError(f"HTTP {e.code}: {e.read().decode(errors='replace').strip()}") from None


# ---- the service's conversions (DataFormatValidator and _validate_message_data) ----

def numeric(value, default):
    if value is None:
        return default
    if isinstance(value, bool):
        return value  # Python's bool is an int, kept as is
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            return default
    return default


def ts_ms(value, now_ms):
    """validate_ts_ms: int as ms; float or digit string below 1e11 as seconds."""
    if value is None:
        return now_ms
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value if value >= 1e11 else value * 1000)
    if isinstance(value, str) and value.strip().isdigit():
        v = int(value.strip())
        return int(v if v >= 1e11 else v * 1000)
    # ISO strings: the service parses them; our sink never sends them.
    return now_ms


def json_text(value):
    if value is None:
        return "[]"
    if isinstance(value, str):
        try:
            json.loads(value)
            return value
        except ValueError:
            return "[]"
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return "[]"


def best(levels):
    """(price, quantity) of the first level, as the service reads it."""
    if levels and len(levels) > 0:
        top = levels[0]
        if isinstance(top, dict):
            return float(top.get("price", 0)), float(top.get("quantity", 0))
        if isinstance(top, list) and len(top) >= 2:
            return float(top[0]), float(top[1])
    return 0, 0


def validate(d, data_type, now_ms):
    v = {
        "ts_ms": ts_ms(d.get("ts_ms") or d.get("timestamp"), now_ms),
        "exchange": str(d.get("exchange", "") or "").lower(),
        "market_type": str(d.get("market_type", "") or "").lower(),
        "symbol": str(d.get("symbol", "")),
        "data_source": str(d.get("data_source", "simple_hot_storage")),
    }
    if data_type == "orderbook":
        v["last_update_id"] = numeric(d.get("last_update_id"), 0)
        bids, asks = d.get("bids", "[]"), d.get("asks", "[]")
        v["bids"], v["asks"] = json_text(bids), json_text(asks)
        try:
            bl = json.loads(bids) if isinstance(bids, str) else bids
            al = json.loads(asks) if isinstance(asks, str) else asks
            v["best_bid_price"], v["best_bid_quantity"] = best(bl)
            v["best_ask_price"], v["best_ask_quantity"] = best(al)
            v["bids_count"] = len(bl) if bl else 0
            v["asks_count"] = len(al) if al else 0
        except (ValueError, TypeError):
            for k in ("best_bid_price", "best_ask_price", "best_bid_quantity", "best_ask_quantity",
                      "bids_count", "asks_count"):
                v[k] = 0
    elif data_type == "trade":
        v["trade_id"] = str(d.get("trade_id", ""))
        v["price"] = numeric(d.get("price"), 0.0)
        v["quantity"] = numeric(d.get("quantity"), 0.0)
        v["side"] = str(d.get("side", ""))
        v["is_maker"] = bool(d.get("is_maker", False))
        v["trade_ts_ms"] = ts_ms(d.get("trade_ts_ms") or d.get("trade_time") or v["ts_ms"], now_ms)
    elif data_type == "funding_rate":
        v["funding_rate"] = numeric(d.get("current_funding_rate"), 0.0)
        v["funding_ts_ms"] = ts_ms(d.get("funding_ts_ms") or d.get("funding_time") or v["ts_ms"], now_ms)
        v["next_funding_ts_ms"] = ts_ms(
            d.get("next_funding_ts_ms") or d.get("next_funding_time") or v["ts_ms"], now_ms)
    elif data_type == "liquidation":
        v["side"] = str(d.get("side", ""))
        v["price"] = numeric(d.get("price"), 0.0)
        v["quantity"] = numeric(d.get("quantity"), 0.0)
        v["liquidation_ts_ms"] = ts_ms(
            d.get("liquidation_ts_ms") or d.get("liquidation_time") or v["ts_ms"], now_ms)
    elif data_type == "lsr_top_position":
        v["long_position_ratio"] = numeric(d.get("long_position_ratio"), 0.0)
        v["short_position_ratio"] = numeric(d.get("short_position_ratio"), 0.0)
        v["period"] = str(d.get("period", ""))
    elif data_type == "lsr_all_account":
        v["long_account_ratio"] = numeric(d.get("long_account_ratio"), 0.0)
        v["short_account_ratio"] = numeric(d.get("short_account_ratio"), 0.0)
        v["period"] = str(d.get("period", ""))
    return v


def dt64(ms):
    return f"toDateTime64({ms}/1000.0, 3, 'UTC')"


def values(v, fields):
    """One record's VALUES tuple, as the service's _build_values_for_record writes it:
    strings quoted without escaping, numbers through Python's str()."""
    out = []
    for f in fields:
        if f == "timestamp":
            out.append(dt64(v.get("ts_ms", 0)))
        elif f in ("exchange", "market_type", "symbol", "data_source"):
            out.append(f"'{v[f]}'")
        elif f in ("bids", "asks"):
            out.append(f"'{v.get(f, '[]')}'")
        elif f in ("trade_id", "side"):
            out.append(f"'{v.get(f, '')}'")
        elif f == "is_maker":
            out.append(str(v.get(f, False)).lower())
        elif f == "trade_time":
            out.append(dt64(v.get("trade_ts_ms", v.get("ts_ms", 0))))
        elif f == "funding_time":
            out.append(dt64(v.get("funding_ts_ms", v.get("ts_ms", 0))))
        elif f == "next_funding_time":
            out.append(dt64(v.get("next_funding_ts_ms", v.get("ts_ms", 0))))
        elif f == "liquidation_time":
            out.append(dt64(v.get("liquidation_ts_ms", v.get("ts_ms", 0))))
        elif f == "period":
            out.append(f"'{v.get(f, '5m')}'")
        else:
            out.append(str(v.get(f, 0)))
    return "(" + ", ".join(out) + ")"


def read_records(records_dir):
    """(data_type, record) of every line of every *.jsonl under records_dir, in path order."""
    paths = []
    for root, _, files in os.walk(records_dir):
        paths += [os.path.join(root, f) for f in files if f.endswith(".jsonl")]
    if not paths:
        sys.exit(f"no *.jsonl under {records_dir}")
    for p in sorted(paths):
        with open(p, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError as e:
                    sys.exit(f"{p}:{n}: not JSON: {e}")
                yield rec.get("data_type"), rec


def expected(args):
    ch = Http(args.url)
    now_ms = int(time.time() * 1000)
    rows = {}
    for data_type, rec in read_records(args.records):
        table = TABLES.get(data_type)
        if table is not None:
            rows.setdefault(table, []).append(values(validate(rec, data_type, now_ms), FIELDS[table]))
    ch.query(f"CREATE DATABASE IF NOT EXISTS {args.db}")
    lost = 0
    for table, vals in sorted(rows.items()):
        ch.query(f"DROP TABLE IF EXISTS {args.db}.{table}")
        ch.query(f"CREATE TABLE {args.db}.{table} AS {args.like}.{table}")
        head = f"INSERT INTO {args.db}.{table} ({', '.join(FIELDS[table])}) VALUES\n    "
        # Identical records are distinct inserts for the service: no deduplication here
        # (on 26.9 `deduplicate_insert` supersedes `insert_deduplicate`).
        for i in range(0, len(vals), BATCH):
            chunk = vals[i:i + BATCH]
            try:
                ch.query(head + ",\n    ".join(chunk), deduplicate_insert="disable")
            except RuntimeError:
                for one in chunk:
                    try:
                        ch.query(head + one, deduplicate_insert="disable")
                    except RuntimeError as e:
                        lost += 1
                        print(f"{table}: the service could not insert {one[:200]}: {e}")
        print(f"{table}: {len(vals)} records")
    if lost:
        print(f"{lost} records refused by the engine")


def tsv_rows(ch, sql):
    return Counter(line for line in ch.query(sql).split("\n") if line)


def table_exists(ch, db, table):
    return ch.query(f"EXISTS TABLE {db}.{table}").strip() == "1"


def compare(args):
    ch = Http(args.url)
    ok = True
    for table in TABLES.values():
        a_has, e_has = table_exists(ch, args.actual, table), table_exists(ch, args.expected, table)
        if not a_has and not e_has:
            continue
        cols = ", ".join(FIELDS[table])
        actual = tsv_rows(ch, f"SELECT {cols} FROM {args.actual}.{table}") if a_has else Counter()
        want = tsv_rows(ch, f"SELECT {cols} FROM {args.expected}.{table}") if e_has else Counter()
        equal = sum((actual & want).values())
        print(f"{table}: {sum(actual.values())} rows, {equal} equal")
        if actual != want:
            ok = False
            print(f"  expected {sum(want.values())} rows; columns: {cols}")
            shown = 0
            for row, n in (want - actual).items():
                if shown < 20:
                    print(f"  missing x{n}: {row}")
                shown += 1
            for row, n in (actual - want).items():
                if shown < 20:
                    print(f"  extra x{n}:   {row}")
                shown += 1
            if shown > 20:
                print(f"  ... {shown - 20} more differing rows")
    if args.extras:
        ok = extras(ch, args) and ok
    if table_exists(ch, args.actual, "gaps"):
        print(f"gaps: {ch.query(f'SELECT count() FROM {args.actual}.gaps').strip()} rows")
    sys.exit(0 if ok else 1)


def dec8(x):
    try:
        return Decimal(str(x)).quantize(Decimal("0.00000001"), rounding=ROUND_DOWN)
    except InvalidOperation:
        return None


def extras(ch, args):
    """The sink-only columns, record by record, keyed by (ts_ms, exchange, market_type, symbol)."""
    if not args.records:
        sys.exit("--extras needs --records DIR")
    by_table = {}
    for data_type, rec in read_records(args.records):
        table = TABLES.get(data_type)
        if table in EXTRAS:
            key = (str(rec.get("ts_ms")), rec.get("exchange", ""), rec.get("market_type", ""),
                   rec.get("symbol", ""))
            vals = tuple(
                str(rec.get(k, "")) if col in TEXT_EXTRAS else dec8(rec.get(k) or 0)
                for col, k in EXTRAS[table].items())
            by_table.setdefault(table, Counter())[(key, vals)] += 1
    ok = True
    for table, cols in EXTRAS.items():
        want = by_table.get(table, Counter())
        if not want and not table_exists(ch, args.actual, table):
            continue
        sql = (f"SELECT toUnixTimestamp64Milli(timestamp), exchange, market_type, symbol, "
               f"{', '.join(cols)} FROM {args.actual}.{table}")
        got = Counter()
        for line in ch.query(sql).split("\n"):
            if not line:
                continue
            f = line.split("\t")
            vals = tuple(f[4 + i] if col in TEXT_EXTRAS else dec8(f[4 + i])
                         for i, col in enumerate(cols))
            got[(tuple(f[:4]), vals)] += 1
        equal = sum((got & want).values())
        print(f"{table} extras ({', '.join(cols)}): {sum(want.values())} records, {equal} equal")
        if got != want:
            ok = False
            for (key, vals), n in list((want - got).items())[:10]:
                print(f"  record x{n} {key}: want {[str(x) for x in vals]}")
            for (key, vals), n in list((got - want).items())[:10]:
                print(f"  row x{n} {key}: has {[str(x) for x in vals]}")
    return ok


def main():
    argv = sys.argv[1:]
    if argv and argv[0] == "compare":
        ap = argparse.ArgumentParser(prog="hot_storage_model.py compare")
        ap.add_argument("--url", required=True)
        ap.add_argument("--actual", default="marketprism_hot")
        ap.add_argument("--expected", default="expected")
        ap.add_argument("--extras", action="store_true")
        ap.add_argument("--records")
        args = ap.parse_args(argv[1:])
        try:
            compare(args)
        except RuntimeError as e:
            sys.exit(f"compare failed: {e}")
    else:
        ap = argparse.ArgumentParser(prog="hot_storage_model.py")
        ap.add_argument("--url", required=True)
        ap.add_argument("--records", required=True)
        ap.add_argument("--db", default="expected")
        ap.add_argument("--like", default="marketprism_hot")
        args = ap.parse_args(argv)
        try:
            expected(args)
        except RuntimeError as e:
            sys.exit(f"model failed: {e}")


if __name__ == "__main__":
    main()
