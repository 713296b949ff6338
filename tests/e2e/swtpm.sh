#!/bin/sh
# TPM end to end on a software TPM (swtpm on loopback): quote through our
# attester and verify; quote with tpm2-tools' tpm2_quote (RSASSA, RSA-PSS,
# ECDSA AKs) and verify that independent output through `cloister tpm
# import`. Wrong nonce, wrong PCR values and a PCR extended after the quote
# are rejected. swtpm is killed on exit, whatever happens.
set -u
. "$(dirname "$0")/lib.sh"
for t in swtpm tpm2_createek tpm2_createak tpm2_quote tpm2_pcrextend tpm2_pcrread; do
	command -v "$t" >/dev/null || { fail "$t is not installed (scripts/deps.sh installs it)"; finish; }
done

SWTPM_PID=
cleanup() {
	[ -n "$SWTPM_PID" ] && kill "$SWTPM_PID" 2>/dev/null && wait "$SWTPM_PID" 2>/dev/null
	rm -rf "$TMP"
}
trap cleanup EXIT

# Two adjacent free loopback ports (server, control).
free_ports() {
	python3 - <<'EOF'
import random, socket
for _ in range(100):
    p = random.randint(20000, 60000)
    ok = True
    for q in (p, p + 1):
        s = socket.socket()
        try:
            s.bind(("127.0.0.1", q))
        except OSError:
            ok = False
        s.close()
    if ok:
        print(p)
        break
EOF
}

P=$(free_ports)
[ -n "$P" ] || { fail "no free ports"; finish; }
mkdir -p "$TMP/state"
swtpm socket --tpm2 --server type=tcp,port="$P",bindaddr=127.0.0.1 \
	--ctrl type=tcp,port=$((P + 1)),bindaddr=127.0.0.1 --tpmstate dir="$TMP/state" \
	--flags not-need-init,startup-clear >"$TMP/swtpm.log" 2>&1 &
SWTPM_PID=$!
TCTI="swtpm:host=127.0.0.1,port=$P"
export TPM2TOOLS_TCTI="$TCTI" TSS2_LOG=all+none

ready=0
for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do
	if "$CLOISTER" tpm ak --tcti "$TCTI" >"$TMP/ak.pem" 2>/dev/null; then
		ready=1
		break
	fi
	sleep 0.2
done
[ "$ready" = 1 ] || { fail "swtpm did not come up"; cat "$TMP/swtpm.log" >&2; finish; }
grep -q "BEGIN PUBLIC KEY" "$TMP/ak.pem" || fail "tpm ak printed no PEM key"
# The AK is derived, not stored: asking again gives the same key.
"$CLOISTER" tpm ak >"$TMP/ak2.pem" 2>"$ERR" || fail "tpm ak via TPM2TOOLS_TCTI"
cmp -s "$TMP/ak.pem" "$TMP/ak2.pem" || fail "AK changed between calls"

N=00112233445566778899aabbccddeeff
verify() { "$CLOISTER" verify "$@"; }

# ---- our attester -> our verifier
expect_exit 0 "$CLOISTER" tpm quote --tcti "$TCTI" --nonce "$N" --pcrs sha256:0,1,2,16+sha1:16
cp "$OUT" "$TMP/ev.json"
expect_exit 0 verify --ak "$TMP/ak.pem" --nonce "$N" "$TMP/ev.json"
expect_json format tpm
expect_json status verified
expect_json claims.platform tpm
expect_json claims.signature_alg ecdsa
expect_json claims.ak_restricted true
expect_json claims.nonce "$N"
expect_json claims.pcrs.sha256.16 0000000000000000000000000000000000000000000000000000000000000000
expect_exit 0 verify --format tpm --ak "$TMP/ak.pem" --report-data "$N" "$TMP/ev.json"
expect_exit 1 verify --ak "$TMP/ak.pem" --nonce "${N%??}ef" "$TMP/ev.json"
expect_json status rejected
grep -q extraData "$OUT" || fail "wrong nonce: reason names extraData"
# No AK given: the quote's own key vouches for nothing.
expect_exit 1 verify "$TMP/ev.json"
grep -q "not trusted" "$OUT" || fail "unpinned AK: reason says so"
# A wrong PCR value.
python3 - "$TMP/ev.json" "$TMP/badpcr.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["pcrs"]["sha256"]["16"] = "11" * 32
json.dump(d, open(sys.argv[2], "w"))
EOF
expect_exit 1 verify --ak "$TMP/ak.pem" "$TMP/badpcr.json"
grep -q "PCR digest" "$OUT" || fail "wrong PCR: reason names the PCR digest"

# ---- the agent's TPM evidence: report data becomes the quote's nonce
expect_exit 0 "$CLOISTER" agent evidence --tpm --tcti "$TCTI" --report-data "$N" --pcrs sha256:0,16
cp "$OUT" "$TMP/agent.json"
expect_exit 0 verify --ak "$TMP/ak.pem" --nonce "$N" --report-data "$N" "$TMP/agent.json"
expect_json claims.nonce "$N"
expect_exit 1 verify --ak "$TMP/ak.pem" --report-data "${N%??}ef" "$TMP/agent.json"
expect_exit 2 "$CLOISTER" agent evidence --tcti "$TCTI" --report-data "$N"
expect_exit 2 "$CLOISTER" agent evidence --tpm --attester devtee --report-data "$N"

# PCR 16 extended after the quote: the current values do not match it.
tpm2_pcrextend 16:sha256=$(printf '%064d' 7) 2>"$ERR" || fail "tpm2_pcrextend"
expect_exit 0 "$CLOISTER" tpm quote --nonce "$N" --pcrs sha256:16
cp "$OUT" "$TMP/ev16.json"
python3 - "$TMP/ev.json" "$TMP/ev16.json" "$TMP/stale.json" <<'EOF'
import json, sys
old, new = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
old["pcrs"]["sha256"]["16"] = new["pcrs"]["sha256"]["16"]
json.dump(old, open(sys.argv[3], "w"))
EOF
expect_exit 1 verify --ak "$TMP/ak.pem" "$TMP/stale.json"
expect_exit 0 verify --ak "$TMP/ak.pem" "$TMP/ev16.json"
expect_json claims.pcrs.sha256.16 "$(python3 -c "import hashlib;print(hashlib.sha256(bytes(32)+bytes.fromhex('%064d'%7)).hexdigest())")"

# ---- tpm2-tools quotes -> cloister tpm import -> our verifier
# Without a resource manager every tool leaves its objects loaded; swtpm has
# three transient slots.
flush() { tpm2_flushcontext -t >/dev/null 2>&1; tpm2_flushcontext -s >/dev/null 2>&1; }
tpm2_createek -c "$TMP/ek.ctx" -G rsa >/dev/null 2>"$ERR" || fail "tpm2_createek"
flush
for kind in rsa:rsassa rsa:rsapss ecc:ecdsa; do
	G=${kind%%:*}
	S=${kind#*:}
	d=$TMP/$S
	mkdir -p "$d"
	tpm2_createak -C "$TMP/ek.ctx" -c "$d/ak.ctx" -G "$G" -g sha256 -s "$S" -u "$d/ak.pub" \
		-f pem -n "$d/ak.name" >/dev/null 2>"$ERR" || { fail "tpm2_createak $kind"; continue; }
	flush
	tpm2_readpublic -c "$d/ak.ctx" -o "$d/ak.tpm2b" >/dev/null 2>&1 || fail "tpm2_readpublic $kind"
	flush
	tpm2_quote -c "$d/ak.ctx" --scheme "$S" -l sha256:0,1,2,16 -q "$N" -m "$d/msg" -s "$d/sig" \
		-o "$d/pcrs" -g sha256 >/dev/null 2>"$ERR" || { fail "tpm2_quote $kind: $(cat "$ERR")"; continue; }
	flush
	tpm2_quote -c "$d/ak.ctx" --scheme "$S" -l sha256:0,1,2,16 -q "$N" -m "$d/msg2" -s "$d/sig2" \
		-o "$d/pcrs2" -F values -g sha256 >/dev/null 2>"$ERR" || fail "tpm2_quote -F values $kind"
	flush
	# serialized (default) PCR file, AK as PEM
	expect_exit 0 "$CLOISTER" tpm import --msg "$d/msg" --sig "$d/sig" --pcrs "$d/pcrs" --ak "$d/ak.pub"
	cp "$OUT" "$d/ev.json"
	expect_exit 0 verify --ak "$d/ak.pub" --nonce "$N" "$d/ev.json"
	expect_json claims.signature_alg "$S"
	expect_json claims.ak_trust pinned
	# values PCR file, AK pinned as the TPM2B_PUBLIC blob
	expect_exit 0 "$CLOISTER" tpm import --msg "$d/msg2" --sig "$d/sig2" --pcrs "$d/pcrs2"
	cp "$OUT" "$d/ev2.json"
	expect_exit 0 verify --ak "$d/ak.tpm2b" --nonce "$N" "$d/ev2.json"
	expect_json claims.ak_restricted true
	# Another AK pinned: rejected. Wrong nonce: rejected.
	expect_exit 1 verify --ak "$TMP/ak.pem" "$d/ev.json"
	expect_exit 1 verify --ak "$d/ak.pub" --nonce "${N%??}00" "$d/ev.json"
done

# A 4-byte qualifying data (any TPM2B_DATA length is a valid nonce): the quote
# verifies with that nonce; it cannot be an EAR's eat_nonce (8..64 bytes).
d=$TMP/rsassa
tpm2_quote -c "$d/ak.ctx" -l sha256:0,16 -q 0badc0de -m "$d/m4" -s "$d/s4" -o "$d/p4" \
	-g sha256 >/dev/null 2>"$ERR" || fail "tpm2_quote -q 0badc0de: $(cat "$ERR")"
flush
expect_exit 0 "$CLOISTER" tpm import --msg "$d/m4" --sig "$d/s4" --pcrs "$d/p4" --ak "$d/ak.pub"
cp "$OUT" "$d/ev4.json"
expect_exit 0 verify --ak "$d/ak.pub" --nonce 0badc0de "$d/ev4.json"
expect_json status verified
expect_json claims.nonce 0badc0de
expect_exit 1 verify --ak "$d/ak.pub" --nonce 0badc0df "$d/ev4.json"
expect_exit 1 verify --ak "$d/ak.pub" --nonce 0badc0de00 "$d/ev4.json"
openssl ecparam -name prime256v1 -genkey -noout -out "$TMP/ear.pem" 2>/dev/null
expect_exit 2 verify --ak "$d/ak.pub" --nonce 0badc0de --ear --signing-key "$TMP/ear.pem" "$d/ev4.json"
grep -q eat_nonce "$ERR" || fail "a short nonce with --ear names eat_nonce"
expect_exit 2 verify --ak "$d/ak.pub" --nonce "" "$d/ev4.json"

# tpm2_quote, then PCR 16 extended, then PCR values read afterwards: rejected.
tpm2_quote -c "$d/ak.ctx" -l sha256:16 -q "$N" -m "$d/m16" -s "$d/s16" -o "$d/p16" -F values \
	-g sha256 >/dev/null 2>"$ERR" || fail "tpm2_quote pcr 16"
flush
expect_exit 0 "$CLOISTER" tpm import --msg "$d/m16" --sig "$d/s16" --pcrs "$d/p16" --ak "$d/ak.pub"
cp "$OUT" "$d/ev16.json"
expect_exit 0 verify --ak "$d/ak.pub" "$d/ev16.json"
tpm2_pcrextend 16:sha256=$(printf '%064d' 9) 2>"$ERR" || fail "tpm2_pcrextend"
tpm2_pcrread sha256:16 -o "$d/p16-now" >/dev/null 2>"$ERR" || fail "tpm2_pcrread"
expect_exit 0 "$CLOISTER" tpm import --msg "$d/m16" --sig "$d/s16" --pcrs "$d/p16-now" --ak "$d/ak.pub"
cp "$OUT" "$d/ev16-now.json"
expect_exit 1 verify --ak "$d/ak.pub" "$d/ev16-now.json"

# import refuses files that are not what tpm2_quote writes.
expect_exit 1 "$CLOISTER" tpm import --msg "$d/sig" --sig "$d/sig" --pcrs "$d/p16"
expect_exit 1 "$CLOISTER" tpm import --msg "$d/m16" --sig "$d/s16" --pcrs "$d/sig"
expect_exit 2 "$CLOISTER" tpm import --msg "$d/m16" --sig "$d/s16"
expect_exit 2 "$CLOISTER" tpm quote --tcti "$TCTI"
expect_exit 2 "$CLOISTER" tpm quote --tcti "$TCTI" --nonce "$N" --pcrs sha256:24
finish
