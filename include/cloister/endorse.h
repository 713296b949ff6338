/*
 * cloister endorse: pinned vendor roots, endorsement fetching and caching,
 * and Intel DCAP collateral (TCB info, QE identity, CRLs) with TCB status
 * evaluation.
 */
#ifndef CLOISTER_ENDORSE_H
#define CLOISTER_ENDORSE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <openssl/x509.h>

#include "cloister/core.h"

/* ------------------------------------------------------- pinned roots */

enum cl_amd_product { CL_AMD_MILAN = 0, CL_AMD_GENOA, CL_AMD_TURIN, CL_AMD_PRODUCT_COUNT };

const char *cl_amd_product_name(enum cl_amd_product p); /* "Milan", "Genoa", "Turin" */
/*
 * Pinned certificates for a product, parsed once and shared (do not free).
 * ark: the self-signed root; ask: VCEK issuer; asvk: VLEK issuer.
 */
X509 *cl_amd_ark(enum cl_amd_product p);
X509 *cl_amd_ask(enum cl_amd_product p);
X509 *cl_amd_asvk(enum cl_amd_product p);
/* The pinned Intel SGX Root CA (shared, do not free). */
X509 *cl_intel_root(void);
/* The pinned AWS Nitro Enclaves Root-G1 (shared, do not free). */
X509 *cl_aws_nitro_root(void);

/* ------------------------------------------------------------- fetching */

#define CL_MAX_FETCH (4u << 20)

/*
 * HTTP(S) GET into body (at most max bytes). Response headers are kept in
 * headers (raw "Name: value\r\n" lines) when it is not NULL. Non-2xx status
 * gives CL_ERR_NOT_FOUND (404) or CL_ERR_NETWORK.
 */
CL_MUST_USE int cl_http_get(const char *url, size_t max, struct cl_buf *body,
			    struct cl_buf *headers);
/* Find a header (case-insensitive name) in raw headers; malloc'd value. */
CL_MUST_USE int cl_http_header(const struct cl_buf *headers, const char *name, char **value);
/* Percent-decode a string (PCS issuer chain headers); malloc'd. */
CL_MUST_USE int cl_url_decode(const char *in, char **out);

/* ------------------------------------------------------------- caching */

/* The cache directory: dir if not NULL, else $XDG_CACHE_HOME/cloister, else ~/.cache/cloister. */
CL_MUST_USE int cl_cache_path(const char *dir, const char *sub, const char *name, char *out,
			      size_t outlen);
/* Read a cached item; CL_ERR_NOT_FOUND when absent. */
CL_MUST_USE int cl_cache_get(const char *dir, const char *sub, const char *name, size_t max,
			     struct cl_buf *out);
/* Store an item atomically (write to a temp file, fsync, rename). */
CL_MUST_USE int cl_cache_put(const char *dir, const char *sub, const char *name, const void *p,
			     size_t n);

/* ------------------------------------------------- Intel DCAP collateral */

struct cl_intel_collateral;

/*
 * Load collateral from a JSON file in the dcap-qvl layout (keys
 * pck_crl_issuer_chain, root_ca_crl, pck_crl, tcb_info_issuer_chain, tcb_info,
 * tcb_info_signature, qe_identity_issuer_chain, qe_identity,
 * qe_identity_signature), or from a directory holding Intel PCS v4 responses
 * (see docs/collateral.md).
 */
CL_MUST_USE int cl_intel_collateral_load(const char *path, struct cl_intel_collateral **out);
CL_MUST_USE int cl_intel_collateral_parse_json(const uint8_t *p, size_t n,
					       struct cl_intel_collateral **out);
void cl_intel_collateral_free(struct cl_intel_collateral *c);

/*
 * Verify the collateral itself at time `at` (0 = now): TCB info and QE
 * identity signatures and issuer chains to the pinned Intel root, the root
 * CRL, and validity windows (issueDate..nextUpdate, CRL thisUpdate..nextUpdate).
 */
CL_MUST_USE int cl_intel_collateral_verify(struct cl_intel_collateral *c, int64_t at);

/* CRLs to check the PCK chain with (root CA CRL and PCK CRL); owned by c. */
STACK_OF(X509_CRL) * cl_intel_collateral_crls(struct cl_intel_collateral *c);

/* SGX extensions of a PCK certificate (OID 1.2.840.113741.1.13.1). */
struct cl_intel_pck_info {
	uint8_t fmspc[6];
	uint8_t pceid[2];
	uint8_t cpusvn[16]; /* the 16 SGX TCB component SVNs */
	uint16_t pcesvn;
	uint8_t ppid[16];
};

CL_MUST_USE int cl_intel_pck_info(X509 *pck, struct cl_intel_pck_info *out);

/* What TCB evaluation needs from a verified quote. */
struct cl_intel_tcb_input {
	int is_tdx;
	struct cl_intel_pck_info pck;
	/* TDX only: TEE_TCB_SVN and the TDX module identity from the TD report. */
	uint8_t tee_tcb_svn[16];
	uint8_t mr_signer_seam[48];
	uint8_t seam_attributes[8];
	/* The QE report (enclave report of the quoting enclave). */
	uint32_t qe_miscselect;
	uint8_t qe_attributes[16];
	uint8_t qe_mrsigner[32];
	uint16_t qe_isv_prod_id;
	uint16_t qe_isv_svn;
};

/*
 * Intel's TCB status algorithm: match the QE report against the QE identity
 * (failure: CL_ERR_TCB), find the first TCB level the platform meets (SGX
 * components + PCE SVN; for TDX also the TDX components and the TDX module
 * identity), and merge QE and platform status. Writes the status string
 * ("UpToDate", "SWHardeningNeeded", "ConfigurationNeeded",
 * "ConfigurationAndSWHardeningNeeded", "OutOfDate",
 * "OutOfDateConfigurationNeeded", "Revoked") into status and appends advisory
 * ids to the JSON array `advisories`. No matching level: CL_ERR_TCB.
 * Revoked is returned as a status, not an error. The collateral must have
 * passed cl_intel_collateral_verify first (else CL_ERR_ARG).
 */
CL_MUST_USE int cl_intel_tcb_evaluate(const struct cl_intel_collateral *c,
				      const struct cl_intel_tcb_input *in, char status[48],
				      json_t *advisories);

/*
 * Collateral for fmspc from a PCS/PCCS-compatible base URL (e.g.
 * https://api.trustedservices.intel.com), through the cache directory: a
 * cached set that verifies at `at` (0 = now) is returned as is (already
 * verified); otherwise the responses are fetched, stored in the cache
 * (<cache>/intel/<sgx|tdx>-<FMSPC>-<ca>/, the layout of docs/collateral.md)
 * and loaded; the caller verifies them. ca: "platform" or "processor".
 */
CL_MUST_USE int cl_intel_collateral_fetch_at(const char *pcs_url, const char *cache_dir, int is_tdx,
					     const uint8_t fmspc[6], const char *ca, int64_t at,
					     struct cl_intel_collateral **out);
/* The same, with the cache judged at the current time. */
CL_MUST_USE int cl_intel_collateral_fetch(const char *pcs_url, const char *cache_dir, int is_tdx,
					  const uint8_t fmspc[6],
					  const char *ca /* "platform" or "processor" */,
					  struct cl_intel_collateral **out);

#endif
