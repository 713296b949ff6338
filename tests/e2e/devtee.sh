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
cat "$TMP/a.bin" "$TMP/a.bin" >"$TMP/long.bin"
expect_exit 1 verify --devtee-root "$S/root.pem" "$TMP/long.bin"

# The JSON envelope names the format and carries the event log.
expect_exit 0 dt run --state "$S" -- env "$NOLEAK" "$CLOISTER" agent evidence --report-data 01 --json
expect_json format devtee
expect_json provider devtee

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

# Killing the platform ends the workload.
"$CLOISTER" devtee run --state "$S" -- sh -c "echo \$\$ >'$TMP/pid'; exec sleep 300" >/dev/null 2>&1 &
plat=$!
i=0
while [ ! -s "$TMP/pid" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
wpid=$(cat "$TMP/pid" 2>/dev/null)
if [ -z "$wpid" ] || ! kill -0 "$wpid" 2>/dev/null; then
	fail "the workload did not start"
else
	kill -9 "$plat"
	i=0
	while kill -0 "$wpid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	kill -0 "$wpid" 2>/dev/null && { fail "the workload outlived its platform"; kill -9 "$wpid"; }
fi
wait "$plat" 2>/dev/null

finish
