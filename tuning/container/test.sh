#!/usr/bin/env bash
# Builds the runtime image with podman and runs it the way MarketPrism runs its
# collector: config/marketprism.toml with only addresses changed (the local mock
# exchange for every venue, a local nats-server whose MARKET_DATA stream is made as
# MarketPrism's broker makes it), then checks /health from outside, the image's own
# HEALTHCHECK, /metrics, JetStream acks, and that the stream kept every setting.
#
#   bash tuning/container/test.sh            (from the repo root, after cargo build --release)
#
# Needs: podman and runc (Debian: apt-get install podman runc), nats-server. No
# registry is needed: the runtime base is a root filesystem made here from this
# host's glibc and bash (the image's default base is debian:bookworm-slim), and the
# binary is target/release/marketprism (the Dockerfile's `prebuilt` stage).
# Everything listens on 127.0.0.1 (the container shares the host's network).
# Exit 0 and "container test: 1 passed, 0 failed" when it holds.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${MARKETPRISM_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/marketprism}
tag=localhost/marketprism-container-test
work=$(mktemp -d)
pids=()
cid=""

fail() {
    echo "container test: $*" >&2
    echo "container test: 0 passed, 1 failed"
    exit 1
}
cleanup() {
    [ -n "$cid" ] && podman --runtime runc rm -f "$cid" >/dev/null 2>&1 || true
    # The images this run made, build stages included.
    podman rmi -f $(comm -13 <(echo "$images_before") <(podman images -aq --no-trunc | sort)) \
        >/dev/null 2>&1 || true
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
images_before=$(podman images -aq --no-trunc 2>/dev/null | sort || true)
trap cleanup EXIT

command -v podman >/dev/null || fail "podman not installed (apt-get install podman runc)"
command -v runc >/dev/null || fail "runc not installed (crun refuses this host's hybrid cgroups)"
nats=$(command -v nats-server || echo /usr/sbin/nats-server)
[ -x "$nats" ] || fail "nats-server not installed"
[ -x "$bin" ] || fail "no binary at $bin (cargo build --release)"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 1. Runtime base: glibc, the dynamic loader and bash, nothing else.
base="$work/base"
mkdir -p "$base/tmp"
chmod 1777 "$base/tmp"
for f in $( (ldd "$bin"; ldd "$(command -v bash)") | grep -o '/[^ ]*' | sort -u) "$(command -v bash)"; do
    mkdir -p "$base$(dirname "$f")"
    cp -L "$f" "$base$f"
done
mkdir -p "$base/bin"
[ -e "$base/bin/bash" ] || cp -L "$(command -v bash)" "$base/bin/bash"
tar -C "$base" -c . | podman import - "$tag-base" >/dev/null

# 2. Image from the shipped Dockerfile, binary from this build.
ctx="$work/ctx"
mkdir -p "$ctx/config"
strip -o "$ctx/marketprism" "$bin" 2>/dev/null || cp "$bin" "$ctx/marketprism"
cp "$root/config/marketprism.toml" "$ctx/config/"
podman --runtime runc build --format docker -q -f "$root/tuning/container/Dockerfile" \
    --build-arg BINARY_FROM=prebuilt --build-arg RUNTIME_IMAGE="$tag-base" -t "$tag" "$ctx" \
    >/dev/null || fail "image build failed"
[ "$(podman image inspect -f '{{.Config.User}}' "$tag")" = "10001:10001" ] || fail "image runs as root"

# 3. NATS prepared as MarketPrism's broker prepares it (its MARKET_DATA stream: the six
# low-rate types per exchange, its limits), and the mock exchange, on loopback.
nport=$(free_port)
mport=$(free_port)
xport=$(free_port)
"$nats" -a 127.0.0.1 -p "$nport" -js -sd "$work/js" >"$work/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$nport") 2>/dev/null && break; sleep 0.1; done
python3 "$root/tuning/container/stream.py" "$nport" create >"$work/stream.json" \
    || fail "cannot create MARKET_DATA"
"$bin" mock-exchange --listen "127.0.0.1:$xport" --tls-dir "$work/tls" --rate 20 --event-rate 5 \
    >"$work/mock.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$work/tls/ca.pem" ] && break; sleep 0.1; done
[ -s "$work/tls/ca.pem" ] || fail "mock exchange did not start: $(cat "$work/mock.log")"
cp "$work/tls/ca.pem" "$work/ca.pem"
chmod 644 "$work/ca.pem"

# 4. config/marketprism.toml with addresses changed, and nothing else.
python3 - "$root/config/marketprism.toml" "$work/marketprism.toml" "$nport" "$mport" "$xport" <<'EOF'
import re, sys
src, dst, nport, mport, xport = sys.argv[1:]
t = open(src).read()
t = t.replace('"nats://127.0.0.1:4222"', f'"nats://127.0.0.1:{nport}"')
t = t.replace('listen = "0.0.0.0:9092"', f'listen = "127.0.0.1:{mport}"')
t = t.replace('health_listen = "0.0.0.0:8087"', 'health_listen = "127.0.0.1:8087"')
paths = {"binance_spot": "", "binance_derivatives": "", "okx_spot": "/ws/v5/public",
         "okx_derivatives": "/ws/v5/public", "deribit_derivatives": "/ws/api/v2"}
for venue, path in paths.items():
    head = f"[exchanges.{venue}]\n"
    assert head in t, venue
    t = t.replace(head, head + f'ws_url = "wss://localhost:{xport}{path}"\n'
                  f'rest_url = "https://localhost:{xport}"\nca_file = "/etc/marketprism/ca.pem"\n')
open(dst, "w").write(t)
EOF
chmod 644 "$work/marketprism.toml"
if ! grep -q '^health_listen' "$work/marketprism.toml"; then hport=$mport; else hport=8087; fi
if [ "$hport" = 8087 ] && (exec 3<>/dev/tcp/127.0.0.1/8087) 2>/dev/null; then
    fail "127.0.0.1:8087 is taken (the image's HEALTHCHECK probes it)"
fi

# 5. Run it as MarketPrism's compose does: config mounted, io_uring allowed.
cid=$(podman --runtime runc run -d --network host \
    --security-opt seccomp=unconfined \
    --ulimit nofile=20000:20000 --ulimit nproc=4096:4096 --ulimit memlock=8388608:8388608 \
    -v "$work/marketprism.toml:/etc/marketprism/marketprism.toml:ro" \
    -v "$work/ca.pem:/etc/marketprism/ca.pem:ro" \
    "$tag") || fail "container did not start"

health=""
for _ in $(seq 300); do
    health=$(curl -s "http://127.0.0.1:$hport/health" || true)
    case "$health" in *'"status": "healthy"'*) break ;; esac
    [ "$(podman inspect -f '{{.State.Running}}' "$cid")" = true ] || break
    sleep 0.1
done
case "$health" in *'"status": "healthy"'*) ;; *) fail "no healthy /health on :$hport: '$health'; logs: $(podman logs "$cid" 2>&1 | tail -20)" ;; esac
[ "$(podman exec "$cid" bash -c 'echo $UID')" = 10001 ] || fail "collector not running as uid 10001"
# The image's HEALTHCHECK command, run in the container against the health port,
# then against a closed port (it must fail there).
probe=$(podman image inspect -f '{{json .Config.Healthcheck.Test}}' "$tag" \
    | python3 -c 'import json,sys; t=json.load(sys.stdin); assert t[:3]==["CMD","bash","-c"], t; print(t[3])')
podman exec "$cid" bash -c "${probe//\/8087/\/$hport}" || fail "HEALTHCHECK command fails on :$hport"
closed=$(free_port)
if podman exec "$cid" bash -c "${probe//\/8087/\/$closed}" 2>/dev/null; then
    fail "HEALTHCHECK command passes on a closed port"
fi
if [ "$hport" = 8087 ]; then
    podman --runtime runc healthcheck run "$cid" >/dev/null 2>&1 || fail "the image's HEALTHCHECK failed"
fi
metrics=$(curl -s "http://127.0.0.1:$mport/metrics")
grep -q '^marketprism_messages_parsed_total' <<<"$metrics" || fail "no metrics on :$mport"

# Records reach NATS: the low-rate types through JetStream, acked.
acked=0
for _ in $(seq 200); do
    acked=$(curl -s "http://127.0.0.1:$mport/metrics" \
        | awk '/^marketprism_nats_acked_total/ {s += $NF} END {print s + 0}')
    [ "${acked%.*}" -gt 0 ] && break
    sleep 0.1
done
[ "${acked%.*}" -gt 0 ] || fail "no JetStream ack in 20 s; logs: $(podman logs "$cid" 2>&1 | tail -20)"

podman --runtime runc stop -t 20 "$cid" >/dev/null
# MarketPrism's stream kept every setting; the six low-rate types landed in it.
stream=$(python3 "$root/tuning/container/stream.py" "$nport" check "$work/stream.json") \
    || fail "no stream info"
case "$stream" in "changed=[] removed=[] "*) ;; *) fail "MARKET_DATA settings changed: $stream" ;; esac
case "$stream" in *" messages=0") fail "MARKET_DATA holds no message: $stream" ;; esac
code=$(podman inspect -f '{{.State.ExitCode}}' "$cid")
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
echo "container test: image $(podman image inspect -f '{{.Size}}' "$tag") bytes, health "healthy" on :$hport, $acked acked, MARKET_DATA $stream"
echo "container test: 1 passed, 0 failed"
