#!/bin/bash
# Loopback blob transfer between two `hedgerow serve` processes: SIZE_MB of random bytes
# attached on a hub, fetched by a farm (`hedgerow fetch`), timed from the request to the blob
# stored (verified chunk by chunk, re-hashed whole, fsynced); then both nodes' peak memory
# (VmHWM) and the farm's blob_transfer counters. The references (plain libp2p frames, raw
# TCP) are `hedgerow-bench blob-reference --mb SIZE_MB`, run right after.
#
#   SIZE_MB=500 bench/blob_transfer.sh [path/to/hedgerow]
set -euo pipefail
BIN=${1:-target/debug/hedgerow}
BENCH=$(dirname "$BIN")/hedgerow-bench
SIZE_MB=${SIZE_MB:-500}
D=$(mktemp -d /tmp/hedgerow-blob-bench-XXXXXX)
export HEDGEROW_LOG=warn
trap 'kill $HUB $FARM 2>/dev/null || true; rm -rf "$D"' EXIT
json_field() { python3 -c "import sys,json;print(json.load(sys.stdin)[\"$1\"])"; }
"$BIN" --home "$D/hub" init --name Hub >/dev/null
C=$("$BIN" --home "$D/hub" commons create Bench --json | json_field id)
ID=$("$BIN" --home "$D/hub" design new Big --json | json_field id)
head -c $((SIZE_MB * 1024 * 1024)) /dev/urandom >"$D/big.bin"
echo '{"files": {"max_file_bytes": 1073741824, "commons_quota_bytes": 4294967296}}' >"$D/hub/config.json"
"$BIN" --home "$D/hub" design attach "$ID" "$D/big.bin" --role cad >/dev/null
rm "$D/big.bin"
"$BIN" --home "$D/farm" init --name Farm >/dev/null
cp "$D/hub/config.json" "$D/farm/config.json"
"$BIN" --home "$D/farm" commons join "$C" >/dev/null
"$BIN" --home "$D/hub" serve --no-mdns --listen /ip4/127.0.0.1/tcp/0 2>"$D/hub.log" &
HUB=$!
until "$BIN" --home "$D/hub" status --json >"$D/hub.json" 2>/dev/null && grep -q tcp "$D/hub.json"; do sleep 0.2; done
ADDR=$(python3 -c "import json;s=json.load(open('$D/hub.json'));print(s['listen'][0]+'/p2p/'+s['peer_id'])")
"$BIN" --home "$D/farm" serve --no-mdns --listen /ip4/127.0.0.1/tcp/0 --peer "$ADDR" 2>"$D/farm.log" &
FARM=$!
until "$BIN" --home "$D/farm" design files "$ID" --json >/dev/null 2>&1; do sleep 0.2; done
START=$(date +%s.%N)
"$BIN" --home "$D/farm" fetch "$ID" --json >/dev/null
END=$(date +%s.%N)
python3 -c "print('blob transfer: %.1f MB/s (%d MiB in %.2f s)' % ($SIZE_MB * 1.048576 / ($END - $START), $SIZE_MB, $END - $START))"
grep VmHWM "/proc/$HUB/status" "/proc/$FARM/status"
"$BIN" --home "$D/farm" status --json | python3 -c 'import sys,json;print(json.load(sys.stdin)["blob_transfer"])'
if [ -x "$BENCH" ]; then "$BENCH" blob-reference --mb "$SIZE_MB"; fi
