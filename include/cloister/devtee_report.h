/*
 * The development TEE's evidence: the report (parsed, signed and verified
 * in src/evidence/devtee.c) and the runtime-register event log
 * (src/evidence/devtee_eventlog.c). The platform that issues them is in
 * devtee.h.
 *
 * Report layout (all integers little-endian, 512 bytes, fixed):
 *
 *   0x000  8  magic "CLDEVTEE"
 *   0x008  4  version (1)
 *   0x00c  4  flags (bit 0: debug; other bits must be zero)
 *   0x010 48  measurement (SHA-384 launch measurement, cl_devtee_measure)
 *   0x040 48  host_data (SHA-384 of the init-data; zero without one)
 *   0x070 64  report_data (chosen by the workload)
 *   0x0b0 192 rtmr[4] (SHA-384 runtime measurement registers)
 *   0x170 48  signer_id (SHA-384 of the signing key's DER SubjectPublicKeyInfo)
 *   0x1a0 96  signature: ECDSA P-384 r || s (big-endian, 48 bytes each) over
 *             SHA-384 of bytes 0x000..0x19f
 *
 * Every byte before the signature is signed; nothing follows it.
 */
#ifndef CLOISTER_DEVTEE_REPORT_H
#define CLOISTER_DEVTEE_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "cloister/core.h"

#define CL_DEVTEE_MAGIC		  "CLDEVTEE"
#define CL_DEVTEE_MAGIC_LEN	  8
#define CL_DEVTEE_VERSION	  1u
#define CL_DEVTEE_FLAG_DEBUG	  0x1u
#define CL_DEVTEE_HASH_LEN	  48
#define CL_DEVTEE_RTMRS		  4
#define CL_DEVTEE_REPORT_DATA_LEN 64
#define CL_DEVTEE_SIGNED_LEN	  0x1a0
#define CL_DEVTEE_REPORT_LEN	  0x200

struct cl_devtee_report {
	uint32_t version;
	uint32_t flags;
	uint8_t measurement[CL_DEVTEE_HASH_LEN];
	uint8_t host_data[CL_DEVTEE_HASH_LEN];
	uint8_t report_data[CL_DEVTEE_REPORT_DATA_LEN];
	uint8_t rtmr[CL_DEVTEE_RTMRS][CL_DEVTEE_HASH_LEN];
	uint8_t signer_id[CL_DEVTEE_HASH_LEN];
	uint8_t sig_r[CL_DEVTEE_HASH_LEN];
	uint8_t sig_s[CL_DEVTEE_HASH_LEN];
	size_t trailing; /* unsigned bytes after the report, never interpreted */
};

/*
 * Parse the CL_DEVTEE_REPORT_LEN bytes of a report: magic, version, known
 * flags. Up to CL_MAX_TRAILING bytes may follow, counted in out->trailing and
 * never read; missing bytes are rejected. Checks no signature.
 */
CL_MUST_USE int cl_devtee_report_parse(const uint8_t *p, size_t n, struct cl_devtee_report *out);
/* Serialise r (signature included) into out. */
void cl_devtee_report_write(const struct cl_devtee_report *r, uint8_t out[CL_DEVTEE_REPORT_LEN]);
/* SHA-384 of key's DER SubjectPublicKeyInfo. */
CL_MUST_USE int cl_devtee_signer_id(EVP_PKEY *key, uint8_t out[CL_DEVTEE_HASH_LEN]);
/* Set r's signer_id and signature with key (EC P-384 private key), then serialise. */
CL_MUST_USE int cl_devtee_report_sign(struct cl_devtee_report *r, EVP_PKEY *key,
				      uint8_t out[CL_DEVTEE_REPORT_LEN]);

/* The runtime register extension: reg = SHA-384(reg || digest). */
CL_MUST_USE int cl_devtee_extend(uint8_t reg[CL_DEVTEE_HASH_LEN],
				 const uint8_t digest[CL_DEVTEE_HASH_LEN]);
#define CL_DEVTEE_MAX_EVENT  256
#define CL_DEVTEE_MAX_EVENTS 128

/*
 * Event log: entries of u32 index, 48-byte digest, u16 length, event data.
 * Replay folds each digest into a zeroed register set.
 */
CL_MUST_USE int cl_devtee_eventlog_replay(const uint8_t *p, size_t n,
					  uint8_t rtmr[CL_DEVTEE_RTMRS][CL_DEVTEE_HASH_LEN],
					  size_t *count);

#endif
