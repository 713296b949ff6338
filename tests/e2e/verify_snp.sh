#!/bin/sh
# SEV-SNP through the CLI: the real go-sev-guest and trustee reports, and
# tampered copies of them.
set -u
. "$(dirname "$0")/lib.sh"
G=$V/sev-snp/go-sev-guest
T=$V/sev-snp/trustee
AT=2025-06-01T00:00:00Z
verify() { "$CLOISTER" verify --offline --cache-dir "$TMP/cache" "$@"; }

# go-sev-guest: policy 0xb0000 allows debugging.
expect_exit 1 verify --vcek "$G/vcek_milan.der" --at 2022-09-24T01:00:00Z "$G/attestation.bin"
expect_json status rejected
grep -q debug "$OUT" || fail "debug rejection names debugging"
expect_json claims.debug true
expect_exit 0 verify --allow-debug --vcek "$G/vcek_milan.der" --at 2022-09-24T01:00:00Z "$G/attestation.bin"
expect_json format snp
expect_json claims.platform snp
expect_json claims.product Milan
expect_json claims.measurement b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01
expect_json claims.report_data 01020304050000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
expect_json claims.reported_tcb.microcode 68
expect_exit 0 verify --allow-debug --report-data 0102030405 --vcek "$G/vcek_milan.der" \
	--at 2022-09-24T01:00:00Z "$G/attestation.bin"
expect_exit 1 verify --allow-debug --report-data 0102030406 --vcek "$G/vcek_milan.der" \
	--at 2022-09-24T01:00:00Z "$G/attestation.bin"
expect_exit 1 verify --allow-debug --vcek "$G/vcek_milan.der" --at 2030-01-01T00:00:00Z "$G/attestation.bin"

# trustee: a VCEK-signed and a VLEK-signed Milan report.
expect_exit 0 verify --vcek "$T/test-vcek.der" --at "$AT" "$T/test-report.bin"
expect_json claims.measurement a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c
expect_json claims.signing_key vcek
expect_json claims.guest_svn 4
expect_exit 0 verify --format snp --vcek "$T/test-vcek.der" --at 2023-06-01T00:00:00Z "$T/test-report.bin"
expect_exit 0 verify --vcek "$T/test-vlek.der" --at "$AT" "$T/test-vlek-report.bin"
expect_json claims.signing_key vlek
expect_json claims.vmpl 1
expect_json claims.chip_id 00000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000
# PEM works as well as DER; the KDS chain files may replace the pinned intermediates.
openssl x509 -inform der -in "$T/test-vcek.der" -out "$TMP/vcek.pem" 2>/dev/null
expect_exit 0 verify --vcek "$TMP/vcek.pem" --certs "$G/ask_ark_milan.pem" --at "$AT" "$T/test-report.bin"
expect_exit 0 verify --vcek "$T/test-vlek.der" --certs "$T/milan_ask_ark_asvk.pem" --at "$AT" "$T/test-vlek-report.bin"

# Negatives.
expect_exit 1 verify --vcek "$T/test-vcek.der" --at "$AT" --allow-debug "$G/attestation.bin"
expect_exit 1 verify --vcek "$T/test-vcek.der" --certs "$G/ask_ark_milan_vlek.pem" --at "$AT" "$T/test-report.bin"
expect_json status rejected
expect_exit 1 verify --at "$AT" "$T/test-vlek-report.bin"
grep -q -- "--vcek" "$OUT" || fail "VLEK without a certificate asks for --vcek"
flip() { # flip FILE OFFSET OUT
	python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[int(sys.argv[2], 0)] ^= 1; open(sys.argv[3], "wb").write(b)' "$@"
}
for f in test-report test-vlek-report; do
	cert=test-vcek.der
	[ "$f" = test-vlek-report ] && cert=test-vlek.der
	for off in 42 0x180 0x2a0 0x2e8; do
		flip "$T/$f.bin" "$off" "$TMP/bad.bin"
		expect_exit 1 verify --vcek "$T/$cert" --at "$AT" "$TMP/bad.bin"
		expect_json status rejected
	done
	flip "$T/$cert" 42 "$TMP/bad.der"
	expect_exit 1 verify --vcek "$TMP/bad.der" --at "$AT" "$T/$f.bin"
	head -c 1000 "$T/$f.bin" >"$TMP/short.bin"
	expect_exit 1 verify --format snp --vcek "$T/$cert" --at "$AT" "$TMP/short.bin"
done

# AMD's CRL: none given or cached leaves revocation unchecked; a CRL given must
# be usable; a file that cannot be read is a usage error.
expect_exit 0 verify --offline --cache-dir "$TMP/cache" --vcek "$T/test-vcek.der" --at "$AT" "$T/test-report.bin"
expect_json claims.revocation unchecked
printf 'not a CRL' >"$TMP/bad.crl"
expect_exit 1 verify --crl "$TMP/bad.crl" --vcek "$T/test-vcek.der" --at "$AT" "$T/test-report.bin"
grep -q "CRL" "$OUT" || fail "an unusable CRL is named in the reason: $(cat "$OUT")"
expect_exit 2 verify --crl "$TMP/missing.crl" --vcek "$T/test-vcek.der" --at "$AT" "$T/test-report.bin"
grep -q -- "--crl" "$ERR" || fail "a missing --crl file is named: $(cat "$ERR")"

finish
