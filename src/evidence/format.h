/*
 * The evidence format registry. Each format is one file in src/evidence/
 * exporting one struct cl_format_ops, listed once in registry.c;
 * cl_verify_evidence() (verify.c) detects the format once, parses once and
 * calls the descriptor's steps in order:
 *
 *   parse  → claims → verify → free
 *
 * A new format is its file and one line in the registry table. Nothing in a
 * format calls back into cl_verify_evidence() or into the registry.
 */
#ifndef CLOISTER_EVIDENCE_FORMAT_H
#define CLOISTER_EVIDENCE_FORMAT_H

#include <jansson.h>

#include "cloister/evidence.h"
#include "envelope.h"

struct cl_format_ops;

/* One piece of evidence on its way through the pipeline. */
struct cl_evidence {
	const struct cl_format_ops *ops;
	enum cl_format format; /* the descriptor's id; parse may refine it (a DCAP quote) */
	const uint8_t *raw;    /* the format's bytes: the input, or an envelope's "evidence" */
	size_t raw_len;
	const json_t *json; /* JSON formats: the document, parsed once (NULL if not JSON) */
	const struct cl_envelope *env; /* the agent envelope it came in, or NULL */
	void *parsed;		       /* parse's result, released by ops->free */
};

/* ops->flags */
#define CL_FMT_JSON	    0x1u /* a JSON document, parsed from e->json; never in an envelope */
#define CL_FMT_ENV_CERTS    0x2u /* an agent envelope may carry "certs" for it */
#define CL_FMT_ENV_EVENTLOG 0x4u /* an agent envelope may carry "eventlog" for it */

struct cl_format_ops {
	const char *name; /* "snp"; what --format and the envelope's "format" say */
	enum cl_format id;
	unsigned flags;
	/*
	 * A guess, leaving no failure detail: 1 when the bytes (binary formats)
	 * or the parsed document (CL_FMT_JSON; json may be NULL) look like this
	 * format.
	 */
	int (*detect)(const uint8_t *ev, size_t n, const json_t *json);
	/* Parse e->raw (or e->json) into e->parsed; nothing checked beyond shape. */
	CL_MUST_USE int (*parse)(struct cl_evidence *e);
	/*
	 * The claims the parsed evidence states, before any check (owned by the
	 * caller), so a caller can show what was rejected.
	 */
	CL_MUST_USE int (*claims)(const struct cl_evidence *e, json_t **claims);
	/* Every check; adds to claims what the checks establish. */
	CL_MUST_USE int (*verify)(const struct cl_evidence *e, const struct cl_verify_opts *o,
				  json_t *claims);
	void (*free)(void *parsed); /* accepts NULL */
};

/* The descriptors, one per format file. */
extern const struct cl_format_ops cl_snp_format;
extern const struct cl_format_ops cl_tdx_format;
extern const struct cl_format_ops cl_sgx_format;
extern const struct cl_format_ops cl_devtee_format;
extern const struct cl_format_ops cl_tpm_format;
extern const struct cl_format_ops cl_psa_format;
extern const struct cl_format_ops cl_nitro_format;

/* registry.c */
/* The descriptor for id, or NULL (CL_FORMAT_AUTO, unknown). */
const struct cl_format_ops *cl_format_ops_get(enum cl_format id);
/*
 * The first descriptor whose detect() accepts the input: binary formats
 * when json is NULL, JSON formats otherwise. NULL when none does.
 */
const struct cl_format_ops *cl_format_ops_detect(const uint8_t *ev, size_t n, const json_t *json);

#endif
