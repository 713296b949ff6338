/*
 * cloister ratls: attested TLS.
 *
 * A TEE proves which TLS key is its own by putting evidence over a hash of
 * that key into the certificate of the key:
 *
 *   2.23.133.5.4.9        CCC interoperable RA-TLS: tagged CBOR
 *                         TAG([bstr evidence, bstr claims]),
 *                         claims = {"pubkey-hash": bstr(CBOR [alg, H(DER SPKI)]),
 *                                   ? "nonce": bstr}
 *                         REPORT_DATA = H(claims), zero-padded to 64 bytes
 *   1.3.6.1.5.5.7.1.35    IETF CMW (draft-ietf-rats-msg-wrap): a CMW collection
 *                         {label: [type, bstr value, ? ind]} ("cpu0", "gpu0"...)
 *   1.2.840.113741.1337.6 Gramine's legacy extension (read only): a raw SGX
 *                         quote whose REPORT_DATA is SHA-256(DER SPKI) ‖ 0³²
 *
 *   struct cl_ratls_verifier *v = NULL;
 *   cl_ratls_verifier_new(&vo, &v);
 *   cl_ratls_ssl_ctx_verify(ctx, v, 1);     // peers must present an attested cert
 *   ... handshake; on failure cl_ratls_ssl_reason(ssl) says why ...
 *
 * Verified certificates are cached by the SHA-256 of their DER until they
 * expire (or the cache TTL passes), so repeat handshakes skip the evidence
 * checks. The TLS handshake itself proves the peer holds the key the evidence
 * names, so a copied certificate is useless without its private key.
 */
#ifndef CLOISTER_RATLS_H
#define CLOISTER_RATLS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "cloister/appraise.h"
#include "cloister/attest.h"
#include "cloister/core.h"
#include "cloister/crypto.h"
#include "cloister/evidence.h"

#define CL_RATLS_OID_EVIDENCE "2.23.133.5.4.9"
#define CL_RATLS_OID_CMW      "1.3.6.1.5.5.7.1.35"
#define CL_RATLS_OID_GRAMINE  "1.2.840.113741.1337.6"

/*
 * CBOR tags of the evidence structure. 60000 is IANA's "Intel TEE quote"
 * (SGX and TDX DCAP quotes); SEV-SNP takes the value rats-tls/librats use;
 * the dev-TEE tag is cloister's own, unregistered ("CLDT").
 */
#define CL_RATLS_TAG_INTEL_QUOTE UINT64_C(60000)
#define CL_RATLS_TAG_SNP	 UINT64_C(0x1a7504)
#define CL_RATLS_TAG_DEVTEE	 UINT64_C(0x434c4454)

/* Hash algorithm ids of the IANA "Named Information Hash Algorithm" registry. */
#define CL_RATLS_HASH_SHA256 1
#define CL_RATLS_HASH_SHA384 7
#define CL_RATLS_HASH_SHA512 8

/* Caps on what a certificate extension may carry. */
#define CL_RATLS_MAX_EXT	   ((size_t)CL_MAX_EVIDENCE + 8192)
#define CL_RATLS_MAX_CLAIMS	   4096
#define CL_RATLS_MAX_CLAIM_ENTRIES 16
#define CL_RATLS_MAX_KEY	   64
#define CL_RATLS_MAX_NONCE	   64
#define CL_RATLS_MAX_CMW_RECORDS   8
#define CL_RATLS_MAX_CMW_TYPE	   128

/* --------------------------------------------------------- wire formats */

/* The parsed CCC structure; every pointer points into the parsed bytes. */
struct cl_ratls_evidence {
	uint64_t tag;
	const uint8_t *evidence;
	size_t evidence_len;
	const uint8_t *claims; /* the encoded claims map, as hashed into REPORT_DATA */
	size_t claims_len;
	enum cl_hash hash; /* of pubkey-hash (and of REPORT_DATA) */
	const uint8_t *pubkey_hash;
	size_t pubkey_hash_len;
	const uint8_t *nonce; /* NULL when the claims carry none */
	size_t nonce_len;
};

/*
 * Parse the CCC structure strictly: definite lengths, shortest-form heads,
 * exact types, known hash ids with exact digest sizes, no duplicate or
 * trailing items. "pubkey-hash" may be the bstr-wrapped array (Gramine,
 * rats-tls) or the bare array. Unknown claims must be byte strings.
 */
CL_MUST_USE int cl_ratls_evidence_parse(const uint8_t *p, size_t n, struct cl_ratls_evidence *out);
/* The claims map {"pubkey-hash": bstr([id, hash]), ?"nonce": bstr}; pubkey_hash has cl_hash_len(h) bytes. */
CL_MUST_USE int cl_ratls_claims_encode(enum cl_hash h, const uint8_t *pubkey_hash,
				       const uint8_t *nonce, size_t nonce_len, struct cl_buf *out);
CL_MUST_USE int cl_ratls_evidence_encode(uint64_t tag, const uint8_t *ev, size_t ev_len,
					 const uint8_t *claims, size_t claims_len,
					 struct cl_buf *out);
/* REPORT_DATA for claims: H(claims) zero-padded to 64 bytes. */
CL_MUST_USE int cl_ratls_report_data(enum cl_hash h, const uint8_t *claims, size_t len,
				     uint8_t out[CL_REPORT_DATA_LEN]);
/* H(DER SubjectPublicKeyInfo of key); out holds CL_MAX_DIGEST bytes. */
CL_MUST_USE int cl_ratls_spki_hash(EVP_PKEY *key, enum cl_hash h, uint8_t *out, size_t *len);
/* The tag for a format (CL_ERR_UNSUPPORTED for formats without one), and back. */
CL_MUST_USE int cl_ratls_tag_of(enum cl_format f, uint64_t *tag);
CL_MUST_USE int cl_ratls_format_of(uint64_t tag, enum cl_format *f);

/* One record of a CMW collection. */
struct cl_ratls_cmw_record {
	char label[CL_RATLS_MAX_KEY + 1];
	char type[CL_RATLS_MAX_CMW_TYPE + 1]; /* media type, or "" with cf set */
	uint64_t cf;			      /* CoAP content-format when type is "" */
	const uint8_t *value;
	size_t value_len;
	uint64_t ind; /* conceptual-message indicator; 0 when absent */
};

struct cl_ratls_cmw {
	size_t n;
	struct cl_ratls_cmw_record rec[CL_RATLS_MAX_CMW_RECORDS];
};

/* The media type cloister uses for a format's raw evidence in a CMW record. */
const char *cl_ratls_cmw_type(enum cl_format f);
/*
 * Parse the CMW extension value: the DER of CMW ::= CHOICE { json UTF8String,
 * cbor OCTET STRING } (only the CBOR choice is accepted) holding a collection
 * of records. Nested collections and tagged CMWs are refused.
 */
CL_MUST_USE int cl_ratls_cmw_parse(const uint8_t *p, size_t n, struct cl_ratls_cmw *out);
/* The DER extension value of a collection. */
CL_MUST_USE int cl_ratls_cmw_encode(const struct cl_ratls_cmw *c, struct cl_buf *out);

/* ---------------------------------------------------------------- issuing */

/* Where evidence comes from: an attester, or anything that signs report data. */
typedef int (*cl_ratls_attest_fn)(void *arg, const uint8_t report_data[CL_REPORT_DATA_LEN],
				  struct cl_attest_evidence *out);
/* cl_ratls_attest_fn over a struct cl_attester (arg). */
int cl_ratls_attester_fn(void *arg, const uint8_t report_data[CL_REPORT_DATA_LEN],
			 struct cl_attest_evidence *out);

struct cl_ratls_issue_opts {
	cl_ratls_attest_fn attest;
	void *attest_arg;
	enum cl_hash hash;	 /* 0: SHA-384 */
	int64_t now;		 /* 0: the clock */
	int64_t ttl;		 /* certificate lifetime in seconds; 0: 3600 */
	const char *common_name; /* NULL: "cloister attested TLS" */
	const char *const *dns;	 /* subjectAltName DNS names, NULL-terminated; may be NULL */
	/* Extra CMW records (GPU evidence...) to carry beside "cpu0". */
	const struct cl_ratls_cmw_record *extra;
	size_t n_extra;
};

/*
 * A fresh EC P-256 key and a self-signed certificate for it carrying both
 * extensions. *key and *cert belong to the caller.
 */
CL_MUST_USE int cl_ratls_issue(const struct cl_ratls_issue_opts *o, EVP_PKEY **key, X509 **cert);
/*
 * The CCC structure over (the public key of) cert with a freshness nonce in
 * the claims, for the attestation endpoint. out: the tagged CBOR.
 */
CL_MUST_USE int cl_ratls_fresh_evidence(const struct cl_ratls_issue_opts *o, X509 *cert,
					const uint8_t *nonce, size_t nonce_len, struct cl_buf *out);

/* -------------------------------------------------------------- verifying */

struct cl_ratls_verifier_opts {
	struct cl_verify_opts verify;	/* copied; what it points to must outlive the verifier */
	const struct cl_policy *policy; /* NULL: the default policy */
	const struct cl_refvalues *rv;	/* may be NULL */
	int allow_warning;		/* accept the "warning" tier, not only "affirming" */
	int64_t cache_ttl; /* seconds a verdict is reused at most; 0: 3600; <0: never */
	size_t cache_max;  /* entries; 0: 256 */
};

struct cl_ratls_verifier;

struct cl_ratls_result {
	int status; /* CL_OK: accepted */
	char reason[512];
	enum cl_format format;
	enum cl_tier tier;
	const char *source; /* extension the evidence came from: "ccc", "gramine" */
	int cached;	    /* the verdict came from the cache */
	json_t *claims;	    /* owned; NULL when cached or unparsed */
};

CL_MUST_USE int cl_ratls_verifier_new(const struct cl_ratls_verifier_opts *o,
				      struct cl_ratls_verifier **out);
void cl_ratls_verifier_free(struct cl_ratls_verifier *v);
/* Number of cached verdicts (tests, benchmarks). */
size_t cl_ratls_verifier_cached(struct cl_ratls_verifier *v);

/*
 * Verify an attested certificate: validity period, self-signature, the
 * extension (CCC first, then Gramine's), pubkey-hash against the
 * certificate's own key, the evidence with REPORT_DATA bound to the claims,
 * the CMW collection's CPU record (must be the same evidence), and the
 * appraisal. A nonce, when given, must be in the claims (no cache then).
 */
CL_MUST_USE int cl_ratls_verify_cert(struct cl_ratls_verifier *v, X509 *cert, const uint8_t *nonce,
				     size_t nonce_len, struct cl_ratls_result *res);
/* Verify a CCC structure from the attestation endpoint for key with nonce. */
CL_MUST_USE int cl_ratls_verify_fresh(struct cl_ratls_verifier *v, const uint8_t *p, size_t n,
				      EVP_PKEY *key, const uint8_t *nonce, size_t nonce_len,
				      struct cl_ratls_result *res);
void cl_ratls_result_free(struct cl_ratls_result *res);

/*
 * Make ctx verify peer certificates with v (which must outlive ctx).
 * require: fail the handshake when the peer sends no certificate.
 */
CL_MUST_USE int cl_ratls_ssl_ctx_verify(SSL_CTX *ctx, struct cl_ratls_verifier *v, int require);
/* Why the last verification on ssl failed, or NULL. */
const char *cl_ratls_ssl_reason(const SSL *ssl);

/* ----------------------------------------------------------------- proxies */

enum cl_ratls_mode {
	CL_RATLS_SERVE,	  /* attested TLS in, plaintext to the upstream */
	CL_RATLS_CONNECT, /* plaintext in, attested TLS to the server */
};

#define CL_RATLS_WATERMARK  ((size_t)1 << 20)
#define CL_RATLS_FRESH_PATH "/.well-known/cloister/attestation"
/* Defaults of the limits below. */
#define CL_RATLS_MAX_CONNS	    1024 /* lowered to what RLIMIT_NOFILE allows */
#define CL_RATLS_MAX_CONNS_PER_ADDR 128
#define CL_RATLS_HANDSHAKE_SECS	    15
#define CL_RATLS_IDLE_SECS	    300

struct cl_ratls_proxy_opts {
	enum cl_ratls_mode mode;
	const char *listen; /* "HOST:PORT" ("[v6]:PORT"); port 0 picks one */
	const char *target; /* "HOST:PORT": the upstream (serve) or the server (connect) */
	/* serve: issues and re-issues the certificate (before 2/3 of its life). */
	const struct cl_ratls_issue_opts *issue;
	/*
	 * connect: verifies the server. serve: verifies clients when set (they
	 * must then present attested certificates).
	 */
	struct cl_ratls_verifier *verifier;
	/* connect: fetch nonce-bound evidence on every connection before forwarding. */
	int fresh;
	/* connect: present an attested client certificate issued through issue. */
	int client_cert;
	/*
	 * connect, benchmarks only: skip verification (plain TLS), the baseline
	 * attested TLS is measured against. Never set by the command line.
	 */
	int unverified;
	size_t watermark;   /* bytes buffered per direction before reading stops; 0: 1 MiB */
	int64_t drain_secs; /* graceful shutdown: how long open connections may finish; 0: 10 */
	/*
	 * Open connections at most; more are accepted and closed at once.
	 * 0: CL_RATLS_MAX_CONNS, or fewer when RLIMIT_NOFILE cannot hold that
	 * many (two descriptors each).
	 */
	int max_conns;
	/* Open connections from one client address at most; 0: the default, < 0: no cap. */
	int max_conns_per_addr;
	/*
	 * From accept to forwarding: the TLS handshake, verification and (serve)
	 * the attestation request or (connect --fresh) its answer, as one
	 * deadline that no trickle of bytes extends; 0: CL_RATLS_HANDSHAKE_SECS.
	 */
	int64_t handshake_secs;
	/* Close a connection with no bytes either way this long; 0: CL_RATLS_IDLE_SECS, < 0: never. */
	int64_t idle_secs;
};

struct cl_ratls_proxy;

/* Bind, resolve the target and (serve) issue the first certificate. */
CL_MUST_USE int cl_ratls_proxy_new(const struct cl_ratls_proxy_opts *o,
				   struct cl_ratls_proxy **out);
/* The bound address "HOST:PORT". */
const char *cl_ratls_proxy_addr(const struct cl_ratls_proxy *p);
/*
 * Serve until cl_ratls_proxy_stop() or (handle_signals) SIGINT/SIGTERM;
 * then stop accepting and let open connections drain.
 */
CL_MUST_USE int cl_ratls_proxy_run(struct cl_ratls_proxy *p, int handle_signals);
/* Thread-safe. */
void cl_ratls_proxy_stop(struct cl_ratls_proxy *p);
void cl_ratls_proxy_free(struct cl_ratls_proxy *p);

/*
 * connect --check: one handshake with the server, verified as the proxy
 * would (fresh evidence too when o->fresh); res says why it failed.
 */
CL_MUST_USE int cl_ratls_probe(const struct cl_ratls_proxy_opts *o, struct cl_ratls_result *res);

#endif
