/*
 * cloister kbs: a key broker service speaking Trustee's KBS protocol 0.1.1
 * (RCAR: auth -> attest -> resource), with resources sealed at rest under a
 * key-encryption key, Lua resource policies, an admin API authenticated by
 * signed JWTs, and every piece of state in a store (SQLite or PostgreSQL) so
 * that KBS processes are stateless.
 *
 *   struct cl_kbs_store *st;  cl_kbs_store_open("sqlite:/var/lib/kbs.db", &st);
 *   struct cl_kbs *k;         cl_kbs_new(&cfg, &k);
 *   cl_kbs_handle(k, st, &req, &resp);     // one HTTP request, no I/O
 *   cl_kbs_serve(&cfg);                    // evhttp front end, until SIGTERM
 *
 * Wire formats (docs/kbs.md): requests and responses are JSON; errors are RFC
 * 7807 problem objects whose "type" is Trustee's
 * "https://github.com/confidential-containers/kbs/errors/<Name>".
 */
#ifndef CLOISTER_KBS_H
#define CLOISTER_KBS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cloister/appraise.h"
#include "cloister/core.h"
#include "cloister/evidence.h"

#define CL_KBS_PROTOCOL_VERSION "0.1.1"
#define CL_KBS_ERROR_PREFIX	"https://github.com/confidential-containers/kbs/errors/"
#define CL_KBS_NONCE_LEN	32
#define CL_KBS_SESSION_ID_LEN	64 /* hex of 32 random bytes */
#define CL_KBS_KEK_LEN		32
#define CL_MAX_KBS_BODY		((size_t)2 << 20)
#define CL_MAX_KBS_RESOURCE	((size_t)1 << 20)
#define CL_MAX_KBS_PATH		256
#define CL_MAX_KBS_PATH_PART	64
#define CL_MAX_KBS_TOKEN	((size_t)64 << 10)
#define CL_KBS_SESSION_TTL	300
/* Live (unexpired) sessions in the store at most, by default. */
#define CL_KBS_MAX_SESSIONS 100000
/* OpenSSL secure heap for long-lived keys (power of two). */
#define CL_KBS_SECURE_HEAP ((size_t)1 << 20)

/* --------------------------------------------------------------- protocol */

/* POST /kbs/v0/auth body. */
struct cl_kbs_request {
	char version[16];
	char tee[16]; /* "snp", "tdx", "sgx", "devtee"... */
};

/* POST /kbs/v0/attest body, parsed and checked; owns its JSON. */
struct cl_kbs_attestation {
	json_t *root;
	const json_t *runtime_data; /* {"nonce", "tee-pubkey"} */
	const char *nonce;	    /* standard base64 */
	const json_t *tee_pubkey;   /* JWK: EC P-256/P-521 or RSA */
	const json_t *evidence;	    /* "tee-evidence" (or its primary_evidence) */
	const json_t *init_data;    /* {"format", "body"} or NULL */
};

CL_MUST_USE int cl_kbs_parse_request(const uint8_t *body, size_t len, struct cl_kbs_request *out);
CL_MUST_USE int cl_kbs_parse_attestation(const uint8_t *body, size_t len,
					 struct cl_kbs_attestation *out);
void cl_kbs_attestation_free(struct cl_kbs_attestation *a);

/*
 * REPORT_DATA binding: SHA-384 of the runtime data as canonical JSON (keys
 * sorted, no whitespace), zero-padded to 64 bytes.
 */
CL_MUST_USE int cl_kbs_runtime_data_hash(const json_t *runtime_data, uint8_t out[64]);

/*
 * A TEE public key acceptable as a JWE recipient: EC P-256/P-521 with alg
 * ECDH-ES+A256KW (or none), or RSA (>= 2048 bits) with alg RSA-OAEP-256.
 * RSA1_5 and everything else is refused.
 */
CL_MUST_USE int cl_kbs_check_tee_pubkey(const json_t *jwk);

/*
 * Resource path "<repo>/<type>/<tag>": exactly three non-empty parts of
 * [A-Za-z0-9._-], none "." or "..", each at most CL_MAX_KBS_PATH_PART bytes.
 * Percent-escapes are refused, so no decoded form can differ from the raw one.
 */
CL_MUST_USE int cl_kbs_resource_path_check(const char *path, size_t len);

/*
 * The raw evidence bytes that cl_verify_evidence() takes, from a Trustee
 * evidence JSON shape for tee: snp {"attestation_report": base64 | bytes,
 * "cert_chain"?}, tdx/sgx {"quote": base64, ...}, devtee {"report": base64}
 * or a base64 string. *vcek receives an SNP VCEK from cert_chain, if any.
 */
CL_MUST_USE int cl_kbs_evidence_bytes(const char *tee, const json_t *evidence, struct cl_buf *out,
				      struct cl_buf *vcek);

/*
 * Problem JSON (RFC 7807) with Trustee's error type name; caller frees. The
 * service passes detail NULL: clients get the fixed message of the type
 * (cl_kbs_problem_message), never the reason, which goes to the log and the
 * audit entry instead.
 */
char *cl_kbs_problem(const char *name, int status, const char *detail);
const char *cl_kbs_problem_message(const char *name);

/* ------------------------------------------------------------------- JWE */

/*
 * Encrypt pt to a TEE public key as a flattened JSON JWE, enc A256GCM, alg
 * ECDH-ES+A256KW (epk in the protected header, as Trustee writes it) or
 * RSA-OAEP-256. *out: caller owns.
 */
CL_MUST_USE int cl_kbs_jwe_encrypt(const json_t *tee_pubkey, const uint8_t *pt, size_t len,
				   json_t **out);
/* Decrypt with the private JWK; *pt malloc'd (caller wipes and frees). */
CL_MUST_USE int cl_kbs_jwe_decrypt(const json_t *jwk, const json_t *jwe, uint8_t **pt, size_t *len);

/* ------------------------------------------------------------ sealing */

/*
 * Secrets at rest: "CLS1" | 12-byte nonce | AES-256-GCM ciphertext | 16-byte
 * tag, with the resource path as AAD so a row moved to another path fails.
 */
CL_MUST_USE int cl_kbs_seal(const uint8_t kek[CL_KBS_KEK_LEN], const char *path, const uint8_t *pt,
			    size_t len, struct cl_buf *out);
/* out is wiped by cl_buf_free. */
CL_MUST_USE int cl_kbs_unseal(const uint8_t kek[CL_KBS_KEK_LEN], const char *path,
			      const uint8_t *blob, size_t len, struct cl_buf *out);

/* ----------------------------------------------------------------- store */

struct cl_kbs_store;

/* "sqlite:PATH" (or a plain path) or "postgres://..."/"postgresql://...".
 * Migrates the schema. */
CL_MUST_USE int cl_kbs_store_open(const char *url, struct cl_kbs_store **out);
void cl_kbs_store_close(struct cl_kbs_store *s);
const char *cl_kbs_store_kind(const struct cl_kbs_store *s); /* "sqlite" / "postgres" */
/* Schema version the store is at. */
int cl_kbs_store_schema_version(struct cl_kbs_store *s);

CL_MUST_USE int cl_kbs_store_session_new(struct cl_kbs_store *s, const char *id,
					 const uint8_t nonce[CL_KBS_NONCE_LEN], const char *tee,
					 int64_t expires);
/*
 * Like cl_kbs_store_session_new, but refused with CL_ERR_POLICY (and nothing
 * written) when the store already holds max sessions unexpired at now. The
 * count covers every process sharing the store; max <= 0 means no cap.
 */
CL_MUST_USE int cl_kbs_store_session_new_capped(struct cl_kbs_store *s, const char *id,
						const uint8_t nonce[CL_KBS_NONCE_LEN],
						const char *tee, int64_t now, int64_t expires,
						int64_t max);
/*
 * Consume the session's nonce, once: CL_OK and the nonce and tee; else
 * CL_ERR_NOT_FOUND (no such session), CL_ERR_EXPIRED, or CL_ERR_MISMATCH
 * (nonce already used).
 */
CL_MUST_USE int cl_kbs_store_session_consume(struct cl_kbs_store *s, const char *id, int64_t now,
					     uint8_t nonce[CL_KBS_NONCE_LEN], char tee[16]);
CL_MUST_USE int cl_kbs_store_session_set_token(struct cl_kbs_store *s, const char *id,
					       const char *token);
/*
 * The session's nonce and tee without spending it: CL_OK, or the errors of
 * cl_kbs_store_session_consume. Lets an attest check its request before the
 * one write that spends the nonce.
 */
CL_MUST_USE int cl_kbs_store_session_peek(struct cl_kbs_store *s, const char *id, int64_t now,
					  uint8_t nonce[CL_KBS_NONCE_LEN], char tee[16]);
/*
 * A successful attest, in one transaction: spend the nonce of an unspent,
 * unexpired session, store its token and add the audit entry. CL_ERR_MISMATCH
 * (and nothing written) when the nonce was spent meanwhile or has expired.
 */
struct cl_kbs_audit;
CL_MUST_USE int cl_kbs_store_session_attested(struct cl_kbs_store *s, const char *id, int64_t now,
					      const char *token, const struct cl_kbs_audit *a);
/*
 * A refused attest, in one transaction: spend the session's nonce (if not
 * spent already) and add the audit entry that says why.
 */
CL_MUST_USE int cl_kbs_store_session_rejected(struct cl_kbs_store *s, const char *id,
					      const struct cl_kbs_audit *a);
/* The EAR of an attested, unexpired session (*token malloc'd), or
 * CL_ERR_NOT_FOUND. */
CL_MUST_USE int cl_kbs_store_session_token(struct cl_kbs_store *s, const char *id, int64_t now,
					   char **token);
/* Drop sessions that expired before now. */
CL_MUST_USE int cl_kbs_store_session_gc(struct cl_kbs_store *s, int64_t now);

/*
 * Changes with their audit entry: the change and the entry commit in one
 * transaction, or neither does (a failed audit insert fails the change). The
 * service makes every change this way; the forms without an entry are for
 * provisioning a store outside it.
 */
CL_MUST_USE int cl_kbs_store_resource_put_audited(struct cl_kbs_store *s, const char *path,
						  const uint8_t *blob, size_t len,
						  const struct cl_kbs_audit *a);
CL_MUST_USE int cl_kbs_store_resource_put(struct cl_kbs_store *s, const char *path,
					  const uint8_t *blob, size_t len);
CL_MUST_USE int cl_kbs_store_resource_get(struct cl_kbs_store *s, const char *path,
					  struct cl_buf *blob);

/* kind: "attestation", "resource" or "refvalues"; scope: "" (global) or a path
 * prefix. */
CL_MUST_USE int cl_kbs_store_policy_put(struct cl_kbs_store *s, const char *kind, const char *scope,
					const char *text, size_t len);
CL_MUST_USE int cl_kbs_store_policy_put_audited(struct cl_kbs_store *s, const char *kind,
						const char *scope, const char *text, size_t len,
						const struct cl_kbs_audit *a);
CL_MUST_USE int cl_kbs_store_policy_get(struct cl_kbs_store *s, const char *kind, const char *scope,
					struct cl_buf *text);

struct cl_kbs_audit {
	int64_t time;
	const char *event;    /* "release", "deny", "attest", "admin" */
	const char *path;     /* resource path or admin endpoint */
	const char *decision; /* "allow" / "deny" */
	const char *policy_id;
	const char *claims_digest; /* "sha256:<hex>" of the canonical EAR claims */
	const char *detail;
};

CL_MUST_USE int cl_kbs_store_audit_add(struct cl_kbs_store *s, const struct cl_kbs_audit *a);
/* Entries at or after since, oldest first, as a JSON array (caller owns). */
CL_MUST_USE int cl_kbs_store_audit_list(struct cl_kbs_store *s, int64_t since, json_t **out);

/* ---------------------------------------------------------- admin tokens */

/* An admin verification key: Ed25519 (EdDSA) or EC P-256 (ES256) public key. */
struct cl_kbs_admin_key;

CL_MUST_USE int cl_kbs_admin_key_load(const char *path, struct cl_kbs_admin_key **out);
CL_MUST_USE int cl_kbs_admin_key_from_pem(const uint8_t *pem, size_t len,
					  struct cl_kbs_admin_key **out);
void cl_kbs_admin_key_free(struct cl_kbs_admin_key *k);

/* Roles: "admin" (everything), "resource-writer", "policy-writer", "auditor".
 */
#define CL_KBS_ROLE_ADMIN "admin"
/* Sign an admin JWT with a private key PEM (Ed25519 or P-256); *jwt malloc'd.
 */
CL_MUST_USE int cl_kbs_admin_sign(const char *key_path, const char *role, int64_t ttl, char **jwt);
/* Verify signature, exp/iat at `at` (0 = now); role copied out. */
CL_MUST_USE int cl_kbs_admin_verify(const struct cl_kbs_admin_key *k, const char *jwt, size_t len,
				    int64_t at, char role[32]);
/* 1 when role may call an endpoint needing `need`. */
int cl_kbs_role_allows(const char *role, const char *need);

/* ---------------------------------------------------------------- service */

struct cl_kbs_config {
	const char *listen;    /* "127.0.0.1:8080", "[::1]:8443" */
	const char *store_url; /* see cl_kbs_store_open */
	uint8_t kek[CL_KBS_KEK_LEN];
	struct cl_ear_key *token_key;	    /* signs EARs (borrowed) */
	struct cl_kbs_admin_key *admin_key; /* verifies admin JWTs (borrowed) */
	const char *tls_cert, *tls_key;	    /* both or neither */
	struct cl_verify_opts verify;	    /* evidence verification options */
	const struct cl_policy
		*attest_policy;		      /* fallback when the store has none; NULL = default */
	const struct cl_refvalues *refvalues; /* fallback when the store has none */
	int64_t session_ttl;		      /* 0 = CL_KBS_SESSION_TTL */
	int64_t token_ttl;		      /* 0 = 300 */
	int threads;			      /* 0 = number of CPUs (at most 16) */
	double rate_limit;		      /* requests/s per client IP; 0 = unlimited */
	size_t max_body;		      /* 0 = CL_MAX_KBS_BODY */
	/*
	 * The KEK by reference (CL_KBS_KEK_LEN bytes, borrowed), used instead of
	 * kek when set: lets the caller keep it in OPENSSL_secure_malloc memory
	 * with no copy in this struct. cl_kbs_new copies it to the secure heap.
	 */
	const uint8_t *kek_ref;
	int64_t max_sessions; /* live sessions in the store; 0 = CL_KBS_MAX_SESSIONS, < 0 none */
	/*
	 * Connection limits of the HTTP front (0: the default). More
	 * connections than max_conns (default CL_KBS_MAX_CONNS, lowered to what
	 * RLIMIT_NOFILE holds) or than max_conns_per_addr from one address
	 * (CL_KBS_MAX_CONNS_PER_ADDR; < 0: no cap) are closed at once. Each
	 * request, head and body, must arrive within request_timeout seconds
	 * of the connection opening or the previous response
	 * (CL_KBS_REQUEST_TIMEOUT); idle_timeout bounds any one read or write
	 * (CL_KBS_IDLE_TIMEOUT).
	 */
	int max_conns;
	int max_conns_per_addr;
	int64_t request_timeout;
	int64_t idle_timeout;
};
#define CL_KBS_MAX_CONNS	  1024
#define CL_KBS_MAX_CONNS_PER_ADDR 128
#define CL_KBS_REQUEST_TIMEOUT	  10
#define CL_KBS_IDLE_TIMEOUT	  30

struct cl_kbs;

CL_MUST_USE int cl_kbs_new(const struct cl_kbs_config *cfg, struct cl_kbs **out);
void cl_kbs_free(struct cl_kbs *k);

enum cl_kbs_method { CL_KBS_GET = 1, CL_KBS_POST = 2, CL_KBS_OTHER = 3 };

struct cl_kbs_req {
	enum cl_kbs_method method;
	const char *path;  /* request path without the query */
	const char *query; /* or NULL */
	const char *cookie;
	const char *authorization;
	const char *content_type;
	const uint8_t *body;
	size_t body_len;
};

struct cl_kbs_resp {
	int status;
	const char *content_type; /* static */
	char *body;		  /* malloc'd */
	size_t body_len;
	char set_cookie[192]; /* "" when none */
};

/*
 * Handle one request against a store (each thread holds its own store
 * handle). Always fills resp; the return value is CL_OK unless resp could not
 * be built.
 */
CL_MUST_USE int cl_kbs_handle(struct cl_kbs *k, struct cl_kbs_store *st,
			      const struct cl_kbs_req *rq, struct cl_kbs_resp *resp);
void cl_kbs_resp_free(struct cl_kbs_resp *r);

/* Prometheus text of this process's counters; caller frees. */
char *cl_kbs_metrics(struct cl_kbs *k);

/* Serve HTTP(S) on cfg->listen until SIGTERM/SIGINT; in-flight requests finish.
 */
CL_MUST_USE int cl_kbs_serve(const struct cl_kbs_config *cfg);

/*
 * First-start state: in dir (created 0700), generate what is missing, mode
 * 0600: kek (32 random bytes), token.key (EC P-256 PEM), admin.key (Ed25519
 * PEM) and admin.pub.
 */
CL_MUST_USE int cl_kbs_state_init(const char *dir);
CL_MUST_USE int cl_kbs_kek_load(const char *path, uint8_t kek[CL_KBS_KEK_LEN]);

/*
 * For a process holding the KEK and signing keys: no core dumps (RLIMIT_CORE
 * 0), not dumpable or ptrace-attachable by its own uid (PR_SET_DUMPABLE 0),
 * and OpenSSL's secure heap (CL_KBS_SECURE_HEAP, locked and left out of
 * dumps) set up, so that keys loaded afterwards keep their private parts in
 * it. Call before loading keys.
 */
CL_MUST_USE int cl_kbs_process_harden(void);

#endif
