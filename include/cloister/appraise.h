/*
 * cloister appraise: reference values, sandboxed Lua appraisal policies, the
 * AR4SI trustworthiness vector and EAR attestation results.
 *
 *   struct cl_refvalues *rv = NULL;     cl_refvalues_load("rv.json", &rv);
 *   struct cl_appraisal a = {0};
 *   cl_policy_appraise(cl_policy_default(), claims, rv, &ctx, &a);
 *   struct cl_ear_submod sub = { "cpu0", &a, claims };
 *   cl_ear_sign(key, &sub, 1, &eo, &jwt);      // compact JWS, caller frees
 *
 * The claims handed to a policy are the verified claims of one attester as
 * produced by cl_verify_evidence(): {"platform", "measurement",
 * "report_data", "debug", "tcb_status", "advisory_ids", ...}.
 */
#ifndef CLOISTER_APPRAISE_H
#define CLOISTER_APPRAISE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cloister/core.h"

/* ------------------------------------------------------------------ AR4SI */

/* Trustworthiness tiers (draft-ietf-rats-ar4si), as carried in CBOR. */
enum cl_tier {
	CL_TIER_NONE = 0,
	CL_TIER_AFFIRMING = 2,
	CL_TIER_WARNING = 32,
	CL_TIER_CONTRAINDICATED = 96,
};

/* The eight trustworthiness claims, in AR4SI order. */
enum cl_tv_claim {
	CL_TV_INSTANCE_IDENTITY = 0,
	CL_TV_CONFIGURATION,
	CL_TV_EXECUTABLES,
	CL_TV_FILE_SYSTEM,
	CL_TV_HARDWARE,
	CL_TV_RUNTIME_OPAQUE,
	CL_TV_STORAGE_OPAQUE,
	CL_TV_SOURCED_DATA,
	CL_TV_COUNT
};

/* "instance-identity", "configuration"...; NULL when out of range. */
const char *cl_tv_claim_name(int claim);
/* Index of a claim name; "-" and "_" are interchangeable. -1 if unknown. */
int cl_tv_claim_index(const char *name);
/* Tier a claim value (-128..127) falls in. */
enum cl_tier cl_tier_of_value(int value);
/* "none", "affirming", "warning", "contraindicated". */
const char *cl_tier_name(enum cl_tier t);
CL_MUST_USE int cl_tier_parse(const char *s, enum cl_tier *out);

/* ------------------------------------------------------- reference values */

/*
 * A reference-value file:
 *   {"<platform>": {"<claim>": [value | {"value", "expires", "note"}...]
 *                   | {"min": number | {"<field>": number...}, "expires", "note"}}}
 * Loaded, checked and held read-only; safe to share between threads.
 */
struct cl_refvalues;

#define CL_MAX_REFVALUES_FILE ((size_t)4 << 20)
#define CL_MAX_RV_PLATFORMS   64
#define CL_MAX_RV_CLAIMS      256
#define CL_MAX_RV_VALUES      16384
#define CL_MAX_RV_STRING      1024

CL_MUST_USE int cl_refvalues_parse(const char *json, size_t len, struct cl_refvalues **out);
CL_MUST_USE int cl_refvalues_load(const char *path, struct cl_refvalues **out);
void cl_refvalues_free(struct cl_refvalues *rv);

/* 1 when the platform has any reference value for claim, else 0. */
int cl_refvalues_has(const struct cl_refvalues *rv, const char *platform, const char *claim);
/*
 * 1 when value equals an accepted value of platform/claim that has not
 * expired at `at` (seconds since the epoch; hex strings compare without
 * regard to case), 0 when not.
 */
int cl_refvalues_match(const struct cl_refvalues *rv, const char *platform, const char *claim,
		       const json_t *value, int64_t at);
/* The minimum of platform/claim (borrowed), or NULL when none is in force at `at`. */
const json_t *cl_refvalues_min(const struct cl_refvalues *rv, const char *platform,
			       const char *claim, int64_t at);
/*
 * 1 when value meets the minimum (a number >= min; for an object minimum,
 * every field named in it present in value and >= it), 0 when it does not,
 * CL_ERR_NOT_FOUND when there is no minimum.
 */
int cl_refvalues_meets_min(const struct cl_refvalues *rv, const char *platform, const char *claim,
			   const json_t *value, int64_t at);
/* Accepted, unexpired values of platform/claim as a new JSON array (caller owns). */
json_t *cl_refvalues_values(const struct cl_refvalues *rv, const char *platform, const char *claim,
			    int64_t at);

/* ------------------------------------------------------------------ CoRIM */

/*
 * Reference values from a CoRIM (draft-ietf-rats-corim): an unsigned CoRIM
 * (CBOR tag 501) or one signed as COSE_Sign1 (tag 18, ES256 or ES384) whose
 * CoMID reference triples become the same accepted values and minimums as a
 * JSON file, so the same policies apply. See docs/policy.md for the mapping.
 */
#define CL_MAX_CORIM		  ((size_t)1 << 20)
#define CL_MAX_CORIM_DEPTH	  32
#define CL_MAX_CORIM_ITEMS	  65536
#define CL_MAX_CORIM_TAGS	  64
#define CL_MAX_CORIM_TRIPLES	  1024
#define CL_MAX_CORIM_MEASUREMENTS 256
#define CL_MAX_CORIM_DIGESTS	  16
#define CL_MAX_CORIM_RAW	  512
#define CL_MAX_CORIM_TEXT	  256
#define CL_MAX_CORIM_KEY	  ((size_t)64 << 10)

struct cl_corim_opts {
	const uint8_t *key; /* signer's public key or certificate (PEM); NULL: unsigned only */
	size_t key_len;
	int64_t at; /* time rim-validity is judged at; 0 = now */
};

/* 1 when p starts like a CoRIM (tag 501 or 18), else 0. */
int cl_corim_detect(const uint8_t *p, size_t n);
/*
 * Parse a CoRIM into reference values (*out: caller frees). A signed CoRIM
 * needs o->key and must verify under it; with o->key an unsigned one is
 * refused. Outside its rim-validity at o->at: CL_ERR_EXPIRED.
 */
CL_MUST_USE int cl_corim_parse(const uint8_t *p, size_t n, const struct cl_corim_opts *o,
			       struct cl_refvalues **out);
/* A JSON reference-value file or a CoRIM, told apart by its first bytes. */
CL_MUST_USE int cl_refvalues_load_any(const char *path, const struct cl_corim_opts *o,
				      struct cl_refvalues **out);

/* ---------------------------------------------------------------- policies */

/*
 * A compiled appraisal policy: Lua 5.4 source defining
 *   function appraise(claims, ctx) ... return vector[, reasons] end
 * run in a sandbox (no io/os/require/debug/bytecode, no finalizers, bounded
 * instructions, time and memory). Every evaluation starts from a fresh
 * global environment: nothing one appraisal does is seen by the next. See
 * docs/policy.md.
 */
struct cl_policy;

#define CL_MAX_POLICY_TEXT	((size_t)256 << 10)
#define CL_POLICY_MEM_LIMIT	((size_t)32 << 20)
#define CL_POLICY_INSN_LIMIT	20000000L
#define CL_POLICY_TIME_LIMIT_MS 1000
#define CL_MAX_POLICY_ID	128

/* id: the appraisal policy id to report; NULL = "sha256:<hex of text>". */
CL_MUST_USE int cl_policy_load(const char *text, size_t len, const char *id,
			       struct cl_policy **out);
CL_MUST_USE int cl_policy_load_file(const char *path, struct cl_policy **out);
/* The built-in default policy (static; never freed). */
const struct cl_policy *cl_policy_default(void);
const char *cl_policy_id(const struct cl_policy *p);
void cl_policy_free(struct cl_policy *p);
/*
 * Close the calling thread's policy sandbox now (threads that exit release
 * theirs on their own). Compiled policies are rebuilt on the next use.
 */
void cl_policy_thread_release(void);

struct cl_appraise_ctx {
	const uint8_t *nonce; /* freshness nonce of the request, or NULL */
	size_t nonce_len;
	const uint8_t *report_data; /* expected REPORT_DATA (64 bytes), or NULL */
	int64_t at;		    /* appraisal time; 0 = now */
};

struct cl_appraisal {
	int8_t vector[CL_TV_COUNT]; /* AR4SI claim values, 0 = no claim */
	enum cl_tier status;	    /* worst tier of the vector */
	char policy_id[CL_MAX_POLICY_ID];
	json_t *reasons; /* owned array of strings: why claims were not affirming */
};

/*
 * Run policy p (NULL = default) over claims. A policy that fails (error,
 * instruction, time or memory limit, bad output) returns CL_ERR_POLICY;
 * cl_error_detail() then says why, for logs (printable ASCII only, but it
 * may quote the policy's own error text: not for clients). out is then left
 * all-zero. Thread-safe: each thread has its own Lua state with compiled
 * policies cached.
 */
CL_MUST_USE int cl_policy_appraise(const struct cl_policy *p, const json_t *claims,
				   const struct cl_refvalues *rv, const struct cl_appraise_ctx *ctx,
				   struct cl_appraisal *out);
void cl_appraisal_free(struct cl_appraisal *a);
/* Worst tier of a vector. */
enum cl_tier cl_vector_status(const int8_t vector[CL_TV_COUNT]);

/* --------------------------------------------------------------------- EAR */

#define CL_EAR_PROFILE "tag:ietf.org,2026:rats/ear#03"
/* Profile of tokens with the older dotted claim names. */
#define CL_EAR_PROFILE_LEGACY "tag:github.com,2023:veraison/ear"
/* Annotated evidence: the verified claims, keyed by platform. */
#define CL_EAR_ANNOTATED_EVIDENCE "ear_veraison_annotated_evidence"
#define CL_MAX_EAR_TOKEN	  ((size_t)256 << 10)
#define CL_MAX_JWKS		  ((size_t)64 << 10)

/* An EC signing key (P-256 → ES256, P-384 → ES384), held in secure memory. */
struct cl_ear_key;

CL_MUST_USE int cl_ear_key_from_pem(const uint8_t *pem, size_t len, struct cl_ear_key **out);
CL_MUST_USE int cl_ear_key_load(const char *path, struct cl_ear_key **out);
void cl_ear_key_free(struct cl_ear_key *k);
/* "ES256" or "ES384". */
const char *cl_ear_key_alg(const struct cl_ear_key *k);
/* Public JWKS {"keys":[{kty, crv, x, y, alg, use, kid}]} (caller owns). */
json_t *cl_ear_key_jwks(const struct cl_ear_key *k);

struct cl_ear_submod {
	const char *name; /* "cpu0", "gpu0"... */
	const struct cl_appraisal *appraisal;
	const json_t *claims; /* verified claims, or NULL */
};

struct cl_ear_opts {
	const char *verifier_build; /* ear_verifier_id.build; NULL = "cloister" */
	const uint8_t *nonce;	    /* eat_nonce (8..64 bytes), or NULL */
	size_t nonce_len;
	int64_t iat; /* 0 = now */
	int64_t ttl; /* seconds; 0 = 300 */
};

/* Sign an EAR over the submods. *jwt: compact JWS, caller frees. */
CL_MUST_USE int cl_ear_sign(const struct cl_ear_key *key, const struct cl_ear_submod *subs,
			    size_t n, const struct cl_ear_opts *o, char **jwt);
/*
 * Verify a compact EAR JWT against a JWKS: signature (ES256/ES384 only),
 * expiry at `at` (0 = now), profile and shape. *claims: the payload with
 * older dotted names rewritten to the current ones (caller owns).
 */
CL_MUST_USE int cl_ear_verify(const json_t *jwks, const char *token, size_t len, int64_t at,
			      json_t **claims);

#endif
