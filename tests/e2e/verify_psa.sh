#!/bin/sh
# Arm PSA through the CLI: the TF-M tokens from veraison/psatoken under TF-M's
# test IAK (JWK and PEM), without it, under another key, and tampered.
set -u
. "$(dirname "$0")/lib.sh"
P=$V/psa/veraison-psatoken
IAK=$P/tfm-iak-pub.jwk.json
verify() { "$CLOISTER" verify --offline --cache-dir "$TMP/cache" "$@"; }
Z=$(printf '%0128d' 0)

for t in p1 p2; do
	expect_exit 0 verify --psa-iak "$IAK" "$P/tfm-$t-token.cbor"
	expect_json status verified
	expect_json format psa
	expect_json claims.platform psa
	expect_json claims.report_data "$Z"
	expect_json claims.implementation_id aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd
	expect_json claims.instance_id 01fa58755f658627ce5460f29b75296713248cae7ad9e2984b90280efcbcb50248
	expect_json claims.verification_service www.trustedfirmware.org
	expect_json claims.lifecycle.name secured
	expect_json claims.client_id 3002
	expect_json claims.sw_components.0.measurement_type SPE
	expect_json claims.sw_components.0.version 1.6.0
	expect_json claims.sw_components.1.measurement_type NSPE
	expect_json claims.sw_components.1.measurement_value 087d13c68f32aaafb8c4fc0a2253445432009765e216fb85c398c9580522c1bf
	expect_exit 0 verify --format psa --psa-iak "$IAK" --report-data "$Z" "$P/tfm-$t-token.cbor"
	expect_exit 1 verify --psa-iak "$IAK" --report-data 01 "$P/tfm-$t-token.cbor"
	expect_json status rejected
done
expect_exit 0 verify --psa-iak "$IAK" "$P/tfm-p1-token.cbor"
expect_json claims.profile PSA_IOT_PROFILE_1
expect_exit 0 verify --psa-iak "$IAK" "$P/tfm-p2-token.cbor"
expect_json claims.profile http://arm.com/psa/2.0.0

# The IAK as a PEM public key.
python3 - "$IAK" "$TMP/iak.der" <<'PY'
import base64, json, sys
k = json.load(open(sys.argv[1]))
d = lambda s: base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
spki = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200") + b"\x04" + d(k["x"]) + d(k["y"])
open(sys.argv[2], "wb").write(spki)
PY
openssl pkey -pubin -inform der -in "$TMP/iak.der" -out "$TMP/iak.pem" 2>/dev/null
expect_exit 0 verify --psa-iak "$TMP/iak.pem" "$P/tfm-p2-token.cbor"

# No IAK: rejected, saying why. Another key: rejected. A missing file: usage error.
expect_exit 1 verify "$P/tfm-p2-token.cbor"
expect_json status rejected
grep -q -- "--psa-iak" "$OUT" || fail "the rejection names --psa-iak: $(cat "$OUT")"
openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/other.key" 2>/dev/null
openssl pkey -in "$TMP/other.key" -pubout -out "$TMP/other.pem" 2>/dev/null
expect_exit 1 verify --psa-iak "$TMP/other.pem" "$P/tfm-p2-token.cbor"
expect_json status rejected
expect_exit 2 verify --psa-iak "$TMP/missing.jwk" "$P/tfm-p2-token.cbor"
grep -q -- "--psa-iak" "$ERR" || fail "a missing --psa-iak file is named: $(cat "$ERR")"

# Tampered and truncated tokens.
flip() { # flip FILE OFFSET OUT
	python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[int(sys.argv[2], 0)] ^= 1; open(sys.argv[3], "wb").write(b)' "$@"
}
for off in 0 20 0x100 0x1e0; do
	flip "$P/tfm-p2-token.cbor" "$off" "$TMP/bad.cbor"
	expect_exit 1 verify --format psa --psa-iak "$IAK" "$TMP/bad.cbor"
	expect_json status rejected
done
head -c 300 "$P/tfm-p1-token.cbor" >"$TMP/short.cbor"
expect_exit 1 verify --format psa --psa-iak "$IAK" "$TMP/short.cbor"
expect_json status rejected

finish
