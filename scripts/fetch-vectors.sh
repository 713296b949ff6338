#!/bin/sh
# Fetch cloister's test vectors (real evidence from real hardware, published
# in public repositories) at pinned commits and check every file's sha256.
#
#   scripts/fetch-vectors.sh [DEST]      DEST defaults to $CLOISTER_VECTORS or ../shared/vectors
#
# Files already present with the right hash are kept. The list, with origins
# and hashes, is scripts/vectors.manifest.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
dest=${1:-${CLOISTER_VECTORS:-$here/../../shared/vectors}}
manifest=$here/vectors.manifest
base=${VECTORS_BASE_URL:-https://raw.githubusercontent.com}

mkdir -p "$dest"
fail=0
fetched=0
kept=0

check() { # file sha256
	[ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

extract() { # how source out
	python3 - "$1" "$2" "$3" <<'PY'
import json, re, sys, zipfile
how, src, out = sys.argv[1:4]
if how == "last-cert-of-tcb_info_issuer_chain":
    chain = json.load(open(src))["tcb_info_issuer_chain"]
    certs = re.findall(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----\n?", chain, re.S)
    open(out, "w").write(certs[-1])
elif how == "zip-member-root.pem":
    with zipfile.ZipFile(src) as z:
        open(out, "wb").write(z.read("root.pem"))
elif how.startswith("go-hex-") or how.startswith("go-jwk-public-"):
    # A Go raw string (NAME := `...` or NAME = `...`) in a Go test file.
    name = how.split("-", 3)[-1] if how.startswith("go-jwk-") else how[len("go-hex-"):]
    m = re.search(r"\b" + re.escape(name) + r"\s*:?=\s*`([^`]*)`", open(src).read())
    if not m:
        sys.exit("no raw string " + name + " in " + src)
    if how.startswith("go-hex-"):
        # hex split over lines, '#' comments allowed (psatoken's mustHexDecode)
        hexs = re.sub(r"[ \t\n]", "", re.sub(r"#.*\n", "", m.group(1)))
        open(out, "wb").write(bytes.fromhex(hexs))
    else:
        # the public part of a JWK, in a fixed layout
        k = json.loads(m.group(1))
        pub = {f: k[f] for f in ("kty", "crv", "x", "y")}
        open(out, "w").write(json.dumps(pub, indent=2) + "\n")
else:
    sys.exit("unknown extraction " + how)
PY
}

# Extracted files depend on others, so do plain downloads first.
for pass in fetch extract; do
	grep -v '^#' "$manifest" | while read -r local repo commit path sum; do
		out=$dest/$local
		case $path in
		extract:*) [ $pass = extract ] || continue ;;
		*) [ $pass = fetch ] || continue ;;
		esac
		if check "$out" "$sum"; then
			continue
		fi
		mkdir -p "$(dirname "$out")"
		case $path in
		extract:*)
			how=$(echo "$path" | cut -d: -f2)
			src=$(echo "$path" | cut -d: -f3)
			extract "$how" "$dest/$src" "$out.tmp"
			;;
		*)
			curl -fsSL --retry 3 -o "$out.tmp" "$base/$repo/$commit/$path"
			;;
		esac
		if check "$out.tmp" "$sum"; then
			mv "$out.tmp" "$out"
			echo "fetched $local"
		else
			rm -f "$out.tmp"
			echo "sha256 mismatch: $local ($repo@$commit:$path)" >&2
			exit 1
		fi
	done || fail=1
done
if [ $fail -ne 0 ]; then
	echo "fetch-vectors: failed" >&2
	exit 1
fi
echo "fetch-vectors: all files in $dest match scripts/vectors.manifest"
