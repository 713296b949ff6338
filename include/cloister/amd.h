/*
 * cloister AMD endorsements: what a VCEK or VLEK certificate says (the AMD
 * KDS X.509 extensions), product identification, TCB_VERSION layouts, and
 * fetching VCEKs from an AMD Key Distribution Service into the cache.
 *
 * Nothing here decides trust: a certificate's extensions mean something only
 * after its chain to a pinned ARK has been checked (src/evidence/snp.c).
 */
#ifndef CLOISTER_AMD_H
#define CLOISTER_AMD_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

#include "cloister/core.h"
#include "cloister/endorse.h"

#define CL_AMD_CHIP_ID_LEN 64
/* Turin and later identify a chip to KDS by the first 8 bytes of CHIP_ID. */
#define CL_AMD_TURIN_HWID_LEN 8
#define CL_AMD_KDS_DEFAULT    "https://kdsintf.amd.com"
/* Caps on KDS extension strings we keep. */
#define CL_AMD_MAX_PRODUCT_NAME 32
#define CL_AMD_MAX_CSP_ID	256

/*
 * The security patch levels in a TCB_VERSION. Milan and Genoa lay the eight
 * bytes out as bootloader, tee, 4 reserved, snp, microcode; Turin as fmc,
 * bootloader, tee, snp, 3 reserved, microcode.
 */
struct cl_amd_tcb {
	uint8_t fmc; /* Turin only; 0 elsewhere */
	uint8_t bootloader;
	uint8_t tee;
	uint8_t snp;
	uint8_t microcode;
};

void cl_amd_tcb_decode(enum cl_amd_product p, uint64_t raw, struct cl_amd_tcb *out);

/* Product from the CPUID family/model a v3+ report carries. */
CL_MUST_USE int cl_amd_product_from_cpuid(uint8_t family, uint8_t model, enum cl_amd_product *out);
/* Product from a KDS product name ("Milan-B0", "Genoa", "Turin-B0"...). */
CL_MUST_USE int cl_amd_product_from_name(const char *name, enum cl_amd_product *out);

/* The AMD KDS extensions of a VCEK or VLEK certificate. */
struct cl_amd_cert_ext {
	int has_struct_version;
	uint8_t struct_version;
	int has_product;
	char product[CL_AMD_MAX_PRODUCT_NAME]; /* 1.3.6.1.4.1.3704.1.2 */
	/* SPLs 1.3.6.1.4.1.3704.1.3.{1,2,3,8} and .9 (fmc, Turin) */
	int has_tcb;
	int has_fmc;
	struct cl_amd_tcb tcb;
	/* 1.3.6.1.4.1.3704.1.4: VCEK only; 64 bytes (8 on Turin VCEKs) */
	int has_hwid;
	size_t hwid_len;
	uint8_t hwid[CL_AMD_CHIP_ID_LEN];
	/* 1.3.6.1.4.1.3704.1.5: VLEK only, the cloud provider's name */
	int has_csp_id;
	char csp_id[CL_AMD_MAX_CSP_ID];
};

/*
 * Read the KDS extensions. Accepts the encodings KDS has used over time:
 * SPLs as DER INTEGERs, hwID as raw bytes or a DER OCTET STRING. A present
 * but malformed extension is CL_ERR_MALFORMED; absent ones leave has_* 0.
 */
CL_MUST_USE int cl_amd_cert_ext_parse(X509 *cert, struct cl_amd_cert_ext *out);

/* The hwID KDS knows a chip by: all of CHIP_ID, or its first 8 bytes on Turin. */
size_t cl_amd_hwid_len(enum cl_amd_product p);

/*
 * GET {base}/vcek/v1/{product}/{hwid}?[fmcSPL=..&]blSPL=..&teeSPL=..&snpSPL=..&ucodeSPL=..
 * (base NULL: CL_AMD_KDS_DEFAULT).
 */
CL_MUST_USE int cl_amd_kds_vcek_url(const char *base, enum cl_amd_product p,
				    const uint8_t chip_id[CL_AMD_CHIP_ID_LEN],
				    const struct cl_amd_tcb *tcb, char *out, size_t outlen);

/* Cache file name (under "amd/") for a VCEK: {product}-{hwid}-{tcb hex}.der */
CL_MUST_USE int cl_amd_vcek_cache_name(enum cl_amd_product p,
				       const uint8_t chip_id[CL_AMD_CHIP_ID_LEN], uint64_t tcb,
				       char *out, size_t outlen);

/*
 * Fetch a VCEK certificate body from KDS (at most CL_MAX_CERT_DER bytes).
 * The body is untrusted; callers verify it and only then cache it.
 * HTTP 404 gives CL_ERR_NOT_FOUND.
 */
CL_MUST_USE int cl_amd_kds_fetch_vcek(const char *base, enum cl_amd_product p,
				      const uint8_t chip_id[CL_AMD_CHIP_ID_LEN], uint64_t tcb,
				      struct cl_buf *out);

/* ------------------------------------------------------------ revocation */

#define CL_AMD_MAX_CRL (64 * 1024)

/* GET {base}/vcek/v1/{product}/crl, or /vlek/ (base NULL: CL_AMD_KDS_DEFAULT). */
CL_MUST_USE int cl_amd_kds_crl_url(const char *base, enum cl_amd_product p, int vlek, char *out,
				   size_t outlen);
/* Cache file name (under "amd/"): crl-{vcek|vlek}-{product}.der */
CL_MUST_USE int cl_amd_crl_cache_name(enum cl_amd_product p, int vlek, char *out, size_t outlen);
/* Fetch the CRL body from KDS (untrusted; check it before caching). 404: CL_ERR_NOT_FOUND. */
CL_MUST_USE int cl_amd_kds_fetch_crl(const char *base, enum cl_amd_product p, int vlek,
				     struct cl_buf *out);
/*
 * Check an intermediate (ASK or ASVK) against an AMD CRL in DER or PEM: the
 * CRL must name ark as its issuer, carry ark's signature and be valid at
 * `at` (0 = now). CL_OK when the intermediate is not listed, CL_ERR_REVOKED
 * when it is; CL_ERR_MALFORMED, CL_ERR_CHAIN, CL_ERR_SIGNATURE or
 * CL_ERR_EXPIRED when the CRL cannot be used.
 */
CL_MUST_USE int cl_amd_crl_check(const uint8_t *crl, size_t n, X509 *ark, X509 *intermediate,
				 int64_t at);

#endif
