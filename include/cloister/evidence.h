/*
 * cloister evidence: verify hardware attestation evidence offline and turn it
 * into normalised claims.
 *
 *   struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
 *   struct cl_verify_result r = {0};
 *   cl_verify_evidence(bytes, len, &o, &r);   // r.status == CL_OK: verified
 *   ... json_dumps(r.claims, ...) ...
 *   cl_verify_result_free(&r);
 */
#ifndef CLOISTER_EVIDENCE_H
#define CLOISTER_EVIDENCE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cloister/core.h"

enum cl_format {
	CL_FORMAT_AUTO = 0,
	CL_FORMAT_SNP,
	CL_FORMAT_TDX,
	CL_FORMAT_SGX,
	CL_FORMAT_DEVTEE,
	CL_FORMAT_TPM,
	CL_FORMAT_PSA,
	CL_FORMAT_NITRO,
};

/* "snp", "tdx", "sgx"; "auto" for CL_FORMAT_AUTO. */
const char *cl_format_name(enum cl_format f);
CL_MUST_USE int cl_format_parse(const char *s, enum cl_format *out);
/* Guess the format of raw evidence from its header; CL_FORMAT_AUTO if unknown. */
enum cl_format cl_format_detect(const uint8_t *ev, size_t n);

#define CL_REPORT_DATA_LEN 64
#define CL_MAX_EVIDENCE	   (1u << 20)
/*
 * Binary evidence (SNP report, DCAP quote, dev-TEE report) is often handed
 * over in the fixed-size buffer a driver or quoting service filled, so bytes
 * may follow the signed structure. They are accepted whatever their value,
 * never interpreted, and counted in the claims as "trailing_bytes"; more than
 * this many make the evidence oversized (CL_ERR_MALFORMED).
 */
#define CL_MAX_TRAILING (64u << 10)

/*
 * What a verification may use and must demand. Options that every format
 * reads are at the top; each platform's own are in its group (o.snp.vcek,
 * o.dcap.collateral, o.tpm.ak, o.devtee.root, o.psa.iak). Zero-initialise
 * (CL_VERIFY_OPTS_INIT) and set what applies: an unset option means "none
 * given", never "anything goes". Buffers are borrowed for the call.
 */
struct cl_verify_opts {
	enum cl_format format; /* CL_FORMAT_AUTO: detect */
	/* Verification time, seconds since the epoch; 0 = now. */
	int64_t at;
	/* Demand this exact REPORT_DATA when have_report_data is set. */
	uint8_t report_data[CL_REPORT_DATA_LEN];
	int have_report_data;
	/* Accept evidence from debuggable guests/enclaves. */
	int allow_debug;
	/* Never touch the network (cache and given files only). */
	int offline;
	/* Collateral cache directory; NULL = $XDG_CACHE_HOME/cloister. */
	const char *cache_dir;
	/*
	 * Do every check from scratch: bypass the process-wide caches of
	 * verified certificate chains and collateral (benchmarks, tests).
	 */
	int no_cache;

	struct {
		/* VCEK or VLEK certificate (DER or PEM). NULL: cache, then KDS. */
		const uint8_t *vcek;
		size_t vcek_len;
		/*
		 * ASK/ASVK (+ARK) chain in PEM replacing the pinned intermediates
		 * (the ARK must still be a pinned root).
		 */
		const uint8_t *certs;
		size_t certs_len;
		/* AMD KDS base URL; NULL = https://kdsintf.amd.com */
		const char *kds_url;
		/*
		 * AMD's CRL of the ASKs/ASVKs (DER or PEM). Given, it must be
		 * usable and is checked. NULL: the cached CRL if any (claim
		 * "revocation": "checked"), fetched from KDS when the VCEK is; with
		 * none, the report verifies with "revocation": "unchecked".
		 */
		const uint8_t *crl;
		size_t crl_len;
	} snp;

	struct {
		/* Collateral: a JSON file, or a directory of PCS responses. */
		const char *collateral;
		/* PCK chain (PEM) used when the quote carries none. */
		const uint8_t *pck_chain;
		size_t pck_chain_len;
		/* Intel PCS/PCCS base URL; NULL = no collateral fetch. */
		const char *pcs_url;
	} dcap;

	struct {
		/*
		 * The attestation key the caller trusts (PEM or DER
		 * SubjectPublicKeyInfo, TPM2B_PUBLIC or TPMT_PUBLIC), or roots (PEM)
		 * an AK certificate in the evidence must chain to. Without either,
		 * TPM evidence is rejected.
		 */
		const uint8_t *ak;
		size_t ak_len;
		const uint8_t *ak_roots;
		size_t ak_roots_len;
		/* Demand exactly this quote extraData (qualifying data) when non-NULL. */
		const uint8_t *nonce;
		size_t nonce_len;
	} tpm;

	struct {
		/*
		 * The development root certificate as NUL-terminated PEM text
		 * (DIR/root.pem of `cloister devtee`). NULL: dev-TEE evidence is
		 * rejected.
		 */
		const char *root;
	} devtee;

	struct {
		/*
		 * The device's Initial Attestation Key: a JWK (JSON) or a PEM/DER
		 * SubjectPublicKeyInfo, EC P-256 or P-384. There is no vendor root
		 * for PSA: without it, PSA tokens are rejected.
		 */
		const uint8_t *iak;
		size_t iak_len;
	} psa;

	struct {
		/*
		 * Demand exactly this nonce in the attestation document when
		 * non-NULL (the root is pinned: nothing else to give).
		 */
		const uint8_t *nonce;
		size_t nonce_len;
	} nitro;
};

#define CL_VERIFY_OPTS_INIT                                                                        \
	{                                                                                          \
		0                                                                                  \
	}

struct cl_verify_result {
	int status;	       /* CL_OK when verified, else a cl_err */
	enum cl_format format; /* what the evidence was parsed as */
	char reason[512];      /* why it was rejected; "" when verified */
	json_t *claims;	       /* owned; NULL if the evidence did not parse */
};

/*
 * Parse and verify evidence. Returns res->status. Claims are filled whenever
 * the evidence parsed, so a caller can show what was rejected.
 */
CL_MUST_USE int cl_verify_evidence(const uint8_t *ev, size_t n, const struct cl_verify_opts *opts,
				   struct cl_verify_result *res);
void cl_verify_result_free(struct cl_verify_result *res);

#endif
