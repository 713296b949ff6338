/*
 * cloister eventlog: TCG PC Client firmware event logs (the TPM's measured
 * boot log), in the crypto-agile (TCG2, "Spec ID Event03") and the legacy
 * SHA-1 format.
 *
 *   struct cl_evlog log;
 *   cl_evlog_parse(bytes, n, &log);           // events point into bytes
 *   struct cl_pcr_bank b;
 *   cl_evlog_replay(&log, CL_TPM_ALG_SHA256, &b);
 *   ...
 *   cl_evlog_free(&log);
 *
 * The log is attacker-controlled: it means nothing until its replay matches
 * PCR values that a verified quote covers (see tpm.h).
 */
#ifndef CLOISTER_EVENTLOG_H
#define CLOISTER_EVENTLOG_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cloister/core.h"

/* Caps on what a log may contain. */
#define CL_EVLOG_MAX_BYTES  ((size_t)16 << 20)
#define CL_EVLOG_MAX_EVENTS 100000u
#define CL_EVLOG_MAX_ALGS   8u /* digests per event and banks per log */
#define CL_TPM_NUM_PCRS	    24u
#define CL_TPM_MAX_DIGEST   64u

/* TPM_ALG_ID values of the hash algorithms we know. */
#define CL_TPM_ALG_SHA1	   0x0004
#define CL_TPM_ALG_SHA256  0x000B
#define CL_TPM_ALG_SHA384  0x000C
#define CL_TPM_ALG_SHA512  0x000D
#define CL_TPM_ALG_SM3_256 0x0012

/* Event types used by the claims (TCG PC Client PFP, section 10.4.1). */
#define CL_EV_NO_ACTION			 0x00000003u
#define CL_EV_SEPARATOR			 0x00000004u
#define CL_EV_IPL			 0x0000000Du
#define CL_EV_EFI_VARIABLE_DRIVER_CONFIG 0x80000001u
#define CL_EV_EFI_VARIABLE_BOOT		 0x80000002u
#define CL_EV_EFI_VARIABLE_BOOT2	 0x8000000Cu
#define CL_EV_EFI_VARIABLE_AUTHORITY	 0x800000E0u

/* Digest size of a hash algorithm, 0 if unknown. */
size_t cl_tpm_alg_digest_len(uint16_t alg);
/* "sha1", "sha256", "sha384", "sha512", "sm3_256"; NULL if unknown. */
const char *cl_tpm_alg_name(uint16_t alg);
/* The inverse of cl_tpm_alg_name(); 0 if unknown. */
uint16_t cl_tpm_alg_from_name(const char *name);
/* "EV_SEPARATOR", "EV_EFI_VARIABLE_BOOT"...; NULL if unknown. */
const char *cl_evlog_type_name(uint32_t type);

struct cl_evlog_digest {
	uint16_t alg;
	uint16_t len;
	const uint8_t *d; /* into the log bytes */
};

struct cl_evlog_event {
	uint32_t pcr;
	uint32_t type;
	unsigned ndigests;
	struct cl_evlog_digest digests[CL_EVLOG_MAX_ALGS];
	const uint8_t *data; /* into the log bytes */
	size_t data_len;
};

struct cl_evlog {
	int crypto_agile; /* 0: legacy SHA-1 log */
	unsigned nalgs;	  /* banks the log carries (the Spec ID event's list) */
	uint16_t algs[CL_EVLOG_MAX_ALGS];
	uint16_t alg_len[CL_EVLOG_MAX_ALGS];
	/* Locality from a StartupLocality event (initial value of PCR 0). */
	uint8_t startup_locality;
	struct cl_evlog_event *events; /* owned array; the first (header) event included */
	size_t nevents;
};

/*
 * Parse a log of at most CL_EVLOG_MAX_BYTES. Events refer into p, which must
 * outlive the result. Trailing zero padding (firmware hands out fixed-size
 * buffers) is accepted; any other trailing bytes are not.
 */
CL_MUST_USE int cl_evlog_parse(const uint8_t *p, size_t n, struct cl_evlog *out);
void cl_evlog_free(struct cl_evlog *log);

struct cl_pcr_bank {
	uint16_t alg;
	size_t len;
	uint32_t extended; /* bit i: PCR i has at least one event */
	uint8_t pcr[CL_TPM_NUM_PCRS][CL_TPM_MAX_DIGEST];
};

/*
 * Replay the log into one bank. CL_ERR_UNSUPPORTED when the log has no such
 * bank (or no hash implementation for it); CL_ERR_MALFORMED when an extending
 * event lacks a digest for it.
 */
CL_MUST_USE int cl_evlog_replay(const struct cl_evlog *log, uint16_t alg, struct cl_pcr_bank *out);

/*
 * Whether the event's data hashes to its digest in bank alg (1), does not
 * (0); -1 when the event has no digest of that bank. For EFI boot variables
 * either the whole UEFI_VARIABLE_DATA or only its VariableData may be hashed
 * (firmware does both).
 */
int cl_evlog_event_data_matches(const struct cl_evlog_event *e, uint16_t alg);

/*
 * UEFI_VARIABLE_DATA of an EFI variable event: the variable's name (UTF-16
 * reduced to ASCII, '?' for anything else) and its data.
 */
CL_MUST_USE int cl_evlog_efi_variable(const struct cl_evlog_event *e, uint8_t guid[16], char *name,
				      size_t name_cap, const uint8_t **data, size_t *data_len);

/*
 * Summary claims over the events whose PCR is set in `trusted` (a bitmask;
 * those whose replay matched a quoted value), checked against digests of
 * bank alg: {"count", "efi_variables": [...], "boot_variables": [...],
 * "ipl": [...], "separators", "untrusted"} and the Secure Boot state
 * (*secure_boot: 1 on, 0 off, -1 unknown). An event whose content would
 * become a claim but whose data does not match its digest is an error.
 */
CL_MUST_USE int cl_evlog_summary(const struct cl_evlog *log, uint16_t alg, uint32_t trusted,
				 json_t **summary, int *secure_boot);

/*
 * The whole log as JSON: {"format", "algorithms", "events": [...],
 * "pcrs": {bank: {index: hex}}, "secure_boot"} with the replay of every bank.
 */
CL_MUST_USE int cl_evlog_to_json(const struct cl_evlog *log, json_t **out);

#endif
