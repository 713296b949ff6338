#!/bin/sh
# `cloister agent evidence` against a directory that behaves like configfs-tsm
# and serves the recorded real SNP report: the evidence must come out as it
# went in and verify as it is. (The recorded report carries its own report
# data, so this checks the plumbing, not the binding.)
set -u
. "$(dirname "$0")/lib.sh"
T=$V/sev-snp/trustee
AT=2025-06-01T00:00:00Z
export CLOISTER_SEV_GUEST=/nonexistent CLOISTER_GRAMINE_PATH=/nonexistent \
	CLOISTER_TDX_MEASUREMENTS=/nonexistent
unset CLOISTER_DEVTEE_FD

# fake_tsm.py DIR OUTBLOB ROUNDS: inblob/outblob are FIFOs, so the reader of
# outblob waits until inblob was taken and generation moved, as in configfs.
cat >"$TMP/fake_tsm.py" <<'PY'
import os, sys
d, blob, rounds = sys.argv[1], open(sys.argv[2], "rb").read(), int(sys.argv[3])
os.makedirs(d, exist_ok=True)
open(os.path.join(d, "generation"), "w").write("0\n")
open(os.path.join(d, "provider"), "w").write("sev_guest\n")
open(os.path.join(d, "auxblob"), "wb").write(b"")
for f in ("inblob", "outblob"):
    os.mkfifo(os.path.join(d, f))
for g in range(1, rounds + 1):
    with open(os.path.join(d, "inblob"), "rb") as f:
        data = f.read()
    open(os.path.join(d, "inblob.seen"), "wb").write(data)
    open(os.path.join(d, "generation"), "w").write("%d\n" % g)
    with open(os.path.join(d, "outblob"), "wb") as f:
        f.write(blob)
PY

agent() { "$CLOISTER" agent "$@"; }
expect_exit 0 agent --help
expect_exit 0 agent evidence --help
expect_exit 2 agent
expect_exit 2 agent frobnicate
expect_exit 2 agent evidence
expect_exit 2 agent evidence --report-data zz
expect_exit 2 agent evidence --report-data "$(printf '%0130d' 0)"
expect_exit 2 agent evidence --report-data 00 --attester tpm9
expect_exit 1 env CLOISTER_TSM_PATH=/nonexistent "$CLOISTER" agent evidence --report-data 00
grep -q "no TEE detected" "$ERR" || fail "says no TEE detected"

run_fake() { # run_fake ENTRY ROUNDS AGENT-ARGS...
	entry=$1 rounds=$2
	shift 2
	python3 "$TMP/fake_tsm.py" "$TMP/tsm/$entry" "$T/test-report.bin" "$rounds" &
	fake=$!
	i=0
	while [ ! -p "$TMP/tsm/$entry/outblob" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	expect_exit 0 env CLOISTER_TSM_PATH="$TMP/tsm" CLOISTER_TSM_ENTRY="$entry" \
		"$CLOISTER" agent evidence "$@"
	wait "$fake"
}

run_fake e1 1 --report-data 0102ff -o "$TMP/ev.bin"
cmp -s "$TMP/ev.bin" "$T/test-report.bin" || fail "the evidence is the outblob, byte for byte"
python3 -c 'import sys; d = open(sys.argv[1], "rb").read(); sys.exit(d != bytes([1, 2, 255]) + bytes(61))' \
	"$TMP/tsm/e1/inblob.seen" || fail "inblob got the 64-byte report data"
expect_exit 0 "$CLOISTER" verify --offline --cache-dir "$TMP/cache" --vcek "$T/test-vcek.der" --at "$AT" "$TMP/ev.bin"
expect_json status verified
expect_json format snp

run_fake e2 1 --report-data 00 --json
expect_json format snp
expect_json provider tsm/sev_guest
json_get evidence <"$OUT" | base64 -d >"$TMP/ev2.bin" 2>/dev/null
cmp -s "$TMP/ev2.bin" "$T/test-report.bin" || fail "the envelope carries the report"

# Writing to stdout works as well.
run_fake e3 1 --report-data 00
cmp -s "$OUT" "$T/test-report.bin" || fail "raw evidence on stdout"

finish
