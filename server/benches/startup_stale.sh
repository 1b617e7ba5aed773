#!/usr/bin/env bash
# Start-up time with stale modules: time from launching `serve` to the first 200 from /readyz, with
# 0 and with N modules whose analysis predates the current rules (default 1000). Start-up does no
# re-analysis (it runs in the background behind the listener), so both should take the same time.
#
#   server/benches/startup_stale.sh [modules, default 1000] [rounds, default 5] [profile, default debug]
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wasm-as-os/target}"
count="${1:-1000}"
rounds="${2:-5}"
profile="${3:-debug}"
# The same package selection as .ci/test, so the dependencies built there are reused.
if [ "$profile" = debug ]; then cargo test -q -p platform -p migration -p analysis -p sandbox -p wasm-as-os --no-run 2>/dev/null; fi
bin="$CARGO_TARGET_DIR/$profile/wasm-as-os"
module="end2end/fixtures/add.wasm"

work="$(mktemp -d)"
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Two rule sets: the repository's, and one with a rule turned off (another policy hash).
cp -r config "$work/strict"
cp -r config "$work/lenient"
sed -i '0,/enabled: true/{s/enabled: true/enabled: false/}' "$work/lenient/static_analysis.yml"
# The bench's administrator signs in with a password alone (docs/mfa.md).
sed -i 's/multi_factor_roles: \["admin"\]/multi_factor_roles: []/' "$work/lenient/soc2.yml"
# The sed above turns off static analysis's first "enabled": check the hash really differs.
cmp -s config/static_analysis.yml "$work/lenient/static_analysis.yml" && { echo "error: rules unchanged" >&2; exit 1; }

start_server() { # config dir; sets $pid and $base
  RUST_LOG=warn "$bin" --config-dir "$1" --data-dir "$work/data" serve --listen 127.0.0.1:0 \
    >"$work/server.out" 2>"$work/server.log" &
  pid=$!
  for _ in $(seq 1 600); do
    local a; a="$(sed -n 's/^listening on //p' "$work/server.out" | head -n1)"
    [ -n "$a" ] && { base="$a"; return; }
    sleep 0.01
  done
  echo "error: the server did not start" >&2; cat "$work/server.log" >&2; exit 1
}
stop_server() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""; }

"$bin" --config-dir "$work/lenient" --data-dir "$work/data" admin create-user --username bench \
  --password 'SecurePassword123!' --email bench@example.com --roles admin >/dev/null
start_server "$work/lenient"
token="$(curl -sf "$base/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"username":"bench","password":"SecurePassword123!"}' | jq -r .access_token)"
for i in $(seq 1 "$count"); do
  curl -sf -o /dev/null "$base/api/v1/modules?name=add-$i" -H "authorization: Bearer $token" \
    -H 'content-type: application/wasm' --data-binary "@$module"
done
stop_server

to_ready() { # config dir → milliseconds from launch to the first 200 from /readyz
  local t0 t1
  t0=$(date +%s%N)
  start_server "$1"
  until curl -sf -o /dev/null "$base/readyz"; do sleep 0.005; done
  t1=$(date +%s%N)
  stop_server
  echo $(( (t1 - t0) / 1000000 ))
}

echo "modules: $count; rounds: $rounds; profile: $profile"
for r in $(seq 1 "$rounds"); do
  to_ready "$work/lenient" >"$work/ms"; current="$(cat "$work/ms")"
  # A fresh copy of the data each round, so every round starts with all modules stale.
  rm -rf "$work/data-copy" && cp -a "$work/data" "$work/data-copy"
  to_ready "$work/strict" >"$work/ms"; stale="$(cat "$work/ms")"
  pending="$("$bin" --config-dir "$work/strict" --data-dir "$work/data" admin status | sed -n 's/^re-analysis *//p')"
  rm -rf "$work/data" && mv "$work/data-copy" "$work/data"
  echo "round $r: 0 stale ${current} ms; $count stale ${stale} ms (after stop: $pending)"
done
