/*
 * Intel DCAP collateral internals shared by intel_collateral.c (parse,
 * verify, caches), intel_tcb.c (TCB status) and intel_pcs.c (fetch).
 */
#ifndef CLOISTER_ENDORSE_INTEL_H
#define CLOISTER_ENDORSE_INTEL_H

#include <jansson.h>
#include <openssl/x509.h>

#include "cloister/endorse.h"

/* Caps on what collateral may contain. */
#define CL_INTEL_MAX_COLLATERAL	 (1u << 20) /* a whole collateral JSON file or PCS body */
#define CL_INTEL_MAX_SIGNED_JSON (256u * 1024)
#define CL_INTEL_MAX_CRL	 (512u * 1024)
#define CL_INTEL_MAX_TCB_LEVELS	 128
#define CL_INTEL_MAX_MODULE_IDS	 32
#define CL_INTEL_MAX_ADVISORIES	 128
#define CL_INTEL_MAX_COMPONENTS	 64 /* counted, only the first 16 kept */
#define CL_INTEL_MAX_JSON_DEPTH	 32

enum cl_intel_status {
	CL_TCB_UP_TO_DATE = 0,
	CL_TCB_SW_HARDENING_NEEDED,
	CL_TCB_CONFIGURATION_NEEDED,
	CL_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED,
	CL_TCB_OUT_OF_DATE,
	CL_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED,
	CL_TCB_REVOKED,
	CL_TCB_STATUS_COUNT,
};

const char *cl_intel_status_name(enum cl_intel_status s);

struct cl_intel_tcb_level {
	uint8_t sgx[16];
	unsigned sgx_count; /* as listed; evaluation demands 16 */
	uint8_t tdx[16];
	unsigned tdx_count; /* as listed; TDX evaluation demands 16 */
	uint16_t pcesvn;
	enum cl_intel_status status;
	json_t *advisories; /* borrowed from the parsed tree; array of strings or NULL */
};

/* An identity level: QE identity or TDX module identity. */
struct cl_intel_isv_level {
	uint16_t isvsvn;
	enum cl_intel_status status; /* UpToDate, OutOfDate or Revoked */
	json_t *advisories;
};

struct cl_intel_module_id {
	uint8_t version; /* from "TDX_%02X" */
	uint8_t mrsigner[48];
	uint8_t attributes[8];
	uint8_t attributes_mask[8];
	struct cl_intel_isv_level *levels;
	size_t nlevels;
};

struct cl_intel_tcb_info {
	json_t *root;
	int is_tdx;
	int version;
	int64_t issue_date, next_update;
	uint8_t fmspc[6];
	uint8_t pceid[2];
	struct cl_intel_tcb_level *levels;
	size_t nlevels;
	int have_module;
	uint8_t module_mrsigner[48];
	uint8_t module_attributes[8];
	uint8_t module_attributes_mask[8];
	struct cl_intel_module_id *modules;
	size_t nmodules;
};

struct cl_intel_qe_identity {
	json_t *root;
	int is_td_qe;
	int64_t issue_date, next_update;
	uint8_t miscselect[4], miscselect_mask[4];
	uint8_t attributes[16], attributes_mask[16];
	uint8_t mrsigner[32];
	uint16_t isvprodid;
	struct cl_intel_isv_level *levels;
	size_t nlevels;
};

/*
 * The parsed, immutable content of one collateral set. Shared between
 * handles through the process-wide cache (reference counted), so nothing in
 * here changes after parsing.
 */
struct cl_intel_core {
	uint8_t hash[32]; /* SHA-256 of the content it was parsed from */
	_Atomic int refs;
	/* signed texts, exactly as signed */
	char *tcb_text;
	size_t tcb_len;
	uint8_t tcb_sig[64];
	char *qe_text;
	size_t qe_len;
	uint8_t qe_sig[64];
	/* issuer chains (PEM) */
	char *tcb_chain_pem, *qe_chain_pem, *pck_crl_chain_pem;
	size_t tcb_chain_len, qe_chain_len, pck_crl_chain_len;
	X509_CRL *root_crl, *pck_crl;
	uint8_t root_crl_hash[32], pck_crl_hash[32]; /* SHA-256 of the CRL bytes as given */
	STACK_OF(X509_CRL) * crls;		     /* root_crl, pck_crl (up-referenced) */
	struct cl_intel_tcb_info tcb;
	struct cl_intel_qe_identity qe;
};

struct cl_intel_collateral {
	struct cl_intel_core *core;
	int verified; /* cl_intel_collateral_verify succeeded on this handle */
};

/* Build a handle from the raw parts (used by the JSON and directory loaders). */
struct cl_intel_raw {
	const char *tcb_text; /* the signed tcbInfo JSON */
	size_t tcb_len;
	const char *tcb_sig_hex;
	const char *qe_text;
	size_t qe_len;
	const char *qe_sig_hex;
	const char *tcb_chain, *qe_chain, *pck_crl_chain; /* PEM, NUL-terminated */
	const uint8_t *root_crl, *pck_crl;		  /* DER, PEM or hex */
	size_t root_crl_len, pck_crl_len;
};

CL_MUST_USE int cl_intel_collateral_from_raw(const struct cl_intel_raw *raw, const uint8_t hash[32],
					     struct cl_intel_collateral **out);

/*
 * Find the value of member `key` of the top-level JSON object in body and
 * return its exact byte span. Strings, escapes and nesting are respected;
 * duplicate or missing keys are errors.
 */
CL_MUST_USE int cl_intel_json_member_span(const uint8_t *body, size_t n, const char *key,
					  size_t *off, size_t *len);

/* Load a directory of PCS responses (layout in docs/collateral.md). */
CL_MUST_USE int cl_intel_collateral_load_dir(const char *dir, struct cl_intel_collateral **out);

/*
 * TCB evaluation without the check that the collateral was verified: for
 * tests that edit collateral in memory, never for verification paths.
 */
CL_MUST_USE int cl_intel_tcb_evaluate_unverified(const struct cl_intel_collateral *c,
						 const struct cl_intel_tcb_input *in,
						 char status[48], json_t *advisories);

#endif
