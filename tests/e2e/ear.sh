#!/bin/sh
# EAR attestation results end to end: appraise real evidence, sign an EAR,
# check it with cloister and with an independent JOSE implementation
# (python3-jwcrypto), and refuse tampered, foreign and expired tokens.
set -u
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
AT=2025-06-01T00:00:00Z
SNP="$V/sev-snp/trustee/test-report.bin"
VCEK="$V/sev-snp/trustee/test-vcek.der"
MEAS=a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c

openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/k256.pem" 2>/dev/null || fail "openssl P-256 key"
openssl ecparam -name secp384r1 -genkey -noout -out "$TMP/k384.pem" 2>/dev/null || fail "openssl P-384 key"
openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/other.pem" 2>/dev/null || fail "openssl other key"
printf '{"snp": {"measurement": ["%s"]}, "sgx": {"measurement": ["00"]}}\n' "$MEAS" >"$TMP/rv.json"
printf '{"snp": {"measurement": ["%s"]}}\n' \
	"b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01" \
	>"$TMP/rv-other.json"

# jwcrypto: verify TOKEN against JWKS and print the payload, or fail.
jwcrypto_verify() {
	"$PY" - "$1" "$2" <<'PYEOF'
import sys
from jwcrypto import jwk, jws
keys = jwk.JWKSet.from_json(open(sys.argv[1]).read())
tok = open(sys.argv[2]).read().strip()
t = jws.JWS()
t.deserialize(tok)
hdr = t.jose_header
assert hdr["alg"] in ("ES256", "ES384"), hdr
t.verify(keys.get_key(hdr["kid"]), alg=hdr["alg"])
print(t.payload.decode())
PYEOF
}

# field PATH < payload: a value from the EAR payload (dotted path).
field() {
	"$PY" -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("/"):
    v = v.get(k) if isinstance(v, dict) else None
print(v)' "$1"
}

"$CLOISTER" ear jwks --signing-key "$TMP/k256.pem" >"$TMP/jwks.json" || fail "ear jwks"
"$CLOISTER" ear jwks --signing-key "$TMP/k384.pem" >"$TMP/jwks384.json" || fail "ear jwks P-384"
"$CLOISTER" ear jwks --signing-key "$TMP/other.pem" >"$TMP/other.json" || fail "ear jwks other"
grep -q '"d"' "$TMP/jwks.json" && fail "the JWKS leaks the private key"

# SNP, measurement in the reference values: affirming.
expect_exit 0 "$CLOISTER" verify --at $AT --vcek "$VCEK" --reference-values "$TMP/rv.json" \
	--ear --signing-key "$TMP/k256.pem" --nonce 0102030405060708 "$SNP"
cp "$OUT" "$TMP/tok"
jwcrypto_verify "$TMP/jwks.json" "$TMP/tok" >"$TMP/payload" || fail "jwcrypto rejects our ES256 EAR"
[ "$(field ear_status <"$TMP/payload")" = affirming ] || fail "trustee SNP: ear_status not affirming"
[ "$(field submods/cpu0/ear_status <"$TMP/payload")" = affirming ] || fail "cpu0 not affirming"
[ "$(field eat_profile <"$TMP/payload")" = "tag:ietf.org,2026:rats/ear#03" ] || fail "eat_profile"
[ "$(field eat_nonce <"$TMP/payload")" = AQIDBAUGBwg ] || fail "eat_nonce"
[ "$(field submods/cpu0/ear_veraison_annotated_evidence/snp/measurement <"$TMP/payload")" = "$MEAS" ] ||
	fail "annotated evidence lacks the measurement"
expect_exit 0 "$CLOISTER" ear verify --jwks "$TMP/jwks.json" "$TMP/tok"
expect_json submods.cpu0.ear_status affirming
expect_exit 0 "$CLOISTER" ear verify --jwks "$TMP/jwks.json" "$(cat "$TMP/tok")"
expect_exit 0 sh -c "\"$CLOISTER\" ear verify --jwks \"$TMP/jwks.json\" - <\"$TMP/tok\""

# ES384.
expect_exit 0 "$CLOISTER" verify --at $AT --vcek "$VCEK" --reference-values "$TMP/rv.json" \
	--ear --signing-key "$TMP/k384.pem" "$SNP"
cp "$OUT" "$TMP/tok384"
jwcrypto_verify "$TMP/jwks384.json" "$TMP/tok384" >"$TMP/payload" || fail "jwcrypto rejects our ES384 EAR"
expect_exit 0 "$CLOISTER" ear verify --jwks "$TMP/jwks384.json" "$TMP/tok384"

# Another measurement: a valid token that says contraindicated (exit 0).
expect_exit 0 "$CLOISTER" verify --at $AT --vcek "$VCEK" --reference-values "$TMP/rv-other.json" \
	--ear --signing-key "$TMP/k256.pem" "$SNP"
jwcrypto_verify "$TMP/jwks.json" "$OUT" >"$TMP/payload" || fail "jwcrypto rejects the EAR"
[ "$(field ear_status <"$TMP/payload")" = contraindicated ] || fail "other measurement not contraindicated"

# go-sev-guest debug guest: hardware contraindicated.
expect_exit 0 "$CLOISTER" verify --at 2022-09-24T01:00:00Z --allow-debug \
	--vcek "$V/sev-snp/go-sev-guest/vcek_milan.der" --reference-values "$TMP/rv.json" \
	--ear --signing-key "$TMP/k256.pem" "$V/sev-snp/go-sev-guest/attestation.bin"
jwcrypto_verify "$TMP/jwks.json" "$OUT" >"$TMP/payload" || fail "jwcrypto rejects the EAR"
[ "$(field submods/cpu0/ear_trustworthiness_vector/hardware <"$TMP/payload")" = 96 ] ||
	fail "debug guest: hardware not contraindicated"

# SGX ConfigurationAndSWHardeningNeeded: hardware in the warning band.
expect_exit 0 "$CLOISTER" verify --offline --at 2025-07-01T00:00:00Z \
	--collateral "$V/sgx/dcap-qvl/sgx_quote_collateral.json" --reference-values "$TMP/rv.json" \
	--ear --signing-key "$TMP/k256.pem" "$V/sgx/dcap-qvl/sgx_quote"
jwcrypto_verify "$TMP/jwks.json" "$OUT" >"$TMP/payload" || fail "jwcrypto rejects the EAR"
hw=$(field submods/cpu0/ear_trustworthiness_vector/hardware <"$TMP/payload")
[ "$hw" -ge 32 ] 2>/dev/null && [ "$hw" -le 95 ] || fail "SGX hardware $hw not in the warning band"

# Plain JSON output carries the appraisal too.
expect_exit 0 "$CLOISTER" verify --at $AT --vcek "$VCEK" --reference-values "$TMP/rv.json" "$SNP"
expect_json appraisal.status affirming

# Evidence that fails verification: exit 1, no token.
"$PY" -c '
import sys
b = bytearray(open(sys.argv[1], "rb").read()); b[42] ^= 1
open(sys.argv[2], "wb").write(b)' "$SNP" "$TMP/bad.bin"
expect_exit 1 "$CLOISTER" verify --at $AT --vcek "$VCEK" --reference-values "$TMP/rv.json" \
	--ear --signing-key "$TMP/k256.pem" "$TMP/bad.bin"
[ -s "$OUT" ] && fail "a token was printed for rejected evidence"

# Tampered, foreign and expired tokens.
"$PY" -c '
import sys
t = open(sys.argv[1]).read().strip()
i = len(t) // 2
c = "A" if t[i] != "A" else "B"
open(sys.argv[2], "w").write(t[:i] + c + t[i + 1:])' "$TMP/tok" "$TMP/tampered"
expect_exit 1 "$CLOISTER" ear verify --jwks "$TMP/jwks.json" "$TMP/tampered"
expect_json status invalid
expect_exit 1 "$CLOISTER" ear verify --jwks "$TMP/other.json" "$TMP/tok"
expect_exit 1 "$CLOISTER" ear verify --jwks "$TMP/jwks384.json" "$TMP/tok"
expect_exit 1 "$CLOISTER" ear verify --jwks "$TMP/jwks.json" --at 2099-01-01T00:00:00Z "$TMP/tok"
grep -q expired "$OUT" || fail "expiry is named"

# Usage.
expect_exit 0 "$CLOISTER" ear --help
expect_exit 2 "$CLOISTER" ear
expect_exit 2 "$CLOISTER" ear sign
expect_exit 2 "$CLOISTER" ear jwks
expect_exit 2 "$CLOISTER" ear verify "$TMP/tok"
expect_exit 2 "$CLOISTER" ear verify --jwks "$TMP/missing.json" "$TMP/tok"
expect_exit 2 "$CLOISTER" verify --ear "$SNP"
expect_exit 2 "$CLOISTER" verify --reference-values "$TMP/missing.json" "$SNP"
# A 1-byte nonce is a valid evidence nonce (TPM extraData) but no eat_nonce (8..64 bytes).
expect_exit 2 "$CLOISTER" verify --at $AT --vcek "$VCEK" --nonce 01 --ear --signing-key "$TMP/k256.pem" "$SNP"
grep -q eat_nonce "$ERR" || fail "a short EAR nonce names eat_nonce"
expect_exit 2 "$CLOISTER" verify --nonce "" "$SNP"
expect_exit 2 "$CLOISTER" verify --nonce "$(printf '%0130d' 0)" "$SNP"

# Malicious policies: a clear error, the process survives, exit 2.
printf 'function appraise() while true do end end\n' >"$TMP/loop.lua"
expect_exit 2 "$CLOISTER" verify --at $AT --vcek "$VCEK" --policy "$TMP/loop.lua" "$SNP"
grep -q "instruction limit" "$ERR" || fail "infinite loop is named"
printf 'function appraise() os.execute("touch %s/pwned") end\n' "$TMP" >"$TMP/os.lua"
expect_exit 2 "$CLOISTER" verify --at $AT --vcek "$VCEK" --policy "$TMP/os.lua" "$SNP"
[ -e "$TMP/pwned" ] && fail "os.execute ran"
printf 'function appraise() local s = "x" while true do s = s .. s end end\n' >"$TMP/mem.lua"
expect_exit 2 "$CLOISTER" verify --at $AT --vcek "$VCEK" --policy "$TMP/mem.lua" "$SNP"
grep -q "memory limit" "$ERR" || fail "memory bomb is named"

# A custom policy decides the vector.
cat >"$TMP/p.lua" <<'LUA'
policy_id = "policy://e2e/1"
function appraise(claims, ctx)
  local v = { hardware = AFFIRMING }
  if claims.guest_svn >= 4 then v.executables = 3 else v.executables = 33 end
  return v
end
LUA
expect_exit 0 "$CLOISTER" verify --at $AT --vcek "$VCEK" --policy "$TMP/p.lua" \
	--ear --signing-key "$TMP/k256.pem" "$SNP"
jwcrypto_verify "$TMP/jwks.json" "$OUT" >"$TMP/payload" || fail "jwcrypto rejects the EAR"
[ "$(field submods/cpu0/ear_trustworthiness_vector/executables <"$TMP/payload")" = 3 ] ||
	fail "custom policy vector"
grep -q 'policy://e2e/1' "$TMP/payload" || fail "custom policy id"

finish
