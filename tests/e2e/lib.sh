# Shared helpers for the end-to-end scripts (POSIX sh). Source it first.
# Provides $CLOISTER, $V (vectors), $TMP (removed at exit), expect_exit,
# json_get, fail and finish.
: "${CLOISTER:?set CLOISTER to the cloister binary}"
V=${CLOISTER_VECTORS:-../shared/vectors}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cloister-e2e.XXXXXX")
OUT=$TMP/stdout
ERR=$TMP/stderr
FAILS=0
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

fail() {
	echo "  FAIL: $*" >&2
	FAILS=$((FAILS + 1))
}

# expect_exit CODE CMD...: run CMD, keep stdout/stderr in $OUT/$ERR.
expect_exit() {
	want=$1
	shift
	"$@" >"$OUT" 2>"$ERR"
	got=$?
	if [ "$got" -ne "$want" ]; then
		fail "exit $got (want $want): $*"
		sed 's/^/    stdout: /' "$OUT" | head -20 >&2
		sed 's/^/    stderr: /' "$ERR" | head -20 >&2
	fi
	return 0
}

# json_get PATH < json: print a value (dotted path, e.g. claims.debug) with python3.
json_get() {
	python3 -c '
import json, sys
v = json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v[int(k)] if isinstance(v, list) else v.get(k) if isinstance(v, dict) else None
print(json.dumps(v) if isinstance(v, (dict, list, bool)) or v is None else v)
' "$1"
}

# expect_json PATH VALUE: check a value in the last command's stdout.
expect_json() {
	got=$(json_get "$1" <"$OUT" 2>/dev/null)
	[ "$got" = "$2" ] || fail "$1 is '$got', want '$2'"
}

finish() {
	if [ "$FAILS" -ne 0 ]; then
		echo "  $FAILS failure(s)" >&2
		exit 1
	fi
	echo "  ok" >&2
	exit 0
}
