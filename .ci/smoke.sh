#!/usr/bin/env bash
# Smoke test of the bundle: serve on loopback (no discovery), register, log in, whoami.
# Usage: smoke.sh /path/to/cloud.js   (run from a folder without the sources)
set -euo pipefail
bundle=$1
work=$(mktemp -d)
export CLOUD_CONFIG_DIR="$work/config"
out="$work/serve.log"
deno run -A --unstable-net "$bundle" serve --host 127.0.0.1 --port 0 --data "$work/data" \
  --no-discovery --bcrypt-cost 4 >"$out" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  grep -q '^listening on ' "$out" && break
  kill -0 "$pid" 2>/dev/null || { cat "$out"; exit 1; }
  sleep 0.1
done
line=$(grep '^listening on ' "$out")
echo "$line"
addr=$(awk '{print $3}' <<<"$line")
fp=$(awk '{print $5}' <<<"$line")
cloud() { deno run -A --unstable-net "$bundle" "$@"; }
export CLOUD_PASSWORD="smoke-test-Gr4vel-Otter"
cloud connect --host "$addr" --fingerprint "$fp" --email smoke@example.com register --name Smoke --phone "+1 555 0100"
cloud connect --host "$addr" --email smoke@example.com login
who=$(cloud connect --host "$addr" --email smoke@example.com whoami --json)
echo "$who"
grep -q '"email":"smoke@example.com"' <<<"$who"
set +e
CLOUD_PASSWORD=wrong-password-123 cloud connect --host "$addr" --email smoke@example.com login
rc=$?
set -e
[ "$rc" = 3 ] || { echo "wrong password gave exit $rc, expected 3"; exit 1; }
kill -TERM "$pid"
wait "$pid"
echo "smoke test ok"
