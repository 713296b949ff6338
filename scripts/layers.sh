#!/bin/sh
# The layering of src/: a component may use its own layer and those below,
# never one above, and the files of one folder must not include one another
# in a circle.
#
#   core < crypto < endorse < evidence < appraise
#        < attest, devtee, kbs, ratls, agent < cli
#
#   scripts/layers.sh [BUILD]
#
# Always checks the include graph (src/*/*.[ch], include/cloister/*.h). Given
# a build directory whose BUILD/obj/src/*/*.o exist, also checks the call
# graph from the objects' symbols: no call into a higher layer, and no call
# circle between the files of a folder named in LAYERS_ACYCLIC (default:
# evidence); circles in other folders are listed, not failed.
set -eu
cd "$(dirname "$0")/.."
BUILD=${1:-}
ACYCLIC=${LAYERS_ACYCLIC:-evidence}

rank() {
	case $1 in
	core) echo 0 ;;
	crypto) echo 1 ;;
	endorse) echo 2 ;;
	evidence) echo 3 ;;
	appraise) echo 4 ;;
	attest | devtee | kbs | ratls | agent) echo 5 ;;
	cli) echo 6 ;;
	*) echo unknown ;;
	esac
}

# The component each public header belongs to (where it is implemented).
header_owner() {
	case $1 in
	core.h | memo.h) echo core ;;
	crypto.h | jws.h) echo crypto ;;
	endorse.h | amd.h) echo endorse ;;
	evidence.h | snp.h | dcap.h | tpm.h | eventlog.h | cbor.h | cose.h | devtee_report.h) echo evidence ;;
	appraise.h) echo appraise ;;
	attest.h | attest_tpm.h) echo attest ;;
	devtee.h) echo devtee ;;
	kbs.h) echo kbs ;;
	kbs_client.h) echo agent ;;
	ratls.h) echo ratls ;;
	*) echo unknown ;;
	esac
}

fail=0
edges=$(mktemp)
trap 'rm -f "$edges" "$edges.calls" "$edges.syms"' EXIT

# ------------------------------------------------------------- includes
for f in include/cloister/*.h src/*/*.c src/*/*.h; do
	case $f in
	include/*) comp=$(header_owner "$(basename "$f")") ;;
	*) comp=$(echo "$f" | cut -d/ -f2) ;;
	esac
	if [ "$(rank "$comp")" = unknown ]; then
		echo "layers: $f: component '$comp' has no layer (add it to scripts/layers.sh)"
		fail=1
		continue
	fi
	sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f" |
		while read -r inc; do
			case $inc in
			cloister/*)
				owner=$(header_owner "${inc#cloister/}")
				echo "$f include/$inc $comp $owner"
				;;
			*/*) echo "$f src/$inc $comp $(echo "$inc" | cut -d/ -f1)" ;;
			*)
				case $f in
				include/*) echo "$f include/cloister/$inc $comp $comp" ;;
				*) echo "$f $(dirname "$f")/$inc $comp $comp" ;;
				esac
				;;
			esac
		done
done >"$edges"

while read -r from to fc tc; do
	case $to in *.c | *.h) ;; *) continue ;; esac
	if [ "$(rank "$tc")" = unknown ]; then
		echo "layers: $from includes $to, which belongs to no known component"
		fail=1
	elif [ "$(rank "$tc")" -gt "$(rank "$fc")" ]; then
		echo "layers: $from ($fc) includes $to ($tc), a higher layer"
		fail=1
	fi
done <"$edges"

# Circles: depth-first search over the file graph of each folder.
find_circles() { # stdin: "from to" edges, prints each circle found
	awk '
	{ adj[$1] = adj[$1] " " $2; node[$1] = 1; node[$2] = 1 }
	function dfs(u, path,   n, i, v, vs) {
		state[u] = 1
		n = split(adj[u], vs, " ")
		for (i = 1; i <= n; i++) {
			v = vs[i]
			if (state[v] == 1) { print path " -> " v; found = 1 }
			else if (state[v] == 0) dfs(v, path " -> " v)
		}
		state[u] = 2
	}
	END { for (u in node) if (state[u] == 0) dfs(u, u); exit found ? 1 : 0 }'
}

if ! awk '$3 == $4 { print $1, $2 }' "$edges" | find_circles; then
	echo "layers: include circle(s) above"
	fail=1
fi

# ---------------------------------------------------------------- calls
if [ -n "$BUILD" ] && ls "$BUILD"/obj/src/*/*.o >/dev/null 2>&1; then
	for o in "$BUILD"/obj/src/*/*.o; do
		f=${o#"$BUILD"/obj/}
		nm "$o" | awk -v f="${f%.o}" '
			$2 ~ /^[TDBRC]$/ { print "D", f, $3 }
			$1 == "U" { print "U", f, $2 }'
	done >"$edges.syms"
	awk '$1 == "D" { def[$3] = $2; next }
	     { use[NR] = $2 " " $3 }
	     END { for (i in use) { split(use[i], a, " ");
		   if ((a[2] in def) && def[a[2]] != a[1]) print a[1], def[a[2]], a[2] } }' \
		"$edges.syms" | sort -u >"$edges.calls"
	while read -r from to sym; do
		fc=$(echo "$from" | cut -d/ -f2)
		tc=$(echo "$to" | cut -d/ -f2)
		if [ "$(rank "$tc")" != unknown ] && [ "$(rank "$fc")" != unknown ] &&
			[ "$(rank "$tc")" -gt "$(rank "$fc")" ]; then
			echo "layers: $from ($fc) calls $sym in $to ($tc), a higher layer"
			fail=1
		fi
	done <"$edges.calls"
	for d in $(awk '{ split($1, a, "/"); print a[2] }' "$edges.calls" | sort -u); do
		out=$(awk -v d="$d" '{ split($1, a, "/"); split($2, b, "/") }
			a[2] == d && b[2] == d { print $1, $2 }' "$edges.calls" | sort -u |
			find_circles) && continue
		case " $ACYCLIC " in
		*" $d "*)
			echo "layers: call circle(s) in src/$d:"
			echo "$out" | sed 's/^/  /'
			fail=1
			;;
		*)
			echo "layers: note: call circle(s) in src/$d:"
			echo "$out" | sed 's/^/  /'
			;;
		esac
	done
fi

[ "$fail" = 0 ] && echo "layers: ok"
exit "$fail"
