#!/bin/sh
# `cloister demo` (what `make run` runs): twice in a row, each time exit 0,
# the last line `demo: ok`, the secret released to the workload and refused
# to the modified one, no process and no file left behind; --keep keeps the
# work directory without the secret in it; SIGINT mid-way, with the KBS
# running, still stops every child and removes everything.
set -u
. "$(dirname "$0")/lib.sh"

expect_exit 0 "$CLOISTER" demo --help
grep -q "demo: ok" "$OUT" || fail "demo --help describes the last line"
expect_exit 2 "$CLOISTER" demo --bogus
expect_exit 2 "$CLOISTER" demo extra
expect_exit 2 "$CLOISTER" demo --port 0

# Processes whose argv names a path under $1 (the KBS, dev TEE and workloads
# all do: their state and scripts live in the demo's directory).
procs_under() {
	for p in /proc/[0-9]*; do
		c=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
		case $c in *"$1"/*) echo "${p#/proc/}: $c" ;; esac
	done
}

nothing_left() { # nothing_left DIR WHAT
	left=$(procs_under "$1")
	[ -z "$left" ] || fail "$2: processes left: $left"
	[ -z "$(ls -A "$1")" ] || fail "$2: files left in $1: $(ls -A "$1")"
}

for run in 1 2; do
	T=$TMP/run$run
	mkdir -p "$T"
	expect_exit 0 env TMPDIR=$T "$CLOISTER" demo
	last=$(tail -n 1 "$OUT")
	case $last in "demo: ok"*) ;; *) fail "run $run: last line is '$last'" ;; esac
	grep -q "EAR status affirming" "$OUT" || fail "run $run: no affirming EAR for the workload"
	grep -q "= the stored secret" "$OUT" || fail "run $run: secret not received"
	grep -q "EAR status contraindicated" "$OUT" || fail "run $run: modified workload not contraindicated"
	grep -q "deny demo/key/secret: measurement" "$OUT" || fail "run $run: no policy denial"
	grep -q "refused with HTTP 403 PolicyDeny; no secret written" "$OUT" ||
		fail "run $run: modified workload not refused"
	[ "$(grep -c '^\[ ok \]' "$OUT")" = 6 ] || fail "run $run: not six steps ok"
	grep -q "FAIL" "$OUT" && fail "run $run: a step failed"
	nothing_left "$T" "run $run"
done

# --keep: the directory stays, with the KBS's store and logs but no copy of the secret.
T=$TMP/keep
mkdir -p "$T"
expect_exit 0 env TMPDIR=$T "$CLOISTER" demo --keep
K=$(ls -d "$T"/cloister-demo.* 2>/dev/null)
[ -n "$K" ] && [ -f "$K/kbs/kbs.db" ] && [ -f "$K/workload.log" ] || fail "--keep did not keep $K"
[ -e "$K/secret.in" ] || [ -e "$K/secret.out" ] && fail "--keep left a copy of the secret"
grep -q "$K" "$OUT" || fail "--keep does not say where"
[ -z "$(procs_under "$T")" ] || fail "--keep left processes: $(procs_under "$T")"
rm -rf "$K"

# A step that fails (the port is taken, so the KBS cannot start) also cleans up.
T=$TMP/busy
mkdir -p "$T"
python3 -c 'import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen()
print(s.getsockname()[1], flush=True); sys.stdout.close(); time.sleep(60)' >"$TMP/busy.port" &
holder=$!
i=0
while [ ! -s "$TMP/busy.port" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
expect_exit 1 env TMPDIR=$T "$CLOISTER" demo --port "$(cat "$TMP/busy.port")"
kill "$holder" 2>/dev/null
wait "$holder" 2>/dev/null
grep -q "^demo: FAILED at step 1" "$OUT" || fail "a KBS that cannot start: $(tail -n 1 "$OUT")"
grep -q "Address already in use" "$ERR" ||
	fail "the failure does not show the KBS's log; stderr ends: $(tail -c 600 "$ERR")"
nothing_left "$T" "failed step"

# SIGINT while the KBS runs. The demo is frozen (SIGSTOP) while we look for its
# KBS, so the signal lands mid-way however fast this machine is.
T=$TMP/int
mkdir -p "$T"
TMPDIR=$T "$CLOISTER" demo >"$TMP/int.out" 2>"$TMP/int.err" &
pid=$!
seen=
i=0
while [ $i -lt 500 ] && kill -STOP "$pid" 2>/dev/null; do
	if procs_under "$T" | grep -q "kbs serve"; then
		seen=1
		break
	fi
	kill -CONT "$pid"
	sleep 0.01
	i=$((i + 1))
done
[ -n "$seen" ] || fail "never saw the demo's KBS running"
kill -INT "$pid"
kill -CONT "$pid"
wait "$pid"
rc=$?
[ "$rc" = 130 ] || fail "interrupted demo exited $rc, want 130 (SIGINT)"
grep -q "interrupted" "$TMP/int.err" || fail "the interrupted demo does not say so"
grep -q "demo: ok" "$TMP/int.out" && fail "an interrupted demo claims success"
nothing_left "$T" "SIGINT"

finish
