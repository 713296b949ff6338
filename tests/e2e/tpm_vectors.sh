#!/bin/sh
# TPM through the CLI on the real vectors: the GCP Shielded VM quote and
# event log (go-attestation) and trustee's quote, tampered copies of them,
# and `cloister tpm eventlog` on the real logs checked against tpm2-tools'
# own replay (tpm2_eventlog).
set -u
. "$(dirname "$0")/lib.sh"
G=$V/tpm/go-attestation
T=$V/tpm/trustee

# The AKs, as the callers would pin them: go-attestation's TPMT_PUBLIC blob
# and trustee's DER SubjectPublicKeyInfo.
python3 - "$G/windows_gcp_shielded_vm.json" "$T/tpm_evidence.json" "$TMP" <<'EOF'
import base64, json, sys
g = json.load(open(sys.argv[1]))
open(sys.argv[3] + "/gcp-ak.bin", "wb").write(base64.b64decode(g["AK"]["Public"]))
t = json.load(open(sys.argv[2]))
open(sys.argv[3] + "/trustee-ak.der", "wb").write(base64.b64decode(t["ak_public"]))
EOF

expect_exit 0 "$CLOISTER" verify --ak "$TMP/gcp-ak.bin" "$G/windows_gcp_shielded_vm.json"
expect_json format tpm
expect_json claims.platform tpm
expect_json claims.secure_boot true
expect_json claims.hash_alg sha1
expect_json claims.pcrs.sha1.7 859a5877266b5c909613468091a73380a5386786
expect_json claims.events.untrusted 0
expect_json claims.debug false
expect_json claims.tcb_status Unknown
# Unpinned: rejected, but the claims still show what was presented.
expect_exit 1 "$CLOISTER" verify "$G/windows_gcp_shielded_vm.json"
expect_json claims.platform tpm
expect_exit 1 "$CLOISTER" verify --ak "$TMP/trustee-ak.der" "$G/windows_gcp_shielded_vm.json"

# One flipped byte in the quote, the signature, the AK or the event log.
for part in Quote.Quote:40 Quote.Signature:100 AK.Public:60 Log.Raw:100; do
	python3 - "$G/windows_gcp_shielded_vm.json" "$TMP/flip.json" "$part" <<'EOF'
import base64, json, sys
d = json.load(open(sys.argv[1]))
path, off = sys.argv[3].split(":")
a, b = path.split(".")
raw = bytearray(base64.b64decode(d[a][b]))
off = int(off)
if b == "Raw":
    # the digest of the first event after the Spec ID header
    hdr = 32 + int.from_bytes(raw[28:32], "little")
    off = hdr + 12 + 2 + 3
raw[off] ^= 1
d[a][b] = base64.b64encode(bytes(raw)).decode()
json.dump(d, open(sys.argv[2], "w"))
EOF
	expect_exit 1 "$CLOISTER" verify --ak "$TMP/gcp-ak.bin" "$TMP/flip.json"
	expect_json status rejected
done

expect_exit 0 "$CLOISTER" verify --ak "$TMP/trustee-ak.der" "$T/tpm_evidence.json"
expect_json claims.measurement 019de64c9318655e422c3d03831169896e31f02a1d74e4d8fef575bf4e0d75fa
expect_json claims.pcrs.sha256.17 ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff
NONCE=a04182b506878d4f29b91ee606a71a0d3361ccf1b22db20c98adcaa537bea393ef0e41a18b3569ab678f1497fbc5c12000000000000000000000000000000000
expect_exit 0 "$CLOISTER" verify --ak "$TMP/trustee-ak.der" --nonce "$NONCE" "$T/tpm_evidence.json"
expect_exit 1 "$CLOISTER" verify --ak "$TMP/trustee-ak.der" --nonce "${NONCE%??}21" "$T/tpm_evidence.json"
expect_exit 0 "$CLOISTER" verify --format tpm --ak "$TMP/trustee-ak.der" --report-data "$NONCE" \
	"$T/tpm_evidence.json"

# Event logs: every bank we replay equals tpm2_eventlog's replay.
for log in crypto_agile_eventlog sb_cert_eventlog ubuntu_2104_shielded_vm_no_secure_boot_eventlog; do
	expect_exit 0 "$CLOISTER" tpm eventlog "$G/$log"
	cp "$OUT" "$TMP/ours.json"
	if command -v tpm2_eventlog >/dev/null; then
		tpm2_eventlog "$G/$log" >"$TMP/theirs.yaml" 2>/dev/null || fail "tpm2_eventlog $log"
		python3 - "$TMP/ours.json" "$TMP/theirs.yaml" "$log" <<'EOF' || fail "replay of $log differs from tpm2_eventlog"
import json, re, sys
ours = json.load(open(sys.argv[1]))["pcrs"]
theirs, bank, inpcrs = {}, None, False
for line in open(sys.argv[2]):
    if line.startswith("pcrs:"):
        inpcrs = True
        continue
    if not inpcrs:
        continue
    m = re.match(r"^  (\w+):\s*$", line)
    if m:
        bank = m.group(1)
        theirs[bank] = {}
        continue
    m = re.match(r"^\s+(\d+)\s*:\s*0x([0-9a-fA-F]+)", line)
    if m and bank:
        theirs[bank][m.group(1)] = m.group(2).lower()
if not theirs or ours != theirs:
    print(sys.argv[3], "ours", ours, "theirs", theirs, file=sys.stderr)
    sys.exit(1)
EOF
	fi
done
expect_exit 0 "$CLOISTER" tpm eventlog "$G/sb_cert_eventlog"
expect_json secure_boot true
expect_json format crypto-agile
expect_exit 0 "$CLOISTER" tpm eventlog "$G/ubuntu_2104_shielded_vm_no_secure_boot_eventlog"
expect_json secure_boot false
# Malformed: cut mid-event, and a PCR index of 24.
head -c 1000 "$G/sb_cert_eventlog" >"$TMP/cut"
expect_exit 1 "$CLOISTER" tpm eventlog "$TMP/cut"
python3 -c '
import sys
b = bytearray(open(sys.argv[1], "rb").read())
hdr = 32 + int.from_bytes(b[28:32], "little")
b[hdr] = 24
open(sys.argv[2], "wb").write(bytes(b))' "$G/sb_cert_eventlog" "$TMP/pcr24"
expect_exit 1 "$CLOISTER" tpm eventlog "$TMP/pcr24"
expect_exit 2 "$CLOISTER" tpm eventlog
expect_exit 2 "$CLOISTER" tpm eventlog "$TMP/does-not-exist"
expect_exit 2 "$CLOISTER" tpm frobnicate
expect_exit 0 "$CLOISTER" tpm --help
expect_exit 0 "$CLOISTER" tpm import --help
expect_exit 2 "$CLOISTER" tpm eventlog --bogus "$G/sb_cert_eventlog"
finish
