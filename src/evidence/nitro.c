/*
 * AWS Nitro Enclaves attestation documents: a COSE_Sign1 (ES384) whose
 * payload is a CBOR map (module_id, digest, timestamp, pcrs, certificate,
 * cabundle, public_key, user_data, nonce), signed by the key of
 * `certificate`, which chains through `cabundle` to the pinned AWS Nitro
 * Enclaves Root-G1. The input is the document's bytes, or its base64 text as
 * SDKs and JSON APIs hand it over.
 *
 * Every field is checked against AWS's published schema and size limits
 * before anything is believed; the root in the document is never trusted,
 * only the pinned one. A verified chain is cached by the bytes of its
 * certificates, for the window in which all of them are valid.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "cloister/cbor.h"
#include "cloister/cose.h"
#include "cloister/crypto.h"
#include "cloister/endorse.h"
#include "cloister/memo.h"
#include "format.h"
#include "internal.h"

/*
 * AWS Nitro Enclaves attestation document schema limits. AWS's syntactic
 * checks name 512 bytes for user_data and nonce, but its CDDL gives them
 * 0..1024 and the NSM issues documents with 1024 bytes of user_data (the
 * real documents in the test vectors do), so 1024 is the limit here.
 */
#define NITRO_MAX_PCRS	     32
#define NITRO_MAX_PCR_LEN    64
#define NITRO_MAX_CERT	     1024
#define NITRO_MAX_CABUNDLE   (CL_MAX_CERT_CHAIN - 1)
#define NITRO_MAX_USER_DATA  1024
#define NITRO_MAX_NONCE	     1024
#define NITRO_MAX_PUBLIC_KEY 1024
#define NITRO_MAX_MODULE_ID  256
#define NITRO_CACHE_SLOTS    16
/* 9999-12-31T23:59:59.999Z in milliseconds: the last instant RFC 3339 writes. */
#define NITRO_MAX_TIMESTAMP UINT64_C(253402300799999)

static const struct cl_cbor_caps doc_caps = {
	"Nitro attestation document", 3,
	1 + 2 * 9 + 1 + 2 * NITRO_MAX_PCRS + 1 + NITRO_MAX_CABUNDLE, 0};

struct blob {
	const uint8_t *p;
	size_t n;
	int present; /* optional fields: 0 when absent or null */
};

struct nitro_doc {
	uint8_t *decoded; /* the base64-decoded document, when the input was text */
	int base64;
	struct cl_cose_sign1 cose;
	cbor_item_t *payload;
	struct blob module_id, cert, public_key, user_data, nonce;
	uint64_t timestamp; /* milliseconds since the epoch */
	struct blob pcr[NITRO_MAX_PCRS];
	struct blob cabundle[NITRO_MAX_CABUNDLE];
	size_t ncabundle;
};

static void nitro_free(void *parsed)
{
	struct nitro_doc *d = parsed;

	if (!d)
		return;
	if (d->payload)
		cbor_decref(&d->payload);
	cl_cose_sign1_free(&d->cose);
	free(d->decoded);
	free(d);
}

/* ------------------------------------------------------------- detect */

static const uint8_t es384_start[] = {0x84, 0x44, 0xa1, 0x01, 0x38, 0x22};
static const uint8_t module_id_key[] = {0x69, 'm', 'o', 'd', 'u', 'l', 'e', '_', 'i', 'd'};

static int raw_looks_nitro(const uint8_t *p, size_t n)
{
	size_t win = 0;

	if (n > 0 && p[0] == 0xd2) {
		p++;
		n--;
	}
	if (n < sizeof(es384_start) || memcmp(p, es384_start, sizeof(es384_start)) != 0)
		return 0;
	/* The payload map's first key is module_id, within a few bytes of the start. */
	win = n < 40 ? n : 40;
	for (size_t i = sizeof(es384_start); i + sizeof(module_id_key) <= win; i++)
		if (memcmp(p + i, module_id_key, sizeof(module_id_key)) == 0)
			return 1;
	return 0;
}

static int is_b64(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '-' || c == '_';
}

static int is_space(uint8_t c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static int nitro_detect(const uint8_t *ev, size_t n, const json_t *json)
{
	char text[64];
	uint8_t *bin = NULL;
	size_t have = 0, blen = 0;
	int yes = 0;

	(void)json;
	if (raw_looks_nitro(ev, n))
		return 1;
	/* Base64 text: decode its first 48 bytes and look again. */
	for (size_t i = 0; i < n && have < sizeof(text); i++) {
		if (is_space(ev[i]))
			continue;
		if (!is_b64(ev[i]))
			return 0;
		text[have++] = (char)ev[i];
	}
	if (have < sizeof(text))
		return 0;
	if (cl_base64_decode(text, have, &bin, &blen) == CL_OK)
		yes = raw_looks_nitro(bin, blen);
	free(bin);
	cl_error_clear();
	return yes;
}

/* -------------------------------------------------------------- parse */

static int text_is(const cbor_item_t *it, const char *s)
{
	size_t n = strlen(s);

	return cbor_isa_string(it) && cbor_string_is_definite(it) && cbor_string_length(it) == n &&
	       memcmp(cbor_string_handle(it), s, n) == 0;
}

/* A byte string of min..max bytes; null too when nullable (left absent). */
static int want_bytes(const cbor_item_t *it, const char *what, size_t min, size_t max, int nullable,
		      struct blob *out)
{
	memset(out, 0, sizeof(*out));
	if (nullable && cl_cbor_is_null(it))
		return CL_OK;
	CL_ENSURE_MSG(cbor_isa_bytestring(it) && cbor_bytestring_is_definite(it), CL_ERR_MALFORMED,
		      "Nitro: %s is not a byte string", what);
	out->p = cbor_bytestring_handle(it);
	out->n = cbor_bytestring_length(it);
	out->present = 1;
	CL_ENSURE_MSG(out->n >= min && out->n <= max, CL_ERR_MALFORMED,
		      "Nitro: %s has %zu bytes, expected %zu..%zu", what, out->n, min, max);
	return CL_OK;
}

static int parse_pcrs(struct nitro_doc *d, const cbor_item_t *m)
{
	struct cbor_pair *pr = NULL;
	size_t n = 0;

	CL_ENSURE_MSG(cbor_isa_map(m) && cbor_map_is_definite(m), CL_ERR_MALFORMED,
		      "Nitro: pcrs is not a map");
	n = cbor_map_size(m);
	CL_ENSURE_MSG(n >= 1 && n <= NITRO_MAX_PCRS, CL_ERR_MALFORMED,
		      "Nitro: %zu PCRs, expected 1..%d", n, NITRO_MAX_PCRS);
	pr = cbor_map_handle(m);
	for (size_t i = 0; i < n; i++) {
		uint64_t idx = 0;
		struct blob *b = NULL;

		CL_ENSURE_MSG(cbor_isa_uint(pr[i].key), CL_ERR_MALFORMED,
			      "Nitro: a PCR index is not an unsigned integer");
		idx = cbor_get_int(pr[i].key);
		CL_ENSURE_MSG(idx < NITRO_MAX_PCRS, CL_ERR_MALFORMED,
			      "Nitro: PCR index %llu out of range", (unsigned long long)idx);
		b = &d->pcr[idx];
		CL_ENSURE_MSG(!b->present, CL_ERR_MALFORMED, "Nitro: PCR%llu appears twice",
			      (unsigned long long)idx);
		CL_GUARD(want_bytes(pr[i].value, "a PCR", 32, NITRO_MAX_PCR_LEN, 0, b));
		CL_ENSURE_MSG(b->n == 32 || b->n == 48 || b->n == 64, CL_ERR_MALFORMED,
			      "Nitro: PCR%llu has %zu bytes (32, 48 or 64)",
			      (unsigned long long)idx, b->n);
	}
	CL_ENSURE_MSG(d->pcr[0].present, CL_ERR_MALFORMED, "Nitro: the document has no PCR0");
	return CL_OK;
}

static int parse_cabundle(struct nitro_doc *d, const cbor_item_t *a)
{
	size_t n = 0;

	CL_ENSURE_MSG(cbor_isa_array(a) && cbor_array_is_definite(a), CL_ERR_MALFORMED,
		      "Nitro: cabundle is not an array");
	n = cbor_array_size(a);
	CL_ENSURE_MSG(n >= 1 && n <= NITRO_MAX_CABUNDLE, CL_ERR_MALFORMED,
		      "Nitro: cabundle has %zu certificates, expected 1..%d", n,
		      NITRO_MAX_CABUNDLE);
	for (size_t i = 0; i < n; i++)
		CL_GUARD(want_bytes(cbor_array_handle(a)[i], "a cabundle certificate", 1,
				    NITRO_MAX_CERT, 0, &d->cabundle[i]));
	d->ncabundle = n;
	return CL_OK;
}

enum {
	F_MODULE_ID = 1u << 0,
	F_DIGEST = 1u << 1,
	F_TIMESTAMP = 1u << 2,
	F_PCRS = 1u << 3,
	F_CERTIFICATE = 1u << 4,
	F_CABUNDLE = 1u << 5,
	F_PUBLIC_KEY = 1u << 6,
	F_USER_DATA = 1u << 7,
	F_NONCE = 1u << 8,
	F_MANDATORY = F_MODULE_ID | F_DIGEST | F_TIMESTAMP | F_PCRS | F_CERTIFICATE | F_CABUNDLE,
};

static int parse_field(struct nitro_doc *d, const cbor_item_t *k, const cbor_item_t *v,
		       unsigned *seen)
{
	unsigned f = 0;

	if (text_is(k, "module_id"))
		f = F_MODULE_ID;
	else if (text_is(k, "digest"))
		f = F_DIGEST;
	else if (text_is(k, "timestamp"))
		f = F_TIMESTAMP;
	else if (text_is(k, "pcrs"))
		f = F_PCRS;
	else if (text_is(k, "certificate"))
		f = F_CERTIFICATE;
	else if (text_is(k, "cabundle"))
		f = F_CABUNDLE;
	else if (text_is(k, "public_key"))
		f = F_PUBLIC_KEY;
	else if (text_is(k, "user_data"))
		f = F_USER_DATA;
	else if (text_is(k, "nonce"))
		f = F_NONCE;
	CL_ENSURE_MSG(f, CL_ERR_MALFORMED, "Nitro: unknown field in the attestation document");
	CL_ENSURE_MSG(!(*seen & f), CL_ERR_MALFORMED, "Nitro: a field appears twice");
	*seen |= f;
	switch (f) {
	case F_MODULE_ID:
		CL_ENSURE_MSG(cbor_isa_string(v) && cbor_string_is_definite(v) &&
				      cbor_string_length(v) >= 1 &&
				      cbor_string_length(v) <= NITRO_MAX_MODULE_ID,
			      CL_ERR_MALFORMED, "Nitro: module_id is not a text of 1..%d bytes",
			      NITRO_MAX_MODULE_ID);
		d->module_id.p = cbor_string_handle(v);
		d->module_id.n = cbor_string_length(v);
		d->module_id.present = 1;
		return CL_OK;
	case F_DIGEST:
		CL_ENSURE_MSG(text_is(v, "SHA384"), CL_ERR_UNSUPPORTED,
			      "Nitro: digest is not \"SHA384\"");
		return CL_OK;
	case F_TIMESTAMP:
		CL_ENSURE_MSG(cbor_isa_uint(v), CL_ERR_MALFORMED,
			      "Nitro: timestamp is not an unsigned integer");
		d->timestamp = cbor_get_int(v);
		CL_ENSURE_MSG(d->timestamp > 0 && d->timestamp <= NITRO_MAX_TIMESTAMP,
			      CL_ERR_MALFORMED, "Nitro: timestamp out of range");
		return CL_OK;
	case F_PCRS:
		return parse_pcrs(d, v);
	case F_CERTIFICATE:
		return want_bytes(v, "certificate", 1, NITRO_MAX_CERT, 0, &d->cert);
	case F_CABUNDLE:
		return parse_cabundle(d, v);
	case F_PUBLIC_KEY:
		return want_bytes(v, "public_key", 1, NITRO_MAX_PUBLIC_KEY, 1, &d->public_key);
	case F_USER_DATA:
		return want_bytes(v, "user_data", 0, NITRO_MAX_USER_DATA, 1, &d->user_data);
	case F_NONCE:
		return want_bytes(v, "nonce", 0, NITRO_MAX_NONCE, 1, &d->nonce);
	default:
		CL_BAIL(CL_ERR_INTERNAL, "Nitro: unhandled field");
	}
}

static int parse_payload(struct nitro_doc *d)
{
	struct cbor_pair *pr = NULL;
	unsigned seen = 0;

	CL_GUARD(cl_cbor_load(d->cose.payload, d->cose.payload_len, &doc_caps, &d->payload));
	CL_ENSURE_MSG(cbor_isa_map(d->payload) && cbor_map_is_definite(d->payload),
		      CL_ERR_MALFORMED, "Nitro: the payload is not a map");
	pr = cbor_map_handle(d->payload);
	for (size_t i = 0; i < cbor_map_size(d->payload); i++)
		CL_GUARD(parse_field(d, pr[i].key, pr[i].value, &seen));
	CL_ENSURE_MSG((seen & F_MANDATORY) == F_MANDATORY, CL_ERR_MALFORMED,
		      "Nitro: the document lacks a mandatory field (module_id, digest, timestamp, "
		      "pcrs, certificate, cabundle)");
	return CL_OK;
}

static int nitro_parse(struct cl_evidence *e)
{
	struct nitro_doc *d = calloc(1, sizeof(*d));
	const uint8_t *p = e->raw;
	size_t n = e->raw_len;

	CL_ENSURE_MSG(d, CL_ERR_NOMEM, "out of memory");
	e->parsed = d;
	CL_ENSURE_MSG(n > 0, CL_ERR_TRUNCATED, "Nitro: empty input");
	if (p[0] != 0x84 && p[0] != 0xd2) {
		size_t len = 0;

		CL_GUARD(cl_base64_decode((const char *)p, n, &d->decoded, &len));
		d->base64 = 1;
		p = d->decoded;
		n = len;
	}
	CL_GUARD(cl_cose_sign1_parse(p, n, &d->cose));
	CL_ENSURE_MSG(d->cose.alg == CL_COSE_ALG_ES384, CL_ERR_UNSUPPORTED,
		      "Nitro: the document is not signed with ES384");
	return parse_payload(d);
}

/* ------------------------------------------------------------- claims */

static int set_new(json_t *c, const char *k, json_t *v)
{
	CL_ENSURE_MSG(v && json_object_set_new(c, k, v) == 0, CL_ERR_NOMEM, "out of memory");
	return CL_OK;
}

static int is_zero(const struct blob *b)
{
	uint8_t acc = 0;

	for (size_t i = 0; i < b->n; i++)
		acc |= b->p[i];
	return acc == 0;
}

/* Debug enclaves report PCR0..PCR2 as zeros (those present). */
static int doc_debug(const struct nitro_doc *d)
{
	for (int i = 0; i < 3; i++)
		if (d->pcr[i].present && !is_zero(&d->pcr[i]))
			return 0;
	return 1;
}

static int nitro_claims(const struct cl_evidence *e, json_t **claims)
{
	const struct nitro_doc *d = e->parsed;
	json_t *c = cl_claims_new("nitro"), *pcrs = json_object();
	char ts[21], when[32];
	int rc = CL_OK;

	*claims = c;
	CL_CHECK(c && pcrs, CL_ERR_NOMEM, "out of memory");
	for (int i = 0; i < NITRO_MAX_PCRS; i++) {
		char key[12];

		if (!d->pcr[i].present)
			continue;
		snprintf(key, sizeof(key), "%d", i);
		CL_TRY(cl_claims_set_hex(pcrs, key, d->pcr[i].p, d->pcr[i].n));
	}
	CL_TRY(cl_claims_set_hex(c, "measurement", d->pcr[0].p, d->pcr[0].n));
	CL_CHECK(json_object_set(c, "pcrs", pcrs) == 0, CL_ERR_NOMEM, "out of memory");
	CL_TRY(set_new(c, "module_id", json_stringn((const char *)d->module_id.p, d->module_id.n)));
	cl_time_format((int64_t)(d->timestamp / 1000), ts);
	snprintf(when, sizeof(when), "%.19s.%03uZ", ts, (unsigned)(d->timestamp % 1000));
	CL_TRY(set_new(c, "timestamp", json_string(when)));
	CL_TRY(set_new(c, "digest", json_string("SHA384")));
	if (d->user_data.present) {
		CL_TRY(cl_claims_set_hex(c, "user_data", d->user_data.p, d->user_data.n));
		/* The common report_data claim: user_data zero-padded, when it fits. */
		if (d->user_data.n <= CL_REPORT_DATA_LEN) {
			uint8_t rd[CL_REPORT_DATA_LEN] = {0};

			memcpy(rd, d->user_data.p, d->user_data.n);
			CL_TRY(cl_claims_set_hex(c, "report_data", rd, sizeof(rd)));
		}
	}
	if (d->nonce.present)
		CL_TRY(cl_claims_set_hex(c, "nonce", d->nonce.p, d->nonce.n));
	if (d->public_key.present)
		CL_TRY(cl_claims_set_hex(c, "public_key", d->public_key.p, d->public_key.n));
	CL_TRY(set_new(c, "debug", json_boolean(doc_debug(d))));
	/* A document fills its input (base64 text: whitespace aside). */
	CL_TRY(cl_claims_set_trailing(c, 0));
out:
	json_decref(pcrs);
	return rc;
}

/* -------------------------------------------------------------- chain */

struct nitro_key {
	EVP_PKEY *key; /* the leaf's, checked to the pinned root */
};

static int key_ref(void *value, void *out)
{
	const struct nitro_key *v = value;

	if (EVP_PKEY_up_ref(v->key) != 1)
		return 0;
	*(struct nitro_key *)out = *v;
	return 1;
}

static void key_drop(void *value)
{
	struct nitro_key *v = value;

	EVP_PKEY_free(v->key);
	free(v);
}

/* Verified chains by the bytes of certificate and cabundle, for their common window. */
static struct cl_memo chains =
	CL_MEMO_INIT("nitro chain", NITRO_CACHE_SLOTS, CL_MEMO_VERIFIED, key_ref, key_drop);

static int chain_id(const struct nitro_doc *d, struct cl_memo_key *k)
{
	struct cl_memo_part parts[2 * (NITRO_MAX_CABUNDLE + 1)];
	uint8_t lens[NITRO_MAX_CABUNDLE + 1][8];
	size_t np = 0;

	for (size_t i = 0; i <= d->ncabundle; i++) {
		const struct blob *b = i == 0 ? &d->cert : &d->cabundle[i - 1];

		/* Each certificate's length first, so no split of the bytes maps to the same key. */
		for (int j = 0; j < 8; j++)
			lens[i][j] = (uint8_t)((uint64_t)b->n >> (8 * j));
		parts[np++] = (struct cl_memo_part){lens[i], 8};
		parts[np++] = (struct cl_memo_part){b->p, b->n};
	}
	return cl_memo_key_parts(k, "nitro chain", parts, np);
}

static int narrow(X509 *x, int64_t *nb, int64_t *na)
{
	int64_t b = 0, a = 0;

	CL_GUARD(cl_asn1_time_epoch(X509_get0_notBefore(x), &b));
	CL_GUARD(cl_asn1_time_epoch(X509_get0_notAfter(x), &a));
	if (b > *nb)
		*nb = b;
	if (a < *na)
		*na = a;
	return CL_OK;
}

static int is_p384(EVP_PKEY *k)
{
	char name[64] = "";
	size_t len = 0;

	return k && EVP_PKEY_get_base_id(k) == EVP_PKEY_EC &&
	       EVP_PKEY_get_group_name(k, name, sizeof(name), &len) == 1 &&
	       strcmp(name, "secp384r1") == 0;
}

static int chain_verify(const struct nitro_doc *d, int64_t at, struct nitro_key *out, int64_t *nb,
			int64_t *na)
{
	X509 *leaf = NULL, *root = cl_aws_nitro_root();
	STACK_OF(X509) *untrusted = sk_X509_new_null(), *roots = sk_X509_new_null();
	int rc = CL_OK;

	*nb = INT64_MIN;
	*na = INT64_MAX;
	CL_CHECK(root, CL_ERR_INTERNAL, "the pinned AWS Nitro root does not parse");
	CL_CHECK(untrusted && roots && sk_X509_push(roots, root) > 0, CL_ERR_NOMEM,
		 "out of memory");
	CL_TRY(cl_x509_from_der(d->cert.p, d->cert.n, &leaf));
	for (size_t i = 0; i < d->ncabundle; i++) {
		X509 *x = NULL;

		CL_TRY(cl_x509_from_der(d->cabundle[i].p, d->cabundle[i].n, &x));
		if (sk_X509_push(untrusted, x) <= 0) {
			X509_free(x);
			CL_CHECK(0, CL_ERR_NOMEM, "out of memory");
		}
	}
	CL_TRY(cl_x509_verify(leaf, untrusted, roots, NULL, at, NULL));
	/* The signing certificate: an end entity whose key may sign, on P-384. */
	CL_CHECK(X509_check_ca(leaf) == 0, CL_ERR_CHAIN,
		 "Nitro: the signing certificate is a CA certificate");
	CL_CHECK((X509_get_extension_flags(leaf) & EXFLAG_KUSAGE) &&
			 (X509_get_key_usage(leaf) & KU_DIGITAL_SIGNATURE),
		 CL_ERR_CHAIN, "Nitro: the signing certificate's key usage lacks digitalSignature");
	CL_CHECK(is_p384(X509_get0_pubkey(leaf)), CL_ERR_CHAIN,
		 "Nitro: the signing certificate's key is not EC P-384");
	CL_TRY(narrow(leaf, nb, na));
	CL_TRY(narrow(root, nb, na));
	for (int i = 0; i < sk_X509_num(untrusted); i++)
		CL_TRY(narrow(sk_X509_value(untrusted, i), nb, na));
	out->key = X509_get_pubkey(leaf);
	CL_CHECK(out->key, CL_ERR_CRYPTO, "cannot read the signing key");
out:
	X509_free(leaf);
	sk_X509_pop_free(untrusted, X509_free);
	sk_X509_free(roots);
	ERR_clear_error();
	return rc;
}

static int signing_key(const struct nitro_doc *d, int64_t at, EVP_PKEY **out)
{
	struct cl_memo_key k;
	struct nitro_key v = {0};
	struct nitro_key *keep = NULL;
	int64_t nb = 0, na = 0;

	*out = NULL;
	CL_GUARD(chain_id(d, &k));
	if (cl_memo_get(&chains, &k, at, &v)) {
		*out = v.key;
		return CL_OK;
	}
	CL_GUARD(chain_verify(d, at, &v, &nb, &na));
	keep = malloc(sizeof(*keep));
	if (keep && EVP_PKEY_up_ref(v.key) == 1) {
		*keep = v;
		cl_memo_put(&chains, &k, keep, nb, na);
	} else {
		free(keep);
	}
	*out = v.key;
	return CL_OK;
}

/* ------------------------------------------------------------- verify */

static int check_report_data(const struct nitro_doc *d, const struct cl_verify_opts *o)
{
	uint8_t rd[CL_REPORT_DATA_LEN] = {0};

	if (!o->have_report_data)
		return CL_OK;
	CL_ENSURE_MSG(d->user_data.present && d->user_data.n <= CL_REPORT_DATA_LEN, CL_ERR_MISMATCH,
		      "report data does not match the expected value (Nitro user_data %s)",
		      d->user_data.present ? "longer than 64 bytes" : "absent");
	memcpy(rd, d->user_data.p, d->user_data.n);
	return cl_check_report_data(o, rd);
}

static int nitro_verify(const struct cl_evidence *e, const struct cl_verify_opts *o, json_t *c)
{
	const struct nitro_doc *d = e->parsed;
	int64_t at = o->at ? o->at : (int64_t)time(NULL);
	EVP_PKEY *key = NULL;
	int rc = CL_OK;

	(void)c;
	CL_TRY(signing_key(d, at, &key));
	CL_TRY(cl_cose_sign1_verify(&d->cose, key));
	CL_CHECK(!doc_debug(d) || o->allow_debug, CL_ERR_POLICY,
		 "attestation was generated in debug mode (PCR0..PCR2 are zero)");
	CL_TRY(check_report_data(d, o));
	if (o->nitro.nonce)
		CL_CHECK(d->nonce.present && d->nonce.n == o->nitro.nonce_len &&
				 cl_ct_equal(d->nonce.p, o->nitro.nonce, d->nonce.n),
			 CL_ERR_MISMATCH, "Nitro: the document's nonce does not match");
out:
	EVP_PKEY_free(key);
	return rc;
}

const struct cl_format_ops cl_nitro_format = {
	.name = "nitro",
	.id = CL_FORMAT_NITRO,
	.flags = 0,
	.detect = nitro_detect,
	.parse = nitro_parse,
	.claims = nitro_claims,
	.verify = nitro_verify,
	.free = nitro_free,
};
