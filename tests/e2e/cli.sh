#!/bin/sh
# The CLI contract: help everywhere, exit codes 0/1/2, JSON on stdout.
set -u
. "$(dirname "$0")/lib.sh"

expect_exit 0 "$CLOISTER" --help
grep -q "usage: cloister" "$OUT" || fail "--help prints usage"
expect_exit 0 "$CLOISTER" help
expect_exit 0 "$CLOISTER" version
grep -q "^cloister [0-9]" "$OUT" || fail "version prints the version"
expect_exit 0 "$CLOISTER" version --help
expect_exit 2 "$CLOISTER"
expect_exit 2 "$CLOISTER" no-such-command
grep -q "unknown command" "$ERR" || fail "unknown command is named"
expect_exit 2 "$CLOISTER" --log-level loud version
expect_exit 0 "$CLOISTER" --log-level debug version

expect_exit 0 "$CLOISTER" verify --help
grep -q -- "--report-data" "$OUT" || fail "verify --help lists its options"
expect_exit 2 "$CLOISTER" verify
expect_exit 2 "$CLOISTER" verify --bogus x
expect_exit 2 "$CLOISTER" verify "$TMP/missing.bin"
grep -q "missing.bin" "$ERR" || fail "I/O error names the file"
expect_exit 2 "$CLOISTER" verify --format quantum x
expect_exit 2 "$CLOISTER" verify --at yesterday x
expect_exit 2 "$CLOISTER" verify --report-data xyz x

# Garbage is rejected (exit 1) with a JSON verdict, not a usage error.
printf 'not evidence at all' >"$TMP/junk"
expect_exit 1 "$CLOISTER" verify "$TMP/junk"
json_get status <"$OUT" | grep -qx rejected || fail "garbage gives status rejected"
: >"$TMP/empty"
expect_exit 1 "$CLOISTER" verify "$TMP/empty"
expect_exit 1 "$CLOISTER" verify --format snp "$TMP/junk"
expect_exit 1 "$CLOISTER" verify --format tdx "$TMP/junk"
expect_exit 1 "$CLOISTER" verify --format sgx "$TMP/junk"

finish
