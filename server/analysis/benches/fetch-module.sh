#!/usr/bin/env bash
# Fetch the benchmark's ~14 MB real module (esbuild.wasm, Go, MIT) from npm into a cache dir
# and print its path. Not needed by the tests.
set -euo pipefail
version="${ESBUILD_WASM_VERSION:-0.28.2}"
dir="${XDG_CACHE_HOME:-$HOME/.cache}/wasm-as-os/bench"
out="$dir/esbuild-$version.wasm"
if [[ ! -s "$out" ]]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack "esbuild-wasm@$version" --silent >/dev/null && tar xzf esbuild-wasm-*.tgz)
  mkdir -p "$dir"
  cp "$tmp/package/esbuild.wasm" "$out"
fi
echo "$out"
