/*
 * The agent's JSON evidence envelope (`cloister agent evidence --json`):
 *
 *   {"format": "snp"|"tdx"|"sgx"|"devtee", "provider": "...",
 *    "evidence": base64, ? "certs": base64 (SNP only), ? "eventlog": base64 (devtee only)}
 *
 * Parsed strictly (no duplicate or unknown keys, exact types, size caps).
 * cl_verify_evidence() parses the JSON text once, takes any object that is
 * not TPM evidence as an envelope, opens it (cl_envelope_open) and verifies
 * the inner evidence in the same pass: the inner format's descriptor reads
 * the members meant for it ("certs" for SNP, "eventlog" for the dev TEE).
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
/* The JSON text of an envelope, size-capped, duplicate keys refused; *root owned. */
CL_MUST_USE int cl_envelope_load(const uint8_t *p, size_t n, json_t **root);
/* The envelope in an already parsed document; as cl_envelope_parse. */
CL_MUST_USE int cl_envelope_from_json(const json_t *root, struct cl_envelope *out);
void cl_envelope_free(struct cl_envelope *e);

/*
 * Find the certificate with the given GUID (16 bytes, RFC 4122 byte order) in
 * an SNP extended-report certificate table (GHCB spec: entries of GUID ‖ u32le
 * offset ‖ u32le length from the start of the table, ended by an all-zero
 * entry). The whole table is checked; *cert points into p, NULL if absent.
 * (Implemented beside the SNP verifier, which is its only reader.)
 */
CL_MUST_USE int cl_snp_certtable_find(const uint8_t *p, size_t n, const uint8_t guid[16],
				      const uint8_t **cert, size_t *len);
extern const uint8_t cl_snp_guid_vcek[16];
extern const uint8_t cl_snp_guid_vlek[16];

struct cl_evidence;
/*
 * Point e at the envelope's inner evidence: its format detected from the
 * bytes, which must equal the named one (and o->format unless AUTO), and
 * "certs"/"eventlog" only where that format takes them. e borrows env.
 */
CL_MUST_USE int cl_envelope_open(const struct cl_envelope *env, const struct cl_verify_opts *o,
				 struct cl_evidence *e);

#endif
