/*
 * The agent's JSON evidence envelope (`cloister agent evidence --json`):
 *
 *   {"format": "snp"|"tdx"|"sgx"|"devtee", "provider": "...",
 *    "evidence": base64, ? "certs": base64 (SNP only), ? "eventlog": base64 (devtee only)}
 *
 * Parsed strictly (no duplicate or unknown keys, exact types, size caps) and
 * verified through cl_verify_evidence(), which hands any JSON object that is
 * not TPM evidence to cl_envelope_verify().
 */
#ifndef CLOISTER_EVIDENCE_ENVELOPE_H
#define CLOISTER_EVIDENCE_ENVELOPE_H

#include "cloister/evidence.h"

/* The whole envelope text; a maximal evidence in base64 plus the rest fits. */
#define CL_MAX_ENVELOPE (2u << 20)
/* Decoded "certs" and "eventlog" (a dev-TEE log is at most 128 × 310 bytes). */
#define CL_MAX_ENVELOPE_CERTS	 (64u << 10)
#define CL_MAX_ENVELOPE_EVENTLOG (64u << 10)
/* Entries in an SNP certificate table, the all-zero terminator not counted. */
#define CL_MAX_SNP_CERT_ENTRIES 16

struct cl_envelope {
	enum cl_format format; /* as named; never trusted over the evidence */
	char provider[32];
	uint8_t *evidence;
	size_t evidence_len;
	uint8_t *certs; /* NULL when absent */
	size_t certs_len;
	uint8_t *eventlog; /* NULL when absent; an empty log is present with length 0 */
	size_t eventlog_len;
	int have_eventlog;
};

/* 1 when ev looks like an agent envelope: a JSON object that is not TPM evidence. */
int cl_envelope_detect(const uint8_t *ev, size_t n);
/* Parse; *out owns its buffers (cl_envelope_free, also on failure). */
CL_MUST_USE int cl_envelope_parse(const uint8_t *p, size_t n, struct cl_envelope *out);
void cl_envelope_free(struct cl_envelope *e);

/*
 * Find the certificate with the given GUID (16 bytes, RFC 4122 byte order) in
 * an SNP extended-report certificate table (GHCB spec: entries of GUID ‖ u32le
 * offset ‖ u32le length from the start of the table, ended by an all-zero
 * entry). The whole table is checked; *cert points into p, NULL if absent.
 */
CL_MUST_USE int cl_snp_certtable_find(const uint8_t *p, size_t n, const uint8_t guid[16],
				      const uint8_t **cert, size_t *len);
extern const uint8_t cl_snp_guid_vcek[16];
extern const uint8_t cl_snp_guid_vlek[16];

/*
 * Verify an envelope: the inner evidence as its detected format (which must
 * equal the named one, and o->format unless AUTO), with the VCEK/VLEK from
 * "certs" when o->vcek is not set, then the dev-TEE event log replayed
 * against the report's registers. *fmt gets the inner format, *claims (owned)
 * the inner claims, plus "eventlog" entries when a log was checked.
 */
CL_MUST_USE int cl_envelope_verify(const uint8_t *ev, size_t n, const struct cl_verify_opts *o,
				   enum cl_format *fmt, json_t **claims);

#endif
