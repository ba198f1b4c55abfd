#!/usr/bin/env bash
# `make demo`: the tap's main job against the built-in sandbox, piped into target-jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
TAP_BIN=.venv/bin
TARGET=.venvs/target-jsonl/bin/target-jsonl
OUT=demo-output
rm -rf "$OUT" && mkdir -p "$OUT/run-1" "$OUT/run-2"

# 24 daily bundles of 250 events. FullStory allows 2 downloads a minute; the sandbox is told
# to allow 4 a second, and the tap to pace itself to that, so the demo takes seconds.
"$TAP_BIN/tap-fullstory-sandbox" --bundles 24 --events-per-bundle 250 --rate 4/1 \
    > "$OUT/sandbox.log" 2>&1 &
SANDBOX_PID=$!
trap 'kill "$SANDBOX_PID" 2>/dev/null; wait "$SANDBOX_PID" 2>/dev/null || true' EXIT

URL=""
for _ in $(seq 100); do
  URL=$(sed -n 's/^tap-fullstory-sandbox listening on //p' "$OUT/sandbox.log")
  [ -n "$URL" ] && break
  kill -0 "$SANDBOX_PID" 2>/dev/null || { cat "$OUT/sandbox.log"; exit 1; }
  sleep 0.1
done
[ -n "$URL" ] || { echo "the sandbox did not start"; exit 1; }
echo "Sandbox: $URL (24 bundles, gzip and plain bodies, 4 downloads/s; Segment Export,"
echo "         users, segments, recording settings and their history for the same account)"

# One host plays both of FullStory's: export.fullstory.com and api.fullstory.com. end_date
# bounds the Segment Export windows of individuals to the sandbox's 24 days.
cat > "$OUT/config.json" <<JSON
{"api_key": "sandbox-key", "start_date": "2026-01-01T00:00:00Z",
 "end_date": "2026-01-25T00:00:00Z", "base_url": "$URL", "api_base_url": "$URL",
 "checkpoint_every": 1000, "max_downloads_per_minute": 240, "retry_backoff_seconds": 0.1}
JSON
echo "{\"destination_path\": \"$OUT/run-1\"}" > "$OUT/target-1.json"
echo "{\"destination_path\": \"$OUT/run-2\"}" > "$OUT/target-2.json"

echo
echo "== Catalog (tap-fullstory --config $OUT/config.json --discover), every stream selected"
"$TAP_BIN/tap-fullstory" --config "$OUT/config.json" --discover > "$OUT/discovered.json"
"$TAP_BIN/python" demo/summary.py catalog "$OUT/discovered.json" "$OUT/catalog.json"

echo
echo "== Sync 1: tap-fullstory --config … --catalog … | target-jsonl >> state.json"
"$TAP_BIN/tap-fullstory" --config "$OUT/config.json" --catalog "$OUT/catalog.json" \
  2> "$OUT/tap-1.log" \
  | "$TARGET" --config "$OUT/target-1.json" >> "$OUT/state.json" 2> "$OUT/target-1.log"
PACED=$(grep -c "Pacing downloads" "$OUT/tap-1.log" || true)
LIMITED=$(grep -c "rate limit (429)" "$OUT/tap-1.log" || true)
echo "   paced ${PACED} download(s) to the limit; ${LIMITED} 429 answer(s); log: $OUT/tap-1.log"
tail -n 1 "$OUT/state.json" > "$OUT/state-1.json"

echo
echo "== Sync 2 from the saved state (nothing new is expected)"
"$TAP_BIN/tap-fullstory" --config "$OUT/config.json" --catalog "$OUT/catalog.json" \
  --state "$OUT/state-1.json" 2> "$OUT/tap-2.log" \
  | "$TARGET" --config "$OUT/target-2.json" >> "$OUT/state.json" 2> "$OUT/target-2.log"
tail -n 1 "$OUT/state.json" > "$OUT/state-2.json"

echo
"$TAP_BIN/python" demo/summary.py report "$OUT"
