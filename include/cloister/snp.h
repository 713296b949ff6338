/*
 * cloister SEV-SNP: the ATTESTATION_REPORT structure (AMD SEV-SNP firmware
 * ABI, "ATTESTATION_REPORT Structure") and a pure parser for it. Verification
 * lives behind cl_verify_evidence(); see docs/snp.md.
 */
#ifndef CLOISTER_SNP_H
#define CLOISTER_SNP_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cloister/core.h"

#define CL_SNP_REPORT_SIZE 0x4A0
/* The signature covers every byte before it. */
#define CL_SNP_SIGNED_SIZE 0x2A0
/* ECDSA P-384: r and s are 72-byte little-endian fields; only 48 bytes are used. */
#define CL_SNP_SIG_COMPONENT		  72
#define CL_SNP_P384_LEN			  48

#define CL_SNP_SIG_ALGO_ECDSA_P384_SHA384 1
#define CL_SNP_POLICY_DEBUG		  (UINT64_C(1) << 19)
#define CL_SNP_POLICY_RESERVED_ONE	  (UINT64_C(1) << 17)

enum cl_snp_signer { CL_SNP_SIGNER_VCEK = 0, CL_SNP_SIGNER_VLEK = 1 };

struct cl_snp_report {
	uint32_t version;
	uint32_t guest_svn;
	uint64_t policy;
	uint8_t family_id[16];
	uint8_t image_id[16];
	uint32_t vmpl;
	uint32_t sig_algo;
	uint64_t current_tcb;
	uint64_t platform_info;
	uint32_t key_info;
	uint8_t report_data[64];
	uint8_t measurement[48];
	uint8_t host_data[32];
	uint8_t id_key_digest[48];
	uint8_t author_key_digest[48];
	uint8_t report_id[32];
	uint8_t report_id_ma[32];
	uint64_t reported_tcb;
	/* v3 and later; 0 in v2 reports. */
	int has_cpuid;
	uint8_t cpuid_fam_id;
	uint8_t cpuid_mod_id;
	uint8_t cpuid_step;
	uint8_t chip_id[64];
	uint64_t committed_tcb;
	uint8_t current_build, current_minor, current_major;
	uint8_t committed_build, committed_minor, committed_major;
	uint64_t launch_tcb;
	/* v4 and later; 0 before. */
	int has_mit_vectors;
	uint64_t launch_mit_vector;
	uint64_t current_mit_vector;
	/* Signature as big-endian P-384 scalars, ready for ECDSA. */
	uint8_t sig_r[CL_SNP_P384_LEN];
	uint8_t sig_s[CL_SNP_P384_LEN];

	/* Decoded from key_info and policy. */
	enum cl_snp_signer signer;
	int author_key_en;
	int mask_chip_key;
	int debug;
	/* Unsigned bytes after the report (never interpreted). */
	size_t trailing;
};

/*
 * Parse the CL_SNP_REPORT_SIZE bytes of a report; up to CL_MAX_TRAILING bytes
 * may follow (counted in out->trailing, never read). No I/O, no signature
 * check. Rejects: fewer bytes, more trailing bytes, versions other than 2..5, signature algorithms other
 * than ECDSA P-384 with SHA-384, signing keys other than VCEK and VLEK,
 * policy bit 17 clear, and nonzero reserved fields (including the unused high
 * bytes of r and s and the padding after them).
 */
CL_MUST_USE int cl_snp_report_parse(const uint8_t *p, size_t n, struct cl_snp_report *out);

/* Largest JSON text cl_snp_report_from_serde_json() reads (a report with a
 * VCEK chain is under 16 KiB). */
#define CL_SNP_SERDE_MAX_JSON (256 * 1024)

/*
 * Rebuild the binary report from the `sev` crate's serde JSON form of
 * AttestationReport (Trustee's snp evidence): integers and byte-integer
 * arrays, TCBs as {fmc, bootloader, tee, snp, microcode}, versions as
 * {major, minor, build}, signature as {r, s}. Every field is required with
 * its exact length and range, except launch_mit_vector/current_mit_vector
 * (absent or null means zero); unknown keys are refused. Reserved bytes come
 * out zero. No I/O, no signature check; on error `out` is all zero.
 * u64 fields are limited to INT64_MAX, as JSON integers are here.
 */
CL_MUST_USE int cl_snp_report_from_serde(const json_t *report, uint8_t out[CL_SNP_REPORT_SIZE]);

/* The same from JSON text: the report object itself, or an object holding it
 * under "attestation_report". At most CL_SNP_SERDE_MAX_JSON bytes; duplicate
 * keys refused. On error `out` is all zero. */
CL_MUST_USE int cl_snp_report_from_serde_json(const char *text, size_t n,
					      uint8_t out[CL_SNP_REPORT_SIZE]);

/*
 * Drop the process-wide cache of verified VCEK/VLEK chains (tests and
 * long-running services that rotate endorsements).
 */
void cl_snp_cache_clear(void);

#endif
