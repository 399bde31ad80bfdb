"""MarketPrism's MARKET_DATA stream for tuning/container/test.sh, over a plain NATS
connection (no client library).

  stream.py PORT create          makes the stream as MarketPrism's broker does (the six
                                 low-rate types per exchange, its limits); prints its config
  stream.py PORT check FILE      compares the stream now with the config in FILE: prints
                                 changed=[settings] removed=[subjects] added=[subjects] messages=N
"""
import json
import socket
import sys


def request(port, subject, body):
    """One JetStream API request; returns the decoded answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    f = s.makefile("rb")
    f.readline()  # INFO
    data = json.dumps(body).encode() if body is not None else b""
    s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\nSUB _INBOX.t 1\r\n'
              + b"PUB %s _INBOX.t %d\r\n" % (subject.encode(), len(data)) + data + b"\r\n")
    while True:
        line = f.readline()
        if not line or line.startswith(b"-ERR"):
            sys.exit(f"{subject}: {line!r}")
        if line.startswith(b"MSG"):
            return json.loads(f.read(int(line.split()[-1]) + 2)[:-2])


def main():
    port, op = int(sys.argv[1]), sys.argv[2]
    if op == "create":
        subjects = [f"{t}.{e}.>"
                    for t in ("funding_rate", "open_interest", "liquidation",
                              "volatility_index", "lsr_top_position", "lsr_all_account")
                    for e in ("binance", "okx", "deribit")]
        r = request(port, "$JS.API.STREAM.CREATE.MARKET_DATA", {
            "name": "MARKET_DATA", "subjects": subjects, "retention": "limits",
            "storage": "file", "discard": "old", "num_replicas": 1, "max_consumers": 50,
            "max_msgs": 5000000, "max_bytes": 2147483648, "max_age": 172800 * 10**9,
            "duplicate_window": 300 * 10**9})
        if "error" in r:
            sys.exit(f"create: {r['error']}")
        print(json.dumps(r["config"], sort_keys=True))
    else:
        with open(sys.argv[3]) as f:
            before = json.load(f)
        r = request(port, "$JS.API.STREAM.INFO.MARKET_DATA", None)
        if "error" in r:
            sys.exit(f"info: {r['error']}")
        after = r["config"]
        changed = sorted(k for k in set(before) | set(after)
                         if k != "subjects" and before.get(k) != after.get(k))
        removed = sorted(set(before["subjects"]) - set(after["subjects"]))
        added = sorted(set(after["subjects"]) - set(before["subjects"]))
        print(f"changed={changed} removed={removed} added={added} "
              f"messages={r['state']['messages']}")


main()
