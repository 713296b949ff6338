#!/bin/sh
# Two KBS processes on one PostgreSQL (a throw-away cluster from Debian's
# postgresql, on a free loopback port): auth on one, attest on the other,
# resource on the first; then agents in the dev TEE fetch the secret while
# one KBS is killed with SIGKILL, and retry on the other.
. tests/e2e/lib.sh
# LeakSanitizer cannot run inside the dev TEE's sandbox (ASan builds): leaks are
# still checked in the KBS itself.
DEVTEE_RUN="env ASAN_OPTIONS=detect_leaks=0 $CLOISTER devtee run"
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$PGBIN" ] || [ ! -x "$PGBIN/initdb" ]; then
	echo "  skipped: PostgreSQL server binaries not installed (scripts/deps.sh installs them)" >&2
	finish
fi
PY="/usr/bin/python3 tests/e2e/kbs_client.py"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PGPORT=$(free_port)
PA=$(free_port)
PB=$(free_port)
PGD=$(mktemp -d "${TMPDIR:-/tmp}/cloister-pg.XXXXXX")
chmod 755 "$PGD"
# PostgreSQL refuses to run as root: run it as the postgres user when we are root.
as_pg() {
	if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" = 0 ] && chown postgres "$PGD"
cleanup() {
	kill -9 $PIDA $PIDB 2>/dev/null
	as_pg "$PGBIN/pg_ctl" -D "$PGD/data" -m immediate stop >/dev/null 2>&1
	rm -rf "$PGD" "$TMP"
}
PIDA= PIDB=
trap cleanup EXIT
as_pg "$PGBIN/initdb" -D "$PGD/data" -U postgres --auth=trust >"$TMP/initdb.log" 2>&1 ||
	{ fail "initdb"; cat "$TMP/initdb.log" >&2; finish; }
as_pg "$PGBIN/pg_ctl" -D "$PGD/data" -l "$PGD/pg.log" -w \
	-o "-p $PGPORT -k $PGD -c listen_addresses=127.0.0.1 -c fsync=on" start >/dev/null ||
	{ fail "pg_ctl start"; cat "$PGD/pg.log" >&2; finish; }
as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "CREATE DATABASE kbs" || fail "createdb"
DB="postgresql://postgres@127.0.0.1:$PGPORT/kbs"

# The store unit test against this database too.
T="$(dirname "$CLOISTER")/tests/kbs_store_test"
if [ -x "$T" ]; then
	CLOISTER_TEST_PG=$DB "$T" 2>"$TMP/store.log" || { fail "kbs_store_test on PostgreSQL"; cat "$TMP/store.log" >&2; }
fi

DT=$TMP/devtee
ROOT=$("$CLOISTER" devtee root --state "$DT")
SA=$TMP/a
SECRET="pg-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s' "$SECRET" >"$TMP/secret"

start() { # start NAME PORT STATE: both share the store and A's keys
	"$CLOISTER" kbs serve --listen 127.0.0.1:"$2" --state "$3" --store "$DB" --kek-file "$SA/kek" \
		--token-key "$SA/token.key" --admin-pubkey "$SA/admin.pub" --devtee-root "$ROOT" \
		--rate-limit 0 --threads 2 --reference-values "$TMP/rv.json" >"$TMP/$1.log" 2>&1 &
	eval "PID$1=\$!"
	i=0
	until grep -q "kbs: ready" "$TMP/$1.log" 2>/dev/null; do
		i=$((i + 1))
		[ $i -gt 200 ] && { fail "kbs $1 did not start"; cat "$TMP/$1.log" >&2; return 1; }
		sleep 0.05
	done
}
# The agent's launch is fixed, so its measurement is too: name it in the reference values.
AGENT="$CLOISTER agent get-resource --kbs http://127.0.0.1:$PA --kbs http://127.0.0.1:$PB --attempts 10 default/key/1"
# shellcheck disable=SC2086
M=$("$CLOISTER" devtee measure -- $AGENT) || fail "devtee measure"
printf '{"devtee": {"measurement": ["%s"]}}\n' "$M" >"$TMP/rv.json"
# A starts first: it makes the shared keys in its state directory.
start A "$PA" "$SA" || finish
start B "$PB" "$TMP/b" || finish
expect_exit 0 "$CLOISTER" kbs admin --kbs "http://127.0.0.1:$PB" --admin-key "$SA/admin.key" \
	put-resource default/key/1 "$TMP/secret"

# --- auth on A, attest on B, resource on A (one cookie jar)
d=$TMP/x
mkdir -p "$d"
curl -s -c "$d/jar" -X POST -d '{"version":"0.1.1","tee":"devtee","extra-params":""}' \
	"http://127.0.0.1:$PA/kbs/v0/auth" >"$d/auth"
$PY keygen "$d"
rd=$($PY runtime "$(json_get nonce <"$d/auth")" "$d")
$DEVTEE_RUN --state "$DT" -- "$CLOISTER" agent evidence --report-data "$rd" -o "$d/ev"
$PY attest "$d" "$d/ev" devtee >"$d/attest.json"
# This launch's measurement is not in the reference values, so allow any through a policy
# that still demands the key binding; the agent flows below use the reference values.
cat >"$TMP/p.lua" <<'LUA'
function release(ear, r)
  local ae = ear.submods.cpu0.ear_veraison_annotated_evidence.devtee
  return ear.submods.cpu0.ear_trustworthiness_vector["instance-identity"] == 2 and ae ~= nil
end
LUA
expect_exit 0 "$CLOISTER" kbs admin --kbs "http://127.0.0.1:$PA" --admin-key "$SA/admin.key" \
	set-policy --resource cross/key/1 "$TMP/p.lua"
expect_exit 0 "$CLOISTER" kbs admin --kbs "http://127.0.0.1:$PA" --admin-key "$SA/admin.key" \
	put-resource cross/key/1 "$TMP/secret"
st=$(curl -s -o "$d/token" -w '%{http_code}' -b "$d/jar" --data-binary @"$d/attest.json" \
	"http://127.0.0.1:$PB/kbs/v0/attest")
[ "$st" = 200 ] || fail "attest on B: $st $(cat "$d/token")"
st=$(curl -s -o "$d/jwe" -w '%{http_code}' -b "$d/jar" "http://127.0.0.1:$PA/kbs/v0/resource/cross/key/1")
[ "$st" = 200 ] || fail "resource on A: $st $(cat "$d/jwe")"
[ "$($PY decrypt "$d" "$d/jwe")" = "$SECRET" ] || fail "cross-node secret differs"

# --- the agent in the dev TEE, pinned by reference values
# shellcheck disable=SC2086
got=$($DEVTEE_RUN --state "$DT" -- $AGENT 2>"$TMP/agent.err") || fail "agent: $(cat "$TMP/agent.err")"
[ "$got" = "$SECRET" ] || fail "agent secret differs"

# --- load on both, SIGKILL A: every agent still gets the secret (from B)
i=0
while [ $i -lt 12 ]; do
	# shellcheck disable=SC2086
	( $DEVTEE_RUN --state "$DT" -- $AGENT >"$TMP/load.$i" 2>"$TMP/load.$i.err"; echo $? >"$TMP/load.$i.rc" ) &
	i=$((i + 1))
done
sleep 0.3
kill -9 "$PIDA"
wait_all=0
while [ $wait_all -lt 600 ]; do
	n=$(ls "$TMP"/load.*.rc 2>/dev/null | wc -l)
	[ "$n" -ge 12 ] && break
	sleep 0.1
	wait_all=$((wait_all + 1))
done
i=0
while [ $i -lt 12 ]; do
	[ "$(cat "$TMP/load.$i.rc" 2>/dev/null)" = 0 ] || fail "agent $i under SIGKILL: $(cat "$TMP/load.$i.err")"
	[ "$(cat "$TMP/load.$i")" = "$SECRET" ] || fail "agent $i got a different secret"
	i=$((i + 1))
done
# B still serves the stored secret; the store is consistent
# shellcheck disable=SC2086
got=$($DEVTEE_RUN --state "$DT" -- $AGENT 2>/dev/null)
[ "$got" = "$SECRET" ] || fail "secret lost after SIGKILL"
as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$PGPORT" -U postgres -d kbs -Atc \
	"SELECT count(*) FROM resources WHERE path IN ('default/key/1', 'cross/key/1')" >"$TMP/count" ||
	fail "psql"
[ "$(cat "$TMP/count")" = 2 ] || fail "resources table has $(cat "$TMP/count") rows"
# the secret never appears in the database
as_pg "$PGBIN/pg_dump" -h 127.0.0.1 -p "$PGPORT" -U postgres kbs >"$TMP/dump.sql" || fail "pg_dump"
grep -q "$SECRET" "$TMP/dump.sql" && fail "secret in the PostgreSQL dump"
hex=$(printf '%s' "$SECRET" | od -An -tx1 | tr -d ' \n')
grep -q "$hex" "$TMP/dump.sql" && fail "secret (hex) in the PostgreSQL dump"
kill -TERM "$PIDB"
wait "$PIDB"
[ $? = 0 ] || fail "kbs B did not exit cleanly on SIGTERM"
PIDB=
grep -q "Sanitizer\|runtime error" "$TMP/B.log" && { fail "sanitizer report"; cat "$TMP/B.log" >&2; }
for f in "$TMP"/A.log "$TMP"/B.log "$PGD/pg.log"; do
	grep -q -a "$SECRET" "$f" && fail "secret in $f"
done
finish
