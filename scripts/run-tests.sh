#!/bin/sh
# Run unit test binaries, or the end-to-end scripts against a cloister binary.
#   run-tests.sh unit BIN...
#   run-tests.sh e2e CLOISTER
set -u
kind=$1
shift
fail=0
count=0
case $kind in
unit)
	for t in "$@"; do
		count=$((count + 1))
		if ! "$t"; then
			echo "FAIL: $t" >&2
			fail=$((fail + 1))
		fi
	done
	;;
e2e)
	CLOISTER=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
	export CLOISTER
	for t in tests/e2e/*.sh; do
		[ -e "$t" ] || continue
		[ "$(basename "$t")" = lib.sh ] && continue
		count=$((count + 1))
		echo "== $t" >&2
		if ! sh "$t"; then
			echo "FAIL: $t" >&2
			fail=$((fail + 1))
		fi
	done
	;;
*)
	echo "usage: $0 unit|e2e ..." >&2
	exit 2
	;;
esac
echo "$kind: $count run, $fail failed" >&2
[ "$fail" -eq 0 ]
