#!/bin/sh
# Instructions per op of each codec_bench case, under callgrind (load-independent).
# Usage: wire/examples/codec_bench_ir.sh [path/to/codec_bench]
set -eu
bin=${1:-target/release/examples/codec_bench}
iters=10000
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for case in $(grep -o '^case!(case_[a-z0-9_]*' "$(dirname "$0")/codec_bench.rs" | sed 's/^case!(//'); do
    valgrind --tool=callgrind --callgrind-out-file="$out/cg" --toggle-collect="*::$case" \
        "$bin" "$iters" once >/dev/null 2>"$out/log"
    ir=$(sed -n 's/^summary: //p' "$out/cg")
    printf '%-36s %8s instr/op\n' "${case#case_}" "$((ir / iters))"
done
