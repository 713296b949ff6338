#!/bin/sh
# A file that `cloister verify` is told to read and cannot (missing, a
# directory where a file belongs, an unusable cache directory) is a usage or
# I/O error: exit 2 with one line on stderr naming the option and the path,
# never a verdict on the evidence.
set -u
. "$(dirname "$0")/lib.sh"
S=$V/sev-snp/trustee
Q=$V/tdx/dcap-qvl/tdx_quote
AT=2025-06-01T00:00:00Z
MISSING=$TMP/no-such-file

# expect_io_error PATH CMD...: exit 2, one stderr line, naming PATH.
expect_io_error() {
	path=$1
	shift
	expect_exit 2 "$@"
	[ "$(wc -l <"$ERR")" -eq 1 ] || fail "one line on stderr: $*"
	grep -q -- "$path" "$ERR" || fail "stderr names $path: $*"
	[ ! -s "$OUT" ] || fail "no verdict on stdout: $*"
}

for opt in --vcek --certs --devtee-root --policy --reference-values --signing-key \
	--collateral --ak --ak-roots; do
	extra=
	[ "$opt" = --signing-key ] && extra=--ear
	# shellcheck disable=SC2086
	expect_io_error "$MISSING" "$CLOISTER" verify $extra "$opt" "$MISSING" --at "$AT" "$S/test-report.bin"
	[ "$opt" = --collateral ] && continue # a directory of PCS responses is fine
	# shellcheck disable=SC2086
	expect_io_error "$TMP" "$CLOISTER" verify $extra "$opt" "$TMP/" --at "$AT" "$S/test-report.bin"
done
# --collateral may be a directory; --collateral and --signing-key were checked above.
expect_io_error "$MISSING" "$CLOISTER" verify --reference-values "$S/../../tdx/trustee/tcbInfo.json" \
	--corim-key "$MISSING" "$S/test-report.bin"
expect_io_error "$MISSING" "$CLOISTER" verify "$MISSING"
expect_io_error "$TMP" "$CLOISTER" verify "$TMP"
# The cache directory may not exist yet (it is created), but must be a directory.
: >"$TMP/plain"
expect_io_error "$TMP/plain" "$CLOISTER" verify --cache-dir "$TMP/plain" --offline --at "$AT" "$S/test-report.bin"
expect_exit 0 "$CLOISTER" verify --cache-dir "$TMP/new-cache" --offline --vcek "$S/test-vcek.der" \
	--at "$AT" "$S/test-report.bin"
# A collateral directory that lacks a response is incomplete collateral: a rejection.
mkdir "$TMP/coll"
expect_exit 1 "$CLOISTER" verify --collateral "$TMP/coll" --at "$AT" "$Q"
expect_json status rejected
finish
