#!/bin/sh
# AWS Nitro attestation documents through the CLI: the real documents from
# blocky/nitrite as base64 text and as raw CBOR, and what must be refused.
set -u
. "$(dirname "$0")/lib.sh"
N=$V/nitro/blocky-nitrite
AT=2024-09-07T14:37:39.545Z
DAT=2024-09-07T14:38:06.508Z
PCR0=e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a

expect_exit 0 "$CLOISTER" verify --at "$AT" "$N/nitro_attestation.b64"
expect_json status verified
expect_json format nitro
expect_json claims.platform nitro
expect_json claims.measurement "$PCR0"
expect_json claims.pcrs.0 "$PCR0"
expect_json claims.debug false
expect_json claims.timestamp "$AT"
expect_json claims.module_id i-0a22e5c5f24d22174-enc0191cceb4289903f
expect_json claims.trailing_bytes 0

# Raw CBOR, forced or detected.
base64 -d "$N/nitro_attestation.b64" >"$TMP/doc.cbor" || fail "base64 -d"
expect_exit 0 "$CLOISTER" verify --at "$AT" "$TMP/doc.cbor"
expect_json format nitro
expect_exit 0 "$CLOISTER" verify --format nitro --at "$AT" "$TMP/doc.cbor"

# The nonce binding: the document's own nonce is 1024 bytes, more than --nonce
# takes, so any --nonce is a mismatch; so is any 64-byte --report-data.
expect_exit 1 "$CLOISTER" verify --nonce 0101 --at "$AT" "$N/nitro_attestation.b64"
grep -q nonce "$OUT" || fail "nonce mismatch names the nonce"
expect_exit 1 "$CLOISTER" verify --report-data 01 --at "$AT" "$N/nitro_attestation.b64"

# Outside the chain's validity.
expect_exit 1 "$CLOISTER" verify --at 2030-01-01T00:00:00Z "$N/nitro_attestation.b64"
expect_json status rejected

# Debug documents only with --allow-debug.
expect_exit 1 "$CLOISTER" verify --at "$DAT" "$N/nitro_attestation_debug.b64"
grep -q "debug mode" "$OUT" || fail "debug rejection says debug mode"
expect_json claims.debug true
expect_exit 0 "$CLOISTER" verify --allow-debug --at "$DAT" "$N/nitro_attestation_debug.b64"
expect_json claims.debug true

# Not AWS's chain.
expect_exit 1 "$CLOISTER" verify --at 2024-04-17T18:51:46Z "$N/selfsigned_attestation.b64"
expect_json status rejected

# A flipped signature byte; a truncated document.
python3 - "$TMP/doc.cbor" "$TMP/flip.cbor" "$TMP/short.cbor" <<'PY'
import sys
d = bytearray(open(sys.argv[1], "rb").read())
f = bytearray(d); f[-5] ^= 1
open(sys.argv[2], "wb").write(f)
open(sys.argv[3], "wb").write(d[: len(d) // 2])
PY
expect_exit 1 "$CLOISTER" verify --at "$AT" "$TMP/flip.cbor"
expect_exit 1 "$CLOISTER" verify --format nitro --at "$AT" "$TMP/short.cbor"

# Usage errors.
expect_exit 2 "$CLOISTER" verify --at "$AT" "$N/does-not-exist.b64"
expect_exit 2 "$CLOISTER" verify --format nitrox "$N/nitro_attestation.b64"

finish
