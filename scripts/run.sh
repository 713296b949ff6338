#!/bin/sh
# The main job (`make run`):
#   1. verify the real hardware evidence in $CLOISTER_VECTORS offline and print
#      what was checked (skipped, with a note, when there are no vectors);
#   2. `cloister demo`: a KBS on loopback releases a secret to a workload in the
#      development TEE and refuses the same workload modified by one line.
# Exit 0 only when both behaved as expected; the last line is then the
# demo's `demo: ok ...`.
#   scripts/run.sh [CLOISTER_BINARY]
set -u
CLOISTER=${1:-build/cloister}
V=${CLOISTER_VECTORS:-../shared/vectors}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/cloister-run.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT TERM

ok=0
bad=0

# case NAME EXPECT(verified|rejected) EVIDENCE [verify options...]
case_() {
	name=$1 want=$2 ev=$3
	shift 3
	t0=$(date +%s%N)
	"$CLOISTER" verify --offline --cache-dir "$TMP/cache" "$@" "$V/$ev" >"$TMP/out" 2>"$TMP/err"
	rc=$?
	t1=$(date +%s%N)
	us=$(((t1 - t0) / 1000))
	summary=$(python3 - "$TMP/out" <<'PY'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
except Exception:
    print("no JSON output"); sys.exit()
c = d.get("claims") or {}
parts = [d.get("format", "?")]
if c.get("measurement"): parts.append("measurement " + c["measurement"][:16] + "…")
if c.get("tcb_status"): parts.append("tcb " + c["tcb_status"])
if c.get("advisory_ids"): parts.append("advisories " + ",".join(c["advisory_ids"]))
if c.get("debug"): parts.append("debug")
if d.get("reason"): parts.append("reason: " + d["reason"])
print("; ".join(parts))
PY
)
	got=rejected
	[ $rc -eq 0 ] && got=verified
	[ $rc -ge 2 ] && got="error($rc)"
	if [ "$got" = "$want" ]; then
		mark=ok
		ok=$((ok + 1))
	else
		mark=UNEXPECTED
		bad=$((bad + 1))
	fi
	printf '%-11s %-44s %-9s %7sms  %s\n' "$mark" "$name" "$got" "$((us / 1000)).$(((us % 1000) / 100))" "$summary"
}

vectors() {
	echo "== real TEE evidence, verified offline"
	echo "vectors: $V"
	echo
	case_ "SNP Milan VCEK (trustee)" verified sev-snp/trustee/test-report.bin \
		--vcek "$V/sev-snp/trustee/test-vcek.der" --at 2025-06-01T00:00:00Z
	case_ "SNP Milan VLEK (trustee)" verified sev-snp/trustee/test-vlek-report.bin \
		--vcek "$V/sev-snp/trustee/test-vlek.der" --at 2025-06-01T00:00:00Z
	case_ "SNP debug guest, default policy" rejected sev-snp/go-sev-guest/attestation.bin \
		--vcek "$V/sev-snp/go-sev-guest/vcek_milan.der" --at 2022-09-24T01:00:00Z
	case_ "SNP debug guest, --allow-debug" verified sev-snp/go-sev-guest/attestation.bin \
		--vcek "$V/sev-snp/go-sev-guest/vcek_milan.der" --at 2022-09-24T01:00:00Z --allow-debug
	case_ "SNP report with the wrong VCEK" rejected sev-snp/trustee/test-report.bin \
		--vcek "$V/sev-snp/go-sev-guest/vcek_milan.der" --at 2025-06-01T00:00:00Z
	case_ "TDX quote v4 + collateral" verified tdx/dcap-qvl/tdx_quote \
		--collateral "$V/tdx/dcap-qvl/tdx_quote_collateral.json" --at 2025-07-01T00:00:00Z
	case_ "TDX quote, collateral expired" rejected tdx/dcap-qvl/tdx_quote \
		--collateral "$V/tdx/dcap-qvl/tdx_quote_collateral.json" --at 2026-07-01T00:00:00Z
	case_ "TDX 1.5 quote v5, no matching TCB level" rejected tdx/dcap-qvl/tdx_quote_outdated \
		--collateral "$V/tdx/dcap-qvl/tdx_quote_outdated_collateral.json" --at 2026-03-01T00:00:00Z
	case_ "SGX quote v3 + collateral" verified sgx/dcap-qvl/sgx_quote \
		--collateral "$V/sgx/dcap-qvl/sgx_quote_collateral.json" --at 2025-07-01T00:00:00Z
	case_ "Nitro Enclaves document (AWS root)" verified nitro/blocky-nitrite/nitro_attestation.b64 \
		--at 2024-09-07T14:37:39Z
	case_ "Nitro debug-mode document" rejected nitro/blocky-nitrite/nitro_attestation_debug.b64 \
		--at 2024-09-07T14:38:06Z
	case_ "Nitro document, self-signed chain" rejected nitro/blocky-nitrite/selfsigned_attestation.b64 \
		--at 2024-04-17T18:51:46Z
	case_ "PSA token (TF-M), its IAK given" verified psa/veraison-psatoken/tfm-p2-token.cbor \
		--psa-iak "$V/psa/veraison-psatoken/tfm-iak-pub.jwk.json"
	case_ "PSA token, no IAK" rejected psa/veraison-psatoken/tfm-p1-token.cbor
	echo
	if [ $bad -eq 0 ]; then
		echo "vectors: ok: all $ok evidence checks behaved as expected"
	else
		echo "vectors: FAILED: $bad of $((ok + bad)) checks did not behave as expected"
	fi
}

echo "cloister $("$CLOISTER" version | cut -d' ' -f2)"
echo
if [ -d "$V" ]; then
	vectors
else
	echo "== real TEE evidence: skipped, no vectors at $V (set CLOISTER_VECTORS or run"
	echo "   scripts/fetch-vectors.sh)"
fi
echo
echo "== the main job: cloister demo"
"$CLOISTER" demo
demo=$?
if [ $bad -ne 0 ]; then
	echo "run: FAILED: $bad evidence check(s) did not behave as expected" >&2
	exit 1
fi
exit $demo
