#!/bin/sh
# Install the Debian packages cloister needs to build and test, and nothing
# that is already there. Safe to run any number of times.
set -eu

PKGS="
build-essential
pkg-config
clang
clang-format
libclang-rt-14-dev
libssl-dev
openssl
libjansson-dev
libcbor-dev
libcurl4-openssl-dev
liblua5.4-dev
libjose-dev
python3-jwcrypto
python3-cbor2
libtss2-dev
tpm2-tools
swtpm
swtpm-tools
libseccomp-dev
libevent-dev
libsqlite3-dev
libpq-dev
postgresql
python3
ca-certificates
curl
"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing Debian packages:$missing" >&2
	echo "deps: run as root (or: sudo $0) to install them" >&2
	exit 1
fi

echo "deps: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
