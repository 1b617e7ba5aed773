#!/usr/bin/env bash
# HTTP execute throughput and latency: `POST /api/v1/modules/{id}/execute` on the real server (bearer
# auth, permission and ownership checks, sandbox limits, run history, audit) against a bare axum
# handler making the same wasmtime call (examples/bare_execute.rs), in one run, with wrk at 64
# concurrent connections. Prints requests/s, p50 and p99 for both and the ratio.
#
#   server/benches/execute_http.sh [seconds per side, default 15] [profile dir, default debug]
#
# EDGE=on measures with the rate limiter and intrusion detection doing their full work for every
# request (loopback off the whitelist, budgets and the run-rate rule raised so nothing is refused);
# EDGE=off turns both off in rate_limit.yml and ids.yml. Unset, the repository's config is used
# (loopback is whitelisted there). server/benches/edge_overhead.sh runs both.
#
# Builds both binaries first (`cargo build -p wasm-as-os --bin wasm-as-os --example bare_execute`; add
# `--release` yourself and pass `release` to measure optimised builds).
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/wasm-as-os/target}"
secs="${1:-15}"
profile="${2:-debug}"
command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install wrk)" >&2; exit 1; }
if [ "$profile" = debug ]; then cargo build -q -p wasm-as-os --bin wasm-as-os --example bare_execute; fi
bin="$CARGO_TARGET_DIR/$profile/wasm-as-os"
bare="$CARGO_TARGET_DIR/$profile/examples/bare_execute"
module="end2end/fixtures/add.wasm"

work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

wait_addr() { # file → base URL from its "listening on" line
  for _ in $(seq 1 300); do
    local a; a="$(sed -n 's/^listening on //p' "$1" | head -n1)"
    [ -n "$a" ] && { echo "$a"; return; }
    sleep 0.1
  done
  echo "error: no address in $1" >&2; cat "$work"/*.log >&2; exit 1
}

# The repository's config, with room for every connection to run at once: the per-user and
# per-module run slots (16 and 32 by default) would answer most of 64 concurrent requests from one
# user with 429 sandbox.busy, which measures the quota and not the path.
cp -r config "$work/config"
sed -i 's/^  resource_limits:$/  resource_limits:\n    max_concurrent_runs_per_user: 128\n    max_concurrent_runs_per_module: 128/' "$work/config/sandbox.yml"
grep -q 'max_concurrent_runs_per_user: 128' "$work/config/sandbox.yml"
# The bench's administrator signs in with a password alone (docs/mfa.md).
sed -i 's/multi_factor_roles: \["admin"\]/multi_factor_roles: []/' "$work/config/soc2.yml"
case "${EDGE:-}" in
  on)
    sed -i '/# local set-up: this machine/d; /"::1\/128"/d' "$work/config/rate_limit.yml"
    sed -i 's/requests_per_minute: [0-9]*/requests_per_minute: 1000000000/g; s/burst: [0-9]*/burst: 1000000/g' "$work/config/rate_limit.yml"
    sed -i 's|execution_rate > 1000/min|execution_rate > 1000000000/min|' "$work/config/ids.yml"
    ! grep -q '127.0.0.0/8' "$work/config/rate_limit.yml"
    grep -q 'execution_rate > 1000000000/min' "$work/config/ids.yml" ;;
  off)
    sed -i '0,/enabled: true/s//enabled: false/' "$work/config/rate_limit.yml"
    sed -i '0,/enabled: true/s//enabled: false/' "$work/config/ids.yml"
    grep -q 'enabled: false' "$work/config/rate_limit.yml"
    grep -q 'enabled: false' "$work/config/ids.yml" ;;
  "") ;;
  *) echo "error: EDGE is on, off or unset" >&2; exit 1 ;;
esac
export WASM_AS_OS_CONFIG_DIR="$work/config"
"$bin" --data-dir "$work/data" admin create-user --username bench --password 'SecurePassword123!' \
  --email bench@example.com --roles admin >/dev/null
RUST_LOG=warn "$bin" --data-dir "$work/data" serve --listen 127.0.0.1:0 >"$work/server.out" 2>"$work/server.log" &
pids+=($!)
server="$(wait_addr "$work/server.out")"
token="$(curl -sf "$server/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"username":"bench","password":"SecurePassword123!"}' | jq -r .access_token)"
id="$(curl -sf "$server/api/v1/modules?name=add" -H "authorization: Bearer $token" \
  -H 'content-type: application/wasm' --data-binary "@$module" | jq -r .id)"
"$bare" "$module" >"$work/bare.out" 2>"$work/bare.log" &
pids+=($!)
bare_url="$(wait_addr "$work/bare.out")"

body='{"function":"add","args":[{"type":"i32","value":2},{"type":"i32","value":3}]}'
cat >"$work/post.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["content-type"] = "application/json"
wrk.headers["authorization"] = "Bearer $token"
LUA
# Both answer correctly before measuring.
curl -sf "$server/api/v1/modules/$id/execute" -H "authorization: Bearer $token" -H 'content-type: application/json' -d "$body" | jq -e '.results[0].value == 5' >/dev/null
curl -sf "$bare_url/execute" -H 'content-type: application/json' -d "$body" | jq -e '.results[0].value == 5' >/dev/null

measure() { # url → "rps p50 p99"
  wrk -t2 -c64 -d"${secs}s" --latency -s "$work/post.lua" "$1" >"$work/wrk.txt"
  if grep -q "Non-2xx" "$work/wrk.txt"; then cat "$work/wrk.txt" >&2; echo "error: non-2xx answers" >&2; exit 1; fi
  local rps p50 p99
  rps="$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.txt")"
  p50="$(awk '$1 == "50%" {print $2}' "$work/wrk.txt")"
  p99="$(awk '$1 == "99%" {print $2}' "$work/wrk.txt")"
  echo "$rps $p50 $p99"
}
read -r s_rps s_p50 s_p99 < <(measure "$server/api/v1/modules/$id/execute")
read -r b_rps b_p50 b_p99 < <(measure "$bare_url/execute")
runs="$(curl -sf "$server/api/v1/modules/$id/runs?limit=1" -H "authorization: Bearer $token" | jq length)"
[ "$runs" = 1 ] || { echo "error: the run history is empty" >&2; exit 1; }
printf '%-34s %12s %10s %10s\n' "64 connections, ${secs}s, $profile" "requests/s" "p50" "p99"
printf '%-34s %12s %10s %10s\n' "wasm-as-os execute (edge ${EDGE:-as configured})" "$s_rps" "$s_p50" "$s_p99"
printf '%-34s %12s %10s %10s\n' "bare axum + wasmtime" "$b_rps" "$b_p50" "$b_p99"
awk -v s="$s_rps" -v b="$b_rps" 'BEGIN { printf "throughput ratio (wasm-as-os / bare): %.2fx\n", s / b }'
