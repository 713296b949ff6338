/*
 * cloister DCAP: the Intel ECDSA quote formats (SGX quote v3/v4/v5, TDX quote
 * v4/v5 with TDX 1.0 and TDX 1.5 report bodies) as a pure parser.
 *
 * The parsers take bytes in and fill a struct; they do no I/O and allocate
 * nothing. Fixed-size fields are copied into the struct; variable-size parts
 * (QE authentication data, the PCK certificate chain) and the signed regions
 * are pointers into the input, valid as long as the input is.
 *
 * Verification (signatures, PCK chain, collateral, TCB status) is done by
 * cl_verify_evidence() in evidence.h; see docs/dcap.md.
 */
#ifndef CLOISTER_DCAP_H
#define CLOISTER_DCAP_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/core.h"

#define CL_DCAP_HEADER_LEN     48
#define CL_DCAP_SGX_BODY_LEN   384
#define CL_DCAP_TDX10_BODY_LEN 584
#define CL_DCAP_TDX15_BODY_LEN 648
#define CL_DCAP_QE_REPORT_LEN  384
#define CL_DCAP_SIG_LEN	       64
#define CL_DCAP_KEY_LEN	       64

/* Caps on the variable-length parts of a quote. */
#define CL_DCAP_MAX_AUTH_DATA	   4096
#define CL_DCAP_MAX_CERT_DATA	   (64 * 1024) /* = CL_MAX_PEM_CHAIN */

#define CL_DCAP_ATT_KEY_ECDSA_P256 2
#define CL_DCAP_TEE_SGX		   0x00000000u
#define CL_DCAP_TEE_TDX		   0x00000081u

/* Body types, as the v5 body descriptor names them. */
enum cl_dcap_body_type {
	CL_DCAP_BODY_SGX = 1,
	CL_DCAP_BODY_TDX10 = 2,
	CL_DCAP_BODY_TDX15 = 3,
};

/* Certification data types (Intel DCAP quote library). */
enum cl_dcap_cert_type {
	CL_DCAP_CERT_PPID_CLEAR = 1,
	CL_DCAP_CERT_PPID_RSA2048 = 2,
	CL_DCAP_CERT_PPID_RSA3072 = 3,
	CL_DCAP_CERT_PCK_CLEAR = 4,
	CL_DCAP_CERT_PCK_CHAIN = 5,
	CL_DCAP_CERT_QE_REPORT = 6,
};

/* SGX enclave report body (REPORTBODY, 384 bytes): the fields that mean something. */
struct cl_sgx_report {
	uint8_t cpu_svn[16];
	uint32_t misc_select;
	uint8_t isv_ext_prod_id[16];
	uint8_t attributes[16]; /* flags u64 LE then xfrm u64 LE */
	uint8_t mr_enclave[32];
	uint8_t mr_signer[32];
	uint8_t config_id[64];
	uint16_t isv_prod_id;
	uint16_t isv_svn;
	uint16_t config_svn;
	uint8_t isv_family_id[16];
	uint8_t report_data[64];
};

/* TDX TD report body: TDX 1.0 (584 bytes) or TDX 1.5 (648 bytes). */
struct cl_tdx_report {
	uint8_t tee_tcb_svn[16];
	uint8_t mr_seam[48];
	uint8_t mr_signer_seam[48];
	uint8_t seam_attributes[8];
	uint8_t td_attributes[8];
	uint8_t xfam[8];
	uint8_t mr_td[48];
	uint8_t mr_config_id[48];
	uint8_t mr_owner[48];
	uint8_t mr_owner_config[48];
	uint8_t rtmr[4][48];
	uint8_t report_data[64];
	/* TDX 1.5 only (body type 3); zero otherwise. */
	uint8_t tee_tcb_svn2[16];
	uint8_t mr_servicetd[48];
};

/*
 * QE report certification data: what vouches for the attestation key. In a
 * v3 quote it is the whole tail of the signature data; in v4/v5 it is the
 * payload of certification data type 6.
 */
struct cl_dcap_certdata {
	struct cl_sgx_report qe_report;
	const uint8_t *qe_report_raw; /* CL_DCAP_QE_REPORT_LEN bytes, what the PCK key signed */
	const uint8_t *qe_report_sig; /* r || s, big-endian */
	const uint8_t *qe_auth_data;
	size_t qe_auth_len;
	uint16_t cert_type;	  /* 1..5 */
	const uint8_t *cert_data; /* the PCK chain (PEM) when cert_type is 5 */
	size_t cert_len;
};

struct cl_dcap_quote {
	/* header */
	uint16_t version; /* 3, 4 or 5 */
	uint16_t att_key_type;
	uint32_t tee_type; /* CL_DCAP_TEE_SGX or CL_DCAP_TEE_TDX */
	uint16_t qe_svn;   /* v3 only */
	uint16_t pce_svn;  /* v3 only */
	uint8_t qe_vendor_id[16];
	uint8_t user_data[20];
	/* body */
	uint16_t body_type; /* enum cl_dcap_body_type, from the descriptor (v5) or the TEE type */
	struct cl_sgx_report sgx; /* body_type SGX */
	struct cl_tdx_report tdx; /* body_type TDX10/TDX15 */
	/* header + (v5 descriptor) + body: what the attestation key signed */
	const uint8_t *signed_data;
	size_t signed_len;
	/* signature data */
	const uint8_t *signature; /* r || s, big-endian */
	const uint8_t *att_key;	  /* x || y, big-endian P-256 point */
	struct cl_dcap_certdata cert;
	/*
	 * Bytes after the signature data (a quote often comes in the fixed-size
	 * buffer the quoting service filled): unsigned, never interpreted, at
	 * most CL_MAX_TRAILING.
	 */
	size_t trailing;
};

/*
 * Parse a whole quote. Rejects anything outside the formats above (other
 * versions, attestation key types, TEE types, body types or sizes, lengths
 * that do not add up, more than CL_MAX_TRAILING bytes after the quote).
 */
CL_MUST_USE int cl_dcap_quote_parse(const uint8_t *p, size_t n, struct cl_dcap_quote *out);

/*
 * Parse the certification part of the signature data of a quote of the
 * given version: for v3 everything after the attestation key, for v4/v5 the
 * certification data (type 6, size, QE report certification data). Must
 * consume n exactly.
 */
CL_MUST_USE int cl_dcap_certdata_parse(const uint8_t *p, size_t n, uint16_t version,
				       struct cl_dcap_certdata *out);

/* Parse a 384-byte SGX report body. */
CL_MUST_USE int cl_dcap_sgx_report_parse(struct cl_reader *r, struct cl_sgx_report *out);

#endif
