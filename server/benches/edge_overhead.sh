#!/usr/bin/env bash
# What the rate limiter and intrusion detection cost the execute endpoint (issue 18's budget: at
# most 5% of throughput): execute_http.sh with both off, then with both doing their full work,
# back to back, each next to the bare handler.
#
#   server/benches/edge_overhead.sh [seconds per side, default 15] [profile dir, default debug]
set -euo pipefail
cd "$(dirname "$0")/../.."
secs="${1:-15}"
profile="${2:-debug}"
off="$(EDGE=off server/benches/execute_http.sh "$secs" "$profile")"
on="$(EDGE=on server/benches/execute_http.sh "$secs" "$profile")"
printf '%s\n\n%s\n\n' "$off" "$on"
rps() { awk '/^wasm-as-os execute/ {print $(NF-2)}' <<<"$1"; }
awk -v on="$(rps "$on")" -v off="$(rps "$off")" \
  'BEGIN { printf "edge on / edge off: %.3f (cost %.1f%% of throughput)\n", on / off, (1 - on / off) * 100 }'
