/*
 * Verify Intel DCAP collateral at a time: issuer chains to the pinned Intel
 * root with the root CA CRL, the TCB info and QE identity signatures, the
 * PCK CRL signature, and every validity window.
 *
 * Two process-wide caches keep repeat verifications cheap. Verified issuer
 * chains are kept by SHA-256 of (PEM, root CA CRL) with the signing key and
 * the window in which every certificate of the chain is valid; a verified
 * core (collateral by content hash) keeps the window in which its whole
 * verification holds. Signature and revocation results do not depend on
 * time, so a cached result only needs the time window checked again.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/ec.h>
#include <openssl/err.h>

#include "cloister/crypto.h"
#include "cloister/memo.h"
#include "intel.h"

static void fmt_time(int64_t t, char out[21])
{
	cl_time_format(t, out);
}

static int check_window(int64_t at, int64_t from, int64_t until, const char *what)
{
	char a[21], f[21], u[21];

	if (at >= from && at <= until)
		return CL_OK;
	fmt_time(at, a);
	fmt_time(from, f);
	fmt_time(until, u);
	return cl_fail(CL_ERR_EXPIRED, "%s not valid at %s (valid %s .. %s)", what, a, f, u);
}

/* Prefix the current failure detail (copied: cl_fail writes the same buffer). */
static int rewrap(int err, const char *what)
{
	char prev[512];

	snprintf(prev, sizeof(prev), "%s", cl_error_detail());
	return cl_fail(err, "%s issuer chain: %s", what, prev);
}

static int is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_b64(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=';
}

/*
 * An issuer chain must be nothing but certificate blocks and whitespace.
 * OpenSSL's PEM reader skips text it does not recognise, which would let
 * damaged or extra blocks pass unnoticed; this counts the blocks so the
 * caller can demand that every one of them parsed and was used.
 */
static int pem_blocks(const char *pem, size_t len, int *count)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	static const char end[] = "-----END CERTIFICATE-----";
	struct cl_reader r = cl_reader_make(pem, len);
	const uint8_t *q = NULL;

	*count = 0;
	for (;;) {
		while (r.left && is_ws(r.p[0]))
			CL_GUARD(cl_read_skip(&r, 1));
		if (r.left == 0)
			break;
		CL_ENSURE_MSG(cl_read_ref(&r, sizeof(begin) - 1, &q) == CL_OK &&
				      memcmp(q, begin, sizeof(begin) - 1) == 0,
			      CL_ERR_MALFORMED, "issuer chain: text outside certificate blocks");
		while (r.left && (is_b64(r.p[0]) || is_ws(r.p[0])))
			CL_GUARD(cl_read_skip(&r, 1));
		CL_ENSURE_MSG(cl_read_ref(&r, sizeof(end) - 1, &q) == CL_OK &&
				      memcmp(q, end, sizeof(end) - 1) == 0,
			      CL_ERR_MALFORMED, "issuer chain: malformed certificate block");
		CL_ENSURE_MSG(++*count <= CL_MAX_CERT_CHAIN, CL_ERR_MALFORMED,
			      "issuer chain: too many certificates");
	}
	CL_ENSURE_MSG(*count > 0, CL_ERR_MALFORMED, "issuer chain: no certificate");
	return CL_OK;
}

/* ---------------------------------------------------- verified chain cache */

static int crl_window(X509_CRL *crl, int64_t *from, int64_t *until, const char *what)
{
	const ASN1_TIME *nu = X509_CRL_get0_nextUpdate(crl);

	CL_ENSURE_MSG(nu != NULL, CL_ERR_COLLATERAL, "%s has no nextUpdate", what);
	CL_GUARD(cl_asn1_time_epoch(X509_CRL_get0_lastUpdate(crl), from));
	return cl_asn1_time_epoch(nu, until);
}

/*
 * Verified issuer chains, by the chain's PEM and the root CA CRL it was
 * checked against. The entry's window is where every certificate of the
 * chain and that CRL are valid, the only way time enters the outcome; the
 * leaf's key is what the signed collateral is then checked with.
 */
struct chain_entry {
	EVP_PKEY *pkey; /* the leaf's public key */
	X509 *leaf;
	int64_t from, until;
};

static int chain_ref(void *value, void *out)
{
	const struct chain_entry *e = value;
	struct chain_entry *o = out;

	if (EVP_PKEY_up_ref(e->pkey) != 1)
		return 0;
	if (X509_up_ref(e->leaf) != 1) {
		EVP_PKEY_free(e->pkey);
		return 0;
	}
	*o = *e;
	return 1;
}

static void chain_drop(void *value)
{
	struct chain_entry *e = value;

	EVP_PKEY_free(e->pkey);
	X509_free(e->leaf);
	free(e);
}

static struct cl_memo chains =
	CL_MEMO_INIT("intel issuer chain", 16, CL_MEMO_VERIFIED, chain_ref, chain_drop);

/* Store a copy of e (new references), valid where e and the root CRL are. */
static void chain_store(const struct cl_memo_key *k, const struct chain_entry *e, int64_t from,
			int64_t until)
{
	struct chain_entry *v = malloc(sizeof(*v));

	if (!v)
		return;
	*v = *e;
	if (EVP_PKEY_up_ref(v->pkey) != 1) {
		free(v);
		return;
	}
	if (X509_up_ref(v->leaf) != 1) {
		EVP_PKEY_free(v->pkey);
		free(v);
		return;
	}
	cl_memo_put(&chains, k, v, from > e->from ? from : e->from,
		    until < e->until ? until : e->until);
}

/*
 * Verify an issuer chain (leaf first, PEM) up to the Intel root with the root
 * CA CRL at `at`; out gets the leaf, its key and the chain's validity window
 * (references the caller frees).
 */
static int verify_chain(const struct cl_intel_core *c, const char *pem, size_t len, int64_t at,
			const char *what, struct chain_entry *out)
{
	const struct cl_memo_part parts[] = {{pem, len}, {c->root_crl_hash, 32}};
	struct cl_memo_key k;
	STACK_OF(X509) *certs = NULL, *roots = NULL;
	STACK_OF(X509_CRL) *crls = NULL;
	X509 *root = cl_intel_root();
	struct chain_entry e = {NULL, NULL, INT64_MIN, INT64_MAX};
	int64_t crl_from = 0, crl_until = 0;
	int rc = CL_OK, depth = 0, blocks = 0;

	CL_CHECK(root != NULL, CL_ERR_INTERNAL, "Intel root not available");
	CL_TRY(cl_memo_key_parts(&k, "intel issuer chain", parts, 2));
	if (!cl_memo_get(&chains, &k, at, &e)) {
		rc = pem_blocks(pem, len, &blocks);
		if (rc == CL_OK)
			rc = cl_x509_chain_from_pem((const uint8_t *)pem, len, &certs);
		if (rc == CL_OK && sk_X509_num(certs) != blocks)
			rc = cl_fail(CL_ERR_MALFORMED, "a certificate block does not parse");
		if (rc < 0) {
			rc = rewrap(CL_ERR_COLLATERAL, what);
			goto out;
		}
		e.leaf = sk_X509_shift(certs);
		roots = sk_X509_new_null();
		crls = sk_X509_CRL_new_null();
		CL_CHECK(roots && crls && sk_X509_push(roots, root) > 0 &&
				 sk_X509_CRL_push(crls, c->root_crl) > 0,
			 CL_ERR_NOMEM, "out of memory");
		rc = cl_x509_verify(e.leaf, certs, roots, crls, at, &depth);
		if (rc < 0) {
			rc = rewrap(rc, what);
			goto out;
		}
		/*
		 * The root itself must not stand in for the signing certificate;
		 * the chain must end with the pinned root and every certificate
		 * in it must be part of the verified path.
		 */
		CL_CHECK(depth >= 2 && X509_cmp(e.leaf, root) != 0, CL_ERR_CHAIN,
			 "%s issuer chain has no signing certificate below the root", what);
		CL_CHECK(depth == blocks && sk_X509_num(certs) > 0 &&
				 X509_cmp(sk_X509_value(certs, sk_X509_num(certs) - 1), root) == 0,
			 CL_ERR_CHAIN,
			 "%s issuer chain must be the path to the Intel root, root last", what);
		sk_X509_push(certs, root);
		sk_X509_push(certs, e.leaf);
		for (int i = 0; i < sk_X509_num(certs); i++) {
			int64_t nb = 0, na = 0;

			CL_TRY(cl_asn1_time_epoch(X509_get0_notBefore(sk_X509_value(certs, i)),
						  &nb));
			CL_TRY(cl_asn1_time_epoch(X509_get0_notAfter(sk_X509_value(certs, i)),
						  &na));
			e.from = nb > e.from ? nb : e.from;
			e.until = na < e.until ? na : e.until;
		}
		(void)sk_X509_pop(certs); /* leaf: owned by e */
		(void)sk_X509_pop(certs); /* root: shared */
		e.pkey = X509_get_pubkey(e.leaf);
		CL_CHECK(e.pkey && EVP_PKEY_is_a(e.pkey, "EC") && EVP_PKEY_get_bits(e.pkey) == 256,
			 CL_ERR_UNSUPPORTED, "%s signing key is not ECDSA P-256", what);
		CL_TRY(crl_window(c->root_crl, &crl_from, &crl_until, "root CA CRL"));
		chain_store(&k, &e, crl_from, crl_until);
	}
	CL_TRY(check_window(at, e.from, e.until, what));
	*out = e;
	e.pkey = NULL;
	e.leaf = NULL;
out:
	EVP_PKEY_free(e.pkey);
	X509_free(e.leaf);
	sk_X509_pop_free(certs, X509_free);
	sk_X509_free(roots);
	sk_X509_CRL_free(crls);
	ERR_clear_error();
	return rc;
}

/* crl_hash: SHA-256 of the CRL's bytes; issuer_id: what identifies the issuer's key. */
/*
 * The window is checked here first for a message that names it; the
 * signature check is shared with chain revocation checks (cl_crl_check), so
 * a CRL is verified once however many chains it covers.
 */
static int verify_crl(X509_CRL *crl, X509 *issuer, int64_t at, const char *what, int64_t *from,
		      int64_t *until)
{
	int rc = CL_OK;

	CL_ENSURE_MSG(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)) == 0,
		      CL_ERR_COLLATERAL, "%s is not issued by its issuer certificate", what);
	CL_GUARD(crl_window(crl, from, until, what));
	CL_GUARD(check_window(at, *from, *until, what));
	rc = cl_crl_check(crl, issuer, at);
	if (rc == CL_ERR_SIGNATURE)
		return cl_fail(CL_ERR_SIGNATURE, "%s signature does not verify", what);
	return rc;
}

static int verify_signed(const struct chain_entry *e, const char *text, size_t len,
			 const uint8_t sig[64], const char *what)
{
	if (cl_ecdsa_verify_raw(e->pkey, CL_SHA256, text, len, sig, sig + 32, 32) != CL_OK)
		return cl_fail(CL_ERR_SIGNATURE, "%s signature does not verify", what);
	return CL_OK;
}

static void narrow(int64_t *from, int64_t *until, int64_t f, int64_t u)
{
	*from = f > *from ? f : *from;
	*until = u < *until ? u : *until;
}

/*
 * Collateral sets verified as a whole, by their content hash, for the window
 * in which every signature chain, CRL, TCB info and QE identity in them is
 * valid: within it, verifying the same bytes again gives the same result.
 */
static struct cl_memo collateral_verdicts =
	CL_MEMO_INIT("intel collateral verdict", 16, CL_MEMO_VERIFIED, NULL, NULL);

int cl_intel_collateral_verify(struct cl_intel_collateral *h, int64_t at)
{
	struct cl_intel_core *c = h ? h->core : NULL;
	struct chain_entry tcb = {NULL, NULL, 0, 0}, qe = tcb, pck = tcb;
	X509 *root = cl_intel_root();
	int64_t from = INT64_MIN, until = INT64_MAX, f = 0, u = 0;
	struct cl_memo_key k;
	int rc = CL_OK;

	CL_ENSURE_MSG(c != NULL, CL_ERR_ARG, "no collateral");
	CL_ENSURE_MSG(root != NULL, CL_ERR_INTERNAL, "Intel root not available");
	h->verified = 0;
	if (at == 0)
		at = (int64_t)time(NULL);
	CL_GUARD(cl_memo_key(&k, "intel collateral verdict", c->hash, sizeof(c->hash)));
	if (cl_memo_get(&collateral_verdicts, &k, at, NULL)) {
		h->verified = 1;
		return CL_OK;
	}

	CL_TRY(verify_crl(c->root_crl, root, at, "root CA CRL", &f, &u));
	narrow(&from, &until, f, u);

	CL_TRY(verify_chain(c, c->tcb_chain_pem, c->tcb_chain_len, at, "TCB info", &tcb));
	narrow(&from, &until, tcb.from, tcb.until);
	CL_TRY(verify_signed(&tcb, c->tcb_text, c->tcb_len, c->tcb_sig, "TCB info"));
	CL_TRY(check_window(at, c->tcb.issue_date, c->tcb.next_update, "TCB info"));
	narrow(&from, &until, c->tcb.issue_date, c->tcb.next_update);

	CL_TRY(verify_chain(c, c->qe_chain_pem, c->qe_chain_len, at, "QE identity", &qe));
	narrow(&from, &until, qe.from, qe.until);
	CL_TRY(verify_signed(&qe, c->qe_text, c->qe_len, c->qe_sig, "QE identity"));
	CL_TRY(check_window(at, c->qe.issue_date, c->qe.next_update, "QE identity"));
	narrow(&from, &until, c->qe.issue_date, c->qe.next_update);

	CL_TRY(verify_chain(c, c->pck_crl_chain_pem, c->pck_crl_chain_len, at, "PCK CRL", &pck));
	narrow(&from, &until, pck.from, pck.until);
	CL_TRY(verify_crl(c->pck_crl, pck.leaf, at, "PCK CRL", &f, &u));
	narrow(&from, &until, f, u);

	cl_memo_put(&collateral_verdicts, &k, NULL, from, until);
	h->verified = 1;
out:
	EVP_PKEY_free(tcb.pkey);
	X509_free(tcb.leaf);
	EVP_PKEY_free(qe.pkey);
	X509_free(qe.leaf);
	EVP_PKEY_free(pck.pkey);
	X509_free(pck.leaf);
	return rc;
}
