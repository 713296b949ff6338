#!/bin/sh
# CoRIM reference values end to end: CoRIMs written by python3-cbor2 and
# signed with the openssl command (make_corim.py), appraised by
# `cloister verify` against the real trustee SNP report.
set -u
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
MK="$(dirname "$0")/make_corim.py"
AT=2025-06-01T00:00:00Z
SNP="$V/sev-snp/trustee/test-report.bin"
VCEK="$V/sev-snp/trustee/test-vcek.der"
MEAS=a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c
OTHER=b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01
T2025=1748736000 # 2025-06-01T00:00:00Z

# verify EXIT ARGS...: cloister verify of the trustee report's options plus ARGS.
verify() {
	want=$1
	shift
	expect_exit "$want" "$CLOISTER" verify --vcek "$VCEK" --at "$AT" "$@"
}

openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/signer.pem" 2>/dev/null || fail "openssl key"
openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/other.pem" 2>/dev/null || fail "openssl key"
openssl pkey -in "$TMP/signer.pem" -pubout -out "$TMP/signer.pub" 2>/dev/null || fail "openssl pubkey"
openssl pkey -in "$TMP/other.pem" -pubout -out "$TMP/other.pub" 2>/dev/null || fail "openssl pubkey"
"$PY" "$MK" unsigned "$TMP/unsigned.corim" --digest "$MEAS" --min-svn 4 || fail "make_corim unsigned"
"$PY" "$MK" unsigned "$TMP/other.corim" --digest "$OTHER" || fail "make_corim other"
"$PY" "$MK" unsigned "$TMP/svn5.corim" --digest "$MEAS" --min-svn 5 || fail "make_corim svn5"
"$PY" "$MK" unsigned "$TMP/expired.corim" --digest "$MEAS" \
	--not-before $((T2025 - 86400 * 365)) --not-after $((T2025 - 86400)) || fail "make_corim expired"
"$PY" "$MK" unsigned "$TMP/valid.corim" --digest "$MEAS" \
	--not-before $((T2025 - 86400)) --not-after $((T2025 + 86400)) || fail "make_corim valid"
"$PY" "$MK" sign "$TMP/unsigned.corim" "$TMP/signed.corim" --key "$TMP/signer.pem" || fail "make_corim sign"

echo "  unsigned CoRIM naming the report's measurement: affirming" >&2
verify 0 --reference-values "$TMP/unsigned.corim" "$SNP"
expect_json status verified
expect_json appraisal.status affirming
expect_json appraisal.trustworthiness_vector.executables 2

echo "  CoRIM naming another measurement: contraindicated" >&2
verify 0 --reference-values "$TMP/other.corim" "$SNP"
expect_json appraisal.status contraindicated
expect_json appraisal.trustworthiness_vector.executables 96

echo "  min-svn above the report's guest_svn (4): contraindicated" >&2
verify 0 --reference-values "$TMP/svn5.corim" "$SNP"
expect_json appraisal.status contraindicated

echo "  rim-validity: inside affirms, expired is an error" >&2
verify 0 --reference-values "$TMP/valid.corim" "$SNP"
expect_json appraisal.status affirming
verify 2 --reference-values "$TMP/expired.corim" "$SNP"
grep -q "expired" "$ERR" || fail "expired CoRIM: no clear message: $(cat "$ERR")"

echo "  signed CoRIM: right key affirms; no key, wrong key, tampered are errors" >&2
verify 0 --reference-values "$TMP/signed.corim" --corim-key "$TMP/signer.pub" "$SNP"
expect_json appraisal.status affirming
verify 2 --reference-values "$TMP/signed.corim" "$SNP"
grep -q "signed" "$ERR" || fail "signed CoRIM without a key: no clear message: $(cat "$ERR")"
verify 2 --reference-values "$TMP/signed.corim" --corim-key "$TMP/other.pub" "$SNP"
grep -q "does not verify" "$ERR" || fail "wrong key: no clear message: $(cat "$ERR")"
# Flip one byte of the signed measurement inside the payload.
"$PY" - "$TMP/signed.corim" "$TMP/tampered.corim" "$MEAS" <<'PYEOF'
import sys
data = bytearray(open(sys.argv[1], "rb").read())
i = data.find(bytes.fromhex(sys.argv[3]))
assert i > 0
data[i + 10] ^= 0x01
open(sys.argv[2], "wb").write(data)
PYEOF
verify 2 --reference-values "$TMP/tampered.corim" --corim-key "$TMP/signer.pub" "$SNP"
grep -q "does not verify" "$ERR" || fail "tampered CoRIM: no clear message: $(cat "$ERR")"
# An unsigned CoRIM when a signer is demanded.
verify 2 --reference-values "$TMP/unsigned.corim" --corim-key "$TMP/signer.pub" "$SNP"
grep -q "not signed" "$ERR" || fail "unsigned CoRIM with a key: no clear message: $(cat "$ERR")"

echo "  JSON reference values still work; a CoRIM key with them is an error" >&2
printf '{"snp": {"measurement": ["%s"]}}\n' "$MEAS" >"$TMP/rv.json"
verify 0 --reference-values "$TMP/rv.json" "$SNP"
expect_json appraisal.status affirming
verify 2 --reference-values "$TMP/rv.json" --corim-key "$TMP/signer.pub" "$SNP"

echo "  truncated CoRIM is an error" >&2
head -c 60 "$TMP/unsigned.corim" >"$TMP/trunc.corim"
verify 2 --reference-values "$TMP/trunc.corim" "$SNP"

finish
