#!/bin/sh
# `cloister verify` fetching Intel collateral from a loopback PCS that serves
# the recorded dcap-qvl collateral, then verifying again from the cache alone.
set -eu
: "${CLOISTER:?set CLOISTER to the cloister binary}"
: "${CLOISTER_VECTORS:=../shared/vectors}"
V=$CLOISTER_VECTORS
command -v python3 >/dev/null 2>&1 || { echo "pcs_fetch: python3 missing, skipped" >&2; exit 0; }

tmp=$(mktemp -d)
pid=
cleanup() {
	rc=$?
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
	exit $rc
}
trap cleanup EXIT INT TERM

python3 "$(dirname "$0")/pcs_server.py" "$V/tdx/dcap-qvl/tdx_quote_collateral.json" \
	"$tmp/port" "$tmp/requests" &
pid=$!
i=0
while [ ! -s "$tmp/port" ]; do
	i=$((i + 1))
	[ $i -lt 200 ] || { echo "pcs_fetch: server did not start" >&2; exit 1; }
	sleep 0.05
done
url=http://127.0.0.1:$(cat "$tmp/port")

fail() { echo "pcs_fetch: $*" >&2; exit 1; }

# 1. fetched from the PCS, verified, UpToDate
out=$("$CLOISTER" verify --pcs-url "$url" --cache-dir "$tmp/cache" --at 2025-07-01T00:00:00Z \
	"$V/tdx/dcap-qvl/tdx_quote") || fail "verify with --pcs-url failed: $out"
echo "$out" | grep -q '"status": "verified"' || fail "not verified: $out"
echo "$out" | grep -q '"tcb_status": "UpToDate"' || fail "status not UpToDate: $out"
[ "$(wc -l <"$tmp/requests")" -eq 4 ] || fail "expected 4 PCS requests, got $(wc -l <"$tmp/requests")"
[ -f "$tmp/cache/intel/tdx-B0C06F000000-platform/tcbinfo.json" ] || fail "cache layout missing"

# 2. the cache is still valid at that time: no new requests
"$CLOISTER" verify --pcs-url "$url" --cache-dir "$tmp/cache" --at 2025-07-01T00:00:00Z \
	"$V/tdx/dcap-qvl/tdx_quote" >/dev/null || fail "verify from cache failed"
[ "$(wc -l <"$tmp/requests")" -eq 4 ] || fail "cache not used"

# 3. the cached directory is itself loadable collateral
"$CLOISTER" verify --collateral "$tmp/cache/intel/tdx-B0C06F000000-platform" \
	--at 2025-07-01T00:00:00Z "$V/tdx/dcap-qvl/tdx_quote" >/dev/null || fail "cached dir not loadable"

# 4. expired at a later time: rejected (exit 1), after trying the PCS again
if "$CLOISTER" verify --pcs-url "$url" --cache-dir "$tmp/cache" --at 2026-07-01T00:00:00Z \
	"$V/tdx/dcap-qvl/tdx_quote" >"$tmp/out" 2>&1; then
	fail "expired collateral accepted"
fi
grep -q '"status": "verified"' "$tmp/out" && fail "expired collateral verified"

# 5. a tampered cached TCB info is refused
sed 's/"UpToDate"/"OutOfDate"/' "$tmp/cache/intel/tdx-B0C06F000000-platform/tcbinfo.json" \
	>"$tmp/t" && cp "$tmp/t" "$tmp/cache/intel/tdx-B0C06F000000-platform/tcbinfo.json"
if "$CLOISTER" verify --collateral "$tmp/cache/intel/tdx-B0C06F000000-platform" \
	--at 2025-07-01T00:00:00Z "$V/tdx/dcap-qvl/tdx_quote" >/dev/null 2>&1; then
	fail "tampered cached collateral accepted"
fi
echo "pcs_fetch: ok" >&2
