#!/bin/sh
# Fuzz every target: replay the kept regression inputs, then fuzz from a seed
# corpus built from the real vectors.
#   fuzz.sh smoke|long FUZZER...
set -eu
mode=$1
shift
: "${CLOISTER_VECTORS:=../shared/vectors}"
if [ "$mode" = smoke ]; then secs=${FUZZ_SECONDS:-10}; else secs=${FUZZ_SECONDS:-300}; fi
for f in "$@"; do
	name=$(basename "$f")
	target=${name#fuzz_}
	corpus=build/fuzz-corpus/$target
	mkdir -p "$corpus"
	# seeds: tests/fuzz/seeds/<target> lists vector paths relative to CLOISTER_VECTORS
	if [ -f "tests/fuzz/seeds/$target" ]; then
		while read -r rel; do
			[ -n "$rel" ] || continue
			cp -f "$CLOISTER_VECTORS/$rel" "$corpus/seed-$(echo "$rel" | tr '/' '_')"
		done <"tests/fuzz/seeds/$target"
	fi
	# hand-written starting inputs that are not evidence (protocol messages...)
	if [ -d "tests/fuzz/corpus/$target" ]; then
		cp -f tests/fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
	fi
	reg=tests/fuzz/regressions/$target
	if [ -d "$reg" ] && [ -n "$(ls -A "$reg" 2>/dev/null)" ]; then
		echo "== $name: replaying $(ls "$reg" | wc -l) regression inputs" >&2
		"$f" -runs=0 "$reg"/* >/dev/null 2>&1 || { echo "FAIL: $name regression" >&2; "$f" -runs=0 "$reg"/*; exit 1; }
	fi
	echo "== $name: fuzzing ${secs}s" >&2
	mkdir -p build/fuzz-artifacts
	if ! "$f" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
		-artifact_prefix=build/fuzz-artifacts/"$target"- "$corpus" >build/fuzz-artifacts/"$target".log 2>&1; then
		tail -50 build/fuzz-artifacts/"$target".log >&2
		echo "FAIL: $name found a crash; keep it in $reg" >&2
		exit 1
	fi
	grep -E '^(#[0-9]+ *DONE|Done)' build/fuzz-artifacts/"$target".log | tail -1 >&2 || true
done
