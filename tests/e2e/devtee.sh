#!/bin/sh
# The development TEE through the CLI: launch, measure, attest from inside,
# verify outside; tampering, other roots, other workloads, debug, init-data,
# exit status, and the workload's fate when the platform dies.
set -u
. "$(dirname "$0")/lib.sh"
S=$TMP/state
# LeakSanitizer stops the world with ptrace, which the sandbox denies, so
# sanitizer builds of cloister run inside the dev TEE without it.
NOLEAK=ASAN_OPTIONS=detect_leaks=0
dt() { "$CLOISTER" devtee "$@"; }

expect_exit 0 dt --help
expect_exit 2 dt
expect_exit 2 dt frobnicate
expect_exit 2 dt run --state "$S"
expect_exit 2 dt run --bogus -- /bin/true
expect_exit 0 dt root --state "$S"
[ "$(cat "$OUT")" = "$S/root.pem" ] || fail "devtee root prints the certificate path"
grep -q "BEGIN CERTIFICATE" "$S/root.pem" || fail "root.pem is a PEM certificate"
openssl x509 -in "$S/root.pem" -noout -subject 2>/dev/null | grep -q development ||
	fail "the root certificate says development"
[ "$(stat -c %a "$S/root.key")" = 600 ] || fail "root.key is mode 0600"
expect_exit 0 dt root --state "$TMP/other"

# Two workloads that differ in one byte (the last comment character).
for w in a b; do
	printf '#!/bin/sh\nexec env '"$NOLEAK"' "$CLOISTER" agent evidence --report-data "$1" -o "$2"\n# %s\n' "$w" >"$TMP/w$w.sh"
	chmod +x "$TMP/w$w.sh"
done
export CLOISTER
expect_exit 0 dt run --state "$S" -- "$TMP/wa.sh" c0ffee "$TMP/a.bin"
expect_exit 0 dt run --state "$S" -- "$TMP/wb.sh" c0ffee "$TMP/b.bin"
[ "$(wc -c <"$TMP/a.bin")" -eq 512 ] || fail "a dev-TEE report is 512 bytes"

verify() { "$CLOISTER" verify "$@"; }
expect_exit 0 verify --devtee-root "$S/root.pem" --report-data c0ffee "$TMP/a.bin"
expect_json status verified
expect_json format devtee
expect_json claims.platform devtee
expect_json claims.development true
ma=$(json_get claims.measurement <"$OUT")
expect_exit 0 dt measure -- "$TMP/wa.sh" c0ffee "$TMP/a.bin"
[ "$(cat "$OUT")" = "$ma" ] || fail "devtee measure predicts the launch measurement"
expect_exit 0 verify --format devtee --devtee-root "$S/root.pem" "$TMP/b.bin"
mb=$(json_get claims.measurement <"$OUT")
[ -n "$ma" ] && [ "$ma" != "$mb" ] || fail "a one-byte different workload has another measurement"
expect_exit 1 verify --devtee-root "$S/root.pem" --report-data c0ffef "$TMP/a.bin"

# Only with its own root, and never without one.
expect_exit 1 verify "$TMP/a.bin"
expect_json status rejected
grep -q devtee-root "$OUT" || fail "the rejection names --devtee-root"
expect_exit 1 verify --devtee-root "$TMP/other/root.pem" "$TMP/a.bin"
expect_exit 2 verify --devtee-root "$TMP/missing.pem" "$TMP/a.bin"
flip() { # flip FILE OFFSET OUT
	python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[int(sys.argv[2], 0)] ^= 1; open(sys.argv[3], "wb").write(b)' "$@"
}
for off in 0 8 12 16 100 200 380 420 511; do
	flip "$TMP/a.bin" "$off" "$TMP/bad.bin"
	expect_exit 1 verify --devtee-root "$S/root.pem" "$TMP/bad.bin"
done
head -c 511 "$TMP/a.bin" >"$TMP/short.bin"
expect_exit 1 verify --format devtee --devtee-root "$S/root.pem" "$TMP/short.bin"
# Bytes after the report are unsigned: accepted whatever they are and counted.
# Two reports back to back are one report plus 512 trailing bytes.
cat "$TMP/a.bin" "$TMP/a.bin" >"$TMP/long.bin"
expect_exit 0 verify --devtee-root "$S/root.pem" "$TMP/long.bin"
expect_json format devtee
expect_json claims.trailing_bytes 512
expect_exit 0 verify --devtee-root "$S/root.pem" "$TMP/a.bin"
expect_json claims.trailing_bytes 0
# More than 64 KiB of them make the evidence oversized.
{ cat "$TMP/a.bin"; head -c 65537 /dev/zero; } >"$TMP/huge.bin"
expect_exit 1 verify --devtee-root "$S/root.pem" "$TMP/huge.bin"
grep -q "at most 65536" "$OUT" || fail "oversized trailing bytes: reason gives the cap"
flip "$TMP/long.bin" 100 "$TMP/longbad.bin"
expect_exit 1 verify --devtee-root "$S/root.pem" "$TMP/longbad.bin"

# The JSON envelope names the format and carries the event log.
expect_exit 0 dt run --state "$S" -- env "$NOLEAK" "$CLOISTER" agent evidence --report-data 01 --json
expect_json format devtee
expect_json provider devtee
# A workload that extends two registers through the platform socket, then
# hands out the envelope; verify checks the log's replay against the report.
cat >"$TMP/wx.sh" <<'EOF'
#!/bin/sh
python3 - <<'PY' || exit 9
import hashlib, os, socket, struct
s = socket.socket(fileno=int(os.environ["CLOISTER_DEVTEE_FD"]))
for idx, ev in ((2, b"app config v1"), (3, b"model weights")):
    p = struct.pack("<I", idx) + hashlib.sha384(ev).digest() + ev
    s.send(struct.pack("<HH", 3, len(p)) + p)
    assert struct.unpack("<HH", s.recv(4096)[:4])[0] == 0
s.detach()
PY
exec env ASAN_OPTIONS=detect_leaks=0 "$CLOISTER" agent evidence --report-data "$1" --json
EOF
chmod +x "$TMP/wx.sh"
expect_exit 0 dt run --state "$S" -- "$TMP/wx.sh" 0a0b
cp "$OUT" "$TMP/env.json"
expect_exit 0 verify --devtee-root "$S/root.pem" --report-data 0a0b "$TMP/env.json"
expect_json status verified
expect_json format devtee
expect_json claims.eventlog.1.index 3
expect_json claims.eventlog.0.data "$(printf 'app config v1' | od -An -tx1 | tr -d ' \n')"
[ "$(json_get claims.rtmr.2 <"$OUT")" != "$(printf '%096d' 0)" ] || fail "the workload's extend reached the report"
expect_exit 1 verify --devtee-root "$S/root.pem" --report-data 0a0c "$TMP/env.json"
expect_exit 1 verify --devtee-root "$TMP/other/root.pem" "$TMP/env.json"
# mutate IN OUT PYTHON: the envelope with one change (j: the object, or text).
mutate() {
	python3 -c 'import base64, json, sys
j = json.load(open(sys.argv[1]))
b = lambda k: bytearray(base64.b64decode(j[k]))
e = lambda v: base64.b64encode(bytes(v)).decode()
exec(sys.argv[3])
open(sys.argv[2], "w").write(json.dumps(j) if isinstance(j, dict) else j)' "$@"
}
mutate "$TMP/env.json" "$TMP/m.json" 'l = b("eventlog"); l[10] ^= 1; j["eventlog"] = e(l)'
expect_exit 1 verify --devtee-root "$S/root.pem" "$TMP/m.json"
grep -q "event log replay does not match" "$OUT" || fail "a tampered digest: $(cat "$OUT")"
mutate "$TMP/env.json" "$TMP/m.json" 'l = b("eventlog"); j["eventlog"] = e(l[:4 + 48 + 2 + 13])'
expect_exit 1 verify --devtee-root "$S/root.pem" "$TMP/m.json"
grep -q "event log replay does not match" "$OUT" || fail "a dropped event: $(cat "$OUT")"
mutate "$TMP/env.json" "$TMP/m.json" 'l = b("eventlog"); j["eventlog"] = e(l[:-1])'
expect_exit 1 verify --devtee-root "$S/root.pem" "$TMP/m.json"
mutate "$TMP/env.json" "$TMP/m.json" 'j["format"] = "snp"'
expect_exit 1 verify --devtee-root "$S/root.pem" "$TMP/m.json"
grep -q "envelope says snp but the evidence is devtee" "$OUT" || fail "a wrong format name: $(cat "$OUT")"
mutate "$TMP/env.json" "$TMP/m.json" 'j["extra"] = 1'
expect_exit 1 verify --devtee-root "$S/root.pem" "$TMP/m.json"
mutate "$TMP/env.json" "$TMP/m.json" 'j = json.dumps(j)[:-1] + ", \"format\": \"devtee\"}"'
expect_exit 1 verify --devtee-root "$S/root.pem" "$TMP/m.json"
grep -q "duplicate" "$OUT" || fail "a duplicate key: $(cat "$OUT")"
mutate "$TMP/env.json" "$TMP/m.json" 'r = b("evidence"); r[100] ^= 1; j["evidence"] = e(r)'
expect_exit 1 verify --devtee-root "$S/root.pem" "$TMP/m.json"
expect_exit 1 verify --format sgx --devtee-root "$S/root.pem" "$TMP/env.json"

# Debug launches and init-data are part of what is reported.
printf 'policy = "x"\n' >"$TMP/init.toml"
expect_exit 0 dt run --state "$S" --debug --init-data "$TMP/init.toml" -- "$TMP/wa.sh" 02 "$TMP/d.bin"
expect_exit 1 verify --devtee-root "$S/root.pem" "$TMP/d.bin"
grep -q debug "$OUT" || fail "the debug rejection says so"
expect_exit 0 verify --allow-debug --devtee-root "$S/root.pem" "$TMP/d.bin"
expect_json claims.debug true
expect_json claims.host_data "$(sha384sum "$TMP/init.toml" | cut -d' ' -f1)"
md=$(json_get claims.measurement <"$OUT")
[ "$md" != "$ma" ] || fail "debug and init-data change the measurement"

# The program's exit status is devtee's; a missing program is the platform's failure.
expect_exit 7 dt run --state "$S" -- sh -c 'exit 7'
expect_exit 125 dt run --state "$S" -- /nonexistent/program
# Outside a TEE the agent finds none.
expect_exit 1 env CLOISTER_TSM_PATH=/nonexistent CLOISTER_SEV_GUEST=/nonexistent \
	CLOISTER_GRAMINE_PATH=/nonexistent CLOISTER_TDX_MEASUREMENTS=/nonexistent \
	"$CLOISTER" agent evidence --report-data 00

# The workload cannot reach the platform's key.
expect_exit 0 dt run --state "$S" -- sh -c "cat '$S/root.key' >/dev/null 2>&1 && exit 1; exit 0"

# Killing the platform ends the workload and everything it started. The
# workload runs in its own PID namespace, so it is found from outside by a
# marker in its arguments.
mark=$$
"$CLOISTER" devtee run --state "$S" -- sh -c "sleep 301.$mark & exec sleep 300.$mark" >/dev/null 2>&1 &
plat=$!
i=0
while ! { pgrep -f "sleep 300.$mark" && pgrep -f "sleep 301.$mark"; } >/dev/null && [ $i -lt 100 ]; do
	sleep 0.1
	i=$((i + 1))
done
if ! pgrep -f "sleep 300.$mark" >/dev/null || ! pgrep -f "sleep 301.$mark" >/dev/null; then
	fail "the workload did not start"
else
	kill -9 "$plat"
	i=0
	while pgrep -f "sleep 30[01].$mark" >/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	pgrep -f "sleep 30[01].$mark" >/dev/null && { fail "the workload outlived its platform"; pkill -9 -f "sleep 30[01].$mark"; }
fi
wait "$plat" 2>/dev/null

# SIGTERM to the platform reaches the workload (through its namespace's init),
# which ends and gives its status.
"$CLOISTER" devtee run --state "$S" -- sh -c "exec sleep 303.$mark" >/dev/null 2>&1 &
plat=$!
i=0
while ! pgrep -x -f "sleep 303.$mark" >/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
kill -TERM "$plat"
i=0
while kill -0 "$plat" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
if kill -0 "$plat" 2>/dev/null; then
	fail "SIGTERM to the platform did not end the workload within 5 s"
	kill -9 "$plat"
	pkill -9 -f "sleep 303.$mark"
fi
wait "$plat"
st=$?
[ "$st" -eq 143 ] || fail "a workload ended by SIGTERM gives 143, got $st"

finish
