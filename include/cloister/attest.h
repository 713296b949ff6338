/*
 * cloister attest: get evidence from inside a TEE, behind one interface.
 *
 *   struct cl_attester *a = NULL;
 *   cl_attest_open(NULL, &a);                 // auto-detect
 *   struct cl_attest_evidence ev = { 0 };
 *   cl_attest_evidence(a, report_data, &ev);  // ev.format, ev.evidence
 *   cl_attest_evidence_free(&ev);
 *   cl_attest_close(a);
 *
 * Providers, in detection order:
 *   devtee    the development TEE's socket ($CLOISTER_DEVTEE_FD)
 *   tsm       Linux configfs-tsm reports (SEV-SNP, TDX, Arm CCA)
 *   sev-guest /dev/sev-guest ioctls (SNP reports and derived keys)
 *   tdx-guest TDX runtime measurement registers in sysfs (no evidence of its
 *             own: reports come through tsm)
 *   gramine   Gramine's /dev/attestation pseudo-files (SGX)
 * Each path can be redirected (struct cl_attest_config or the environment)
 * so tests run the providers against directories that behave like the
 * kernel's interfaces.
 */
#ifndef CLOISTER_ATTEST_H
#define CLOISTER_ATTEST_H

#include <stddef.h>
#include <stdint.h>

#include "cloister/core.h"
#include "cloister/evidence.h"

enum cl_attest_kind {
	CL_ATTEST_AUTO = 0,
	CL_ATTEST_DEVTEE,
	CL_ATTEST_TSM,
	CL_ATTEST_SEV_GUEST,
	CL_ATTEST_TDX_GUEST,
	CL_ATTEST_GRAMINE,
};

/* "devtee", "tsm", "sev-guest", "tdx-guest", "gramine"; "auto". */
const char *cl_attest_kind_name(enum cl_attest_kind k);
CL_MUST_USE int cl_attest_kind_parse(const char *s, enum cl_attest_kind *out);

/*
 * Where the providers look. NULL/-1 fields take the environment variable
 * named beside them, then the kernel's path.
 */
struct cl_attest_config {
	enum cl_attest_kind kind;     /* AUTO: detect */
	int devtee_fd;		      /* $CLOISTER_DEVTEE_FD; -1 when unset */
	const char *tsm_path;	      /* $CLOISTER_TSM_PATH, /sys/kernel/config/tsm/report */
	const char *tsm_entry;	      /* $CLOISTER_TSM_ENTRY, "cloister.<pid>"; reused if present */
	const char *sev_guest;	      /* $CLOISTER_SEV_GUEST, /dev/sev-guest */
	const char *tdx_measurements; /* $CLOISTER_TDX_MEASUREMENTS,
					 /sys/devices/virtual/misc/tdx_guest/measurements */
	const char *gramine_path;     /* $CLOISTER_GRAMINE_PATH, /dev/attestation */
};

#define CL_ATTEST_CONFIG_INIT                                                                      \
	{                                                                                          \
		CL_ATTEST_AUTO, -1, NULL, NULL, NULL, NULL, NULL                                   \
	}

struct cl_attester;

/*
 * Open the provider named by cfg->kind, or the first one present. cfg may
 * be NULL. Fails with CL_ERR_NOT_FOUND "no TEE detected" when none is.
 */
CL_MUST_USE int cl_attest_open(const struct cl_attest_config *cfg, struct cl_attester **out);
void cl_attest_close(struct cl_attester *a);
enum cl_attest_kind cl_attest_kind(const struct cl_attester *a);

struct cl_attest_evidence {
	enum cl_format format;	/* CL_FORMAT_AUTO when cloister cannot verify it (CCA) */
	char provider[32];	/* e.g. "tsm/sev_guest", "devtee", "gramine/dcap" */
	struct cl_buf evidence; /* the native report or quote, as the hardware gave it */
	struct cl_buf aux;	/* certificates or the event log, provider-specific; may be empty */
};

/* Evidence over 64 bytes of report data. */
CL_MUST_USE int cl_attest_evidence(struct cl_attester *a, const uint8_t report_data[64],
				   struct cl_attest_evidence *out);
void cl_attest_evidence_free(struct cl_attest_evidence *ev);

/*
 * A 32-byte sealing key bound to this TEE's measurement, separated by label
 * (1..64 bytes). devtee: the platform's HKDF; sev-guest: SNP_GET_DERIVED_KEY
 * (VCEK root, measurement + policy bound) through HKDF with the label;
 * gramine: the MRENCLAVE sealing key through HKDF. Others: unsupported.
 */
#define CL_ATTEST_KEY_LEN 32
CL_MUST_USE int cl_attest_derive_key(struct cl_attester *a, const uint8_t *label, size_t label_len,
				     uint8_t key[CL_ATTEST_KEY_LEN]);

/*
 * Extend runtime measurement register `index` with a SHA-384 digest
 * (devtee: registers 0..3, logged with event; tdx-guest: RTMR 2..3 are the
 * ones the OS leaves to applications, all four accepted by the kernel).
 */
CL_MUST_USE int cl_attest_extend(struct cl_attester *a, unsigned index, const uint8_t digest[48],
				 const void *event, size_t event_len);
/* Read runtime measurement register `index` (tdx-guest only). */
CL_MUST_USE int cl_attest_read_register(struct cl_attester *a, unsigned index, uint8_t out[48]);

/* ------------------------------------------- request building, for tests */

/*
 * configfs-tsm provider names and the evidence format each produces:
 * sev_guest → SNP, tdx_guest → TDX, arm_cca_guest → (AUTO). Unknown → error.
 */
CL_MUST_USE int cl_attest_tsm_format(const char *provider, enum cl_format *out);

/* SNP MSG_KEY_REQ as the ioctl takes it (struct snp_derived_key_req). */
struct cl_snp_key_req {
	uint32_t root_key_select;    /* 0: VCEK, 1: VMRK */
	uint64_t guest_field_select; /* bit 0 policy, 1 image id, 2 family id, 3 measurement,
					4 guest svn, 5 TCB version */
	uint32_t vmpl;
	uint32_t guest_svn;
	uint64_t tcb_version;
};
/* The request cloister sends: VCEK root, bound to measurement and policy. */
void cl_attest_snp_key_req(struct cl_snp_key_req *q);
/* Parse MSG_KEY_RSP (64 bytes): status 0 and the 32-byte key at 0x20. */
CL_MUST_USE int cl_attest_snp_key_resp(const uint8_t *p, size_t n, uint8_t key[32]);
/* Parse MSG_REPORT_RSP: status, report size, the report at 0x20. */
CL_MUST_USE int cl_attest_snp_report_resp(const uint8_t *p, size_t n, const uint8_t **report,
					  size_t *report_len);

#endif
