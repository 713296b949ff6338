#!/bin/sh
# DCAP quotes through `cloister verify`: real SGX and TDX quotes with their
# collateral at the times SOURCES.md gives, without collateral, and tampered.
set -u
. "$(dirname "$0")/lib.sh"

AT=2025-07-01T00:00:00Z

# TDX v4 + collateral: UpToDate, no advisories.
expect_exit 0 "$CLOISTER" verify --offline --at $AT \
	--collateral "$V/tdx/dcap-qvl/tdx_quote_collateral.json" "$V/tdx/dcap-qvl/tdx_quote"
expect_json status verified
expect_json format tdx
expect_json claims.platform tdx
expect_json claims.tcb_status UpToDate
expect_json claims.advisory_ids '[]'
expect_json claims.quote_version 4

# The same collateral a year later has expired.
expect_exit 1 "$CLOISTER" verify --offline --at 2026-07-01T00:00:00Z \
	--collateral "$V/tdx/dcap-qvl/tdx_quote_collateral.json" "$V/tdx/dcap-qvl/tdx_quote"
expect_json status rejected

# TDX v5 (TDX 1.5 body) whose platform matches no TCB level.
expect_exit 1 "$CLOISTER" verify --offline --at 2026-03-01T00:00:00Z \
	--collateral "$V/tdx/dcap-qvl/tdx_quote_outdated_collateral.json" \
	"$V/tdx/dcap-qvl/tdx_quote_outdated"
expect_json status rejected
expect_json claims.quote_version 5
grep -qi 'tcb level' "$OUT" || fail "outdated quote: reason does not name the TCB level"

# SGX v3 + collateral.
expect_exit 0 "$CLOISTER" verify --offline --at $AT \
	--collateral "$V/sgx/dcap-qvl/sgx_quote_collateral.json" "$V/sgx/dcap-qvl/sgx_quote"
expect_json format sgx
expect_json claims.tcb_status ConfigurationAndSWHardeningNeeded
expect_json claims.advisory_ids '["INTEL-SA-00289", "INTEL-SA-00615"]'
expect_json claims.report_data \
	48656c6c6f2c20776f726c6421$(printf '%0102d' 0)
expect_exit 0 "$CLOISTER" verify --offline --at $AT --report-data 48656c6c6f2c20776f726c6421 \
	"$V/sgx/dcap-qvl/sgx_quote"
expect_exit 1 "$CLOISTER" verify --offline --at $AT --report-data 48656c6c6f2c20776f726c6422 \
	"$V/sgx/dcap-qvl/sgx_quote"

# Without collateral: signatures and PCK chain only, status Unknown.
for q in tdx/dcap-qvl/tdx_quote tdx/trustee/tdx_quote_5.dat tdx/trustee/tdx_quote_6.dat \
	sgx/dcap-qvl/sgx_quote; do
	expect_exit 0 "$CLOISTER" verify --offline --at $AT "$V/$q"
	expect_json claims.tcb_status Unknown
done
# Debug TD / enclave: refused unless allowed.
for q in tdx/trustee/tdx_quote_4.dat sgx/trustee/occlum_quote.dat; do
	expect_exit 1 "$CLOISTER" verify --offline --at $AT "$V/$q"
	expect_json claims.debug true
	expect_exit 0 "$CLOISTER" verify --offline --at $AT --allow-debug "$V/$q"
done
expect_exit 0 "$CLOISTER" verify --offline --at $AT --format tdx "$V/tdx/trustee/tdx_quote_4.dat" --allow-debug
expect_json claims.quote_version 4

# Tampered copies: a body byte, the quote signature, the QE report, a certificate, a truncation.
python3 - "$V/tdx/dcap-qvl/tdx_quote" "$TMP" <<'PY'
import sys
d = open(sys.argv[1], 'rb').read()
def put(name, b):
    open(sys.argv[2] + '/' + name, 'wb').write(b)
def flip(i):
    b = bytearray(d); b[i] ^= 1; return bytes(b)
pem = d.find(b'-----BEGIN CERTIFICATE-----')
put('body', flip(48 + 200))
put('sig', flip(48 + 584 + 4 + 10))
put('qe', flip(48 + 584 + 4 + 128 + 6 + 100))
put('cert', flip(pem + 300))
put('trunc', d[:3000])
put('trailing', d + b'\x01' * 100)
put('oversized', d + b'\x01' * 65537)
put('trailing-sig', flip(48 + 584 + 4 + 10) + b'\x01' * 100)
PY
for t in body sig qe cert trunc oversized trailing-sig; do
	expect_exit 1 "$CLOISTER" verify --offline --at $AT "$TMP/$t"
	expect_json status rejected
done
# Bytes after the quote (a fixed-size buffer) are unsigned: accepted whatever they are, counted.
expect_exit 0 "$CLOISTER" verify --offline --at $AT "$V/tdx/dcap-qvl/tdx_quote"
base=$(json_get claims.trailing_bytes <"$OUT")
expect_exit 0 "$CLOISTER" verify --offline --at $AT "$TMP/trailing"
expect_json claims.trailing_bytes $((base + 100))
finish
