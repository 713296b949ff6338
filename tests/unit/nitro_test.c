/*
 * AWS Nitro attestation documents: the real documents from blocky/nitrite
 * (SOURCES.md) as base64 text and as raw CBOR, tagged and untagged; flipped
 * bytes in every signed part and the signature, every truncation, times
 * outside the chain's validity, debug documents, a self-signed chain, and the
 * report-data and nonce bindings.
 */
#include <time.h>

#include <cbor.h>
#include <openssl/x509v3.h>

#include "cloister/cose.h"
#include "cloister/evidence.h"
#include "test.h"

#define DIR	 "nitro/blocky-nitrite/"
#define GOOD_AT	 "2024-09-07T14:37:39.545Z"
#define DEBUG_AT "2024-09-07T14:38:06.508Z"
#define GOOD_PCR0                                                                                  \
	"e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e" \
	"7c9fe86a"

static int64_t at_of(const char *s)
{
	int64_t t = 0;

	if (cl_time_parse(s, &t) != CL_OK)
		abort();
	return t;
}

static int verify_at(const uint8_t *p, size_t n, int64_t at, struct cl_verify_opts *base,
		     json_t **claims)
{
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result r = {0};
	int rc = 0;

	if (base)
		o = *base;
	o.at = at;
	rc = cl_verify_evidence(p, n, &o, &r);
	CHECK_EQ_INT(rc, r.status);
	if (claims) {
		*claims = r.claims;
		r.claims = NULL;
	}
	cl_verify_result_free(&r);
	return rc;
}

/* The raw CBOR of a base64 vector. */
static struct cl_buf raw_of(const char *rel)
{
	struct cl_buf t = vector_read(rel), b = {0};
	uint8_t *p = NULL;
	size_t n = 0;

	if (cl_base64_decode((const char *)t.data, t.len, &p, &n) != CL_OK ||
	    cl_buf_append(&b, p, n) != CL_OK)
		abort();
	free(p);
	cl_buf_free(&t);
	return b;
}

static const char *claim(json_t *c, const char *k)
{
	return json_string_value(json_object_get(c, k));
}

static void test_known_answers(void)
{
	struct cl_buf t = vector_read(DIR "nitro_attestation.b64"),
		      raw = raw_of(DIR "nitro_attestation.b64");
	struct cl_buf tagged = {0};
	json_t *c = NULL;
	int64_t at = at_of(GOOD_AT);

	CHECK_EQ_INT(cl_format_detect(t.data, t.len), CL_FORMAT_NITRO);
	CHECK_EQ_INT(cl_format_detect(raw.data, raw.len), CL_FORMAT_NITRO);
	CHECK_EQ_INT(verify_at(t.data, t.len, at, NULL, &c), CL_OK);
	CHECK_STR(claim(c, "platform"), "nitro");
	CHECK_STR(claim(c, "measurement"), GOOD_PCR0);
	CHECK_STR(json_string_value(json_object_get(json_object_get(c, "pcrs"), "0")), GOOD_PCR0);
	CHECK_EQ_INT(json_object_size(json_object_get(c, "pcrs")), 16);
	CHECK_STR(claim(c, "timestamp"), GOOD_AT);
	CHECK_STR(claim(c, "module_id"), "i-0a22e5c5f24d22174-enc0191cceb4289903f");
	CHECK(json_is_false(json_object_get(c, "debug")));
	CHECK_EQ_INT(json_integer_value(json_object_get(c, "trailing_bytes")), 0);
	CHECK(claim(c, "user_data") && claim(c, "nonce") && claim(c, "public_key"));
	json_decref(c);
	/* The raw CBOR, untagged as AWS sends it and in tag 18. */
	CHECK_EQ_INT(verify_at(raw.data, raw.len, at, NULL, NULL), CL_OK);
	if (cl_buf_append(&tagged, "\xd2", 1) != CL_OK ||
	    cl_buf_append(&tagged, raw.data, raw.len) != CL_OK)
		abort();
	CHECK_EQ_INT(verify_at(tagged.data, tagged.len, at, NULL, NULL), CL_OK);
	{
		/* Forced format, and the chain checked from scratch. */
		struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;

		o.format = CL_FORMAT_NITRO;
		o.no_cache = 1;
		CHECK_EQ_INT(verify_at(t.data, t.len, at, &o, NULL), CL_OK);
	}
	cl_buf_free(&tagged);
	cl_buf_free(&raw);
	cl_buf_free(&t);
}

static void test_debug(void)
{
	struct cl_buf t = vector_read(DIR "nitro_attestation_debug.b64");
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	json_t *c = NULL;
	int64_t at = at_of(DEBUG_AT);

	CHECK_EQ_INT(verify_at(t.data, t.len, at, NULL, &c), CL_ERR_POLICY);
	CHECK(json_is_true(json_object_get(c, "debug")));
	json_decref(c);
	o.allow_debug = 1;
	CHECK_EQ_INT(verify_at(t.data, t.len, at, &o, &c), CL_OK);
	CHECK(json_is_true(json_object_get(c, "debug")));
	CHECK_STR(claim(c, "timestamp"), DEBUG_AT);
	json_decref(c);
	cl_buf_free(&t);
}

static void test_selfsigned(void)
{
	struct cl_buf raw = raw_of(DIR "selfsigned_attestation.b64");
	int64_t at = at_of("2024-04-17T18:51:46Z");

	CHECK(verify_at(raw.data, raw.len, at, NULL, NULL) != CL_OK);
	/*
	 * Its unprotected header is null, not a map; made an empty map (it is
	 * unsigned), the document still fails AWS's schema: its cabundle is null,
	 * where AWS demands the chain to the root.
	 */
	CHECK(raw.len > 6 && raw.data[6] == 0xf6);
	raw.data[6] = 0xa0;
	CHECK_EQ_INT(verify_at(raw.data, raw.len, at, NULL, NULL), CL_ERR_MALFORMED);
	CHECK(strstr(cl_error_detail(), "cabundle") != NULL);
	cl_buf_free(&raw);
}

/* A throwaway certificate: P-384, signed by ikey (itself when issuer is NULL). */
static X509 *throwaway_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, int ca)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	X509V3_CTX v3;
	X509_EXTENSION *ext = NULL;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), ca ? 1 : 2);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, name);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name);
	ASN1_TIME_set(X509_getm_notBefore(x), (time_t)at_of("2024-01-01T00:00:00Z"));
	ASN1_TIME_set(X509_getm_notAfter(x), (time_t)at_of("2025-01-01T00:00:00Z"));
	X509_set_pubkey(x, key);
	X509V3_set_ctx(&v3, issuer ? issuer : x, x, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_basic_constraints,
				  ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ext = X509V3_EXT_conf_nid(NULL, &v3, NID_key_usage,
				  ca ? "critical,keyCertSign" : "critical,digitalSignature");
	X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	X509_sign(x, ikey, EVP_sha384());
	X509_NAME_free(name);
	return x;
}

static cbor_item_t *der_item(X509 *x)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	cbor_item_t *it = n > 0 ? cbor_build_bytestring(der, (size_t)n) : NULL;

	OPENSSL_free(der);
	return it;
}

/*
 * A well-formed document whose chain is not AWS's: the real document's
 * claims, its certificate and cabundle replaced by a throwaway root and leaf,
 * signed properly by that leaf. Only the chain check can refuse it.
 */
static void test_foreign_chain(void)
{
	struct cl_buf raw = raw_of(DIR "nitro_attestation.b64");
	struct cl_cose_sign1 s;
	struct cbor_load_result res;
	EVP_PKEY *rk = EVP_EC_gen("P-384"), *lk = EVP_EC_gen("P-384");
	X509 *root = throwaway_cert("not AWS root", rk, NULL, rk, 1);
	X509 *leaf = throwaway_cert("not an enclave", lk, root, rk, 0);
	cbor_item_t *m = NULL, *out = cbor_new_definite_map(16),
		    *bundle = cbor_new_definite_array(1);
	unsigned char *payload = NULL, *doc = NULL;
	size_t plen = 0, cap = 0, dlen = 0;

	CHECK_EQ_INT(cl_cose_sign1_parse(raw.data, raw.len, &s), CL_OK);
	m = cbor_load(s.payload, s.payload_len, &res);
	CHECK(m && cbor_isa_map(m) && out && bundle);
	if (!m || !out || !bundle)
		goto done;
	CHECK(cbor_array_push(bundle, cbor_move(der_item(root))));
	for (size_t i = 0; i < cbor_map_size(m); i++) {
		struct cbor_pair pr = cbor_map_handle(m)[i];
		const char *k = (const char *)cbor_string_handle(pr.key);
		size_t kl = cbor_string_length(pr.key);
		struct cbor_pair np = {pr.key, pr.value};

		if (kl == 11 && memcmp(k, "certificate", 11) == 0)
			np.value = cbor_move(der_item(leaf));
		else if (kl == 8 && memcmp(k, "cabundle", 8) == 0)
			np.value = bundle;
		CHECK(cbor_map_add(out, np));
	}
	plen = cbor_serialize_alloc(out, &payload, &cap);
	CHECK(plen > 0);
	CHECK_EQ_INT(cl_cose_sign1_sign(lk, payload, plen, 0, &doc, &dlen), CL_OK);
	CHECK_EQ_INT(verify_at(doc, dlen, at_of(GOOD_AT), NULL, NULL), CL_ERR_CHAIN);
done:
	free(doc);
	free(payload);
	if (m)
		cbor_decref(&m);
	if (out)
		cbor_decref(&out);
	if (bundle)
		cbor_decref(&bundle);
	cl_cose_sign1_free(&s);
	X509_free(leaf);
	X509_free(root);
	EVP_PKEY_free(lk);
	EVP_PKEY_free(rk);
	cl_buf_free(&raw);
}

static void test_time(void)
{
	struct cl_buf t = vector_read(DIR "nitro_attestation.b64");

	CHECK_EQ_INT(verify_at(t.data, t.len, at_of("2030-01-01T00:00:00Z"), NULL, NULL),
		     CL_ERR_EXPIRED);
	CHECK_EQ_INT(verify_at(t.data, t.len, at_of("2024-01-01T00:00:00Z"), NULL, NULL),
		     CL_ERR_EXPIRED);
	/* Valid again after a rejection: nothing cached beyond its window. */
	CHECK_EQ_INT(verify_at(t.data, t.len, at_of(GOOD_AT), NULL, NULL), CL_OK);
	cl_buf_free(&t);
}

static void test_bindings(void)
{
	struct cl_buf t = vector_read(DIR "nitro_attestation.b64");
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	json_t *c = NULL;
	uint8_t *nonce = NULL;
	size_t nlen = 0;
	int64_t at = at_of(GOOD_AT);

	CHECK_EQ_INT(verify_at(t.data, t.len, at, NULL, &c), CL_OK);
	CHECK(claim(c, "nonce") &&
	      cl_hex_decode(claim(c, "nonce"), strlen(claim(c, "nonce")), &nonce, &nlen) == CL_OK);
	json_decref(c);
	o.nitro.nonce = nonce;
	o.nitro.nonce_len = nlen;
	CHECK_EQ_INT(verify_at(t.data, t.len, at, &o, NULL), CL_OK);
	o.nitro.nonce_len = nlen - 1;
	CHECK_EQ_INT(verify_at(t.data, t.len, at, &o, NULL), CL_ERR_MISMATCH);
	nonce[0] ^= 1;
	o.nitro.nonce_len = nlen;
	CHECK_EQ_INT(verify_at(t.data, t.len, at, &o, NULL), CL_ERR_MISMATCH);
	o.nitro.nonce = NULL;
	/* Its user_data is 1024 bytes: no 64-byte report data can match it. */
	o.have_report_data = 1;
	memset(o.report_data, 1, sizeof(o.report_data));
	CHECK_EQ_INT(verify_at(t.data, t.len, at, &o, NULL), CL_ERR_MISMATCH);
	free(nonce);
	cl_buf_free(&t);
}

/*
 * Flips: the protected header, the first 64 bytes of the payload and the
 * whole signature byte by byte, the rest of the payload every 7th byte.
 */
static void test_flips(void)
{
	struct cl_buf raw = raw_of(DIR "nitro_attestation.b64");
	int64_t at = at_of(GOOD_AT);
	/* 84 | 44 a1013822 | a0 | 59 hhhh payload | 58 60 signature */
	size_t pay = 1 + 5 + 1 + 3, plen = 0, sig = 0;
	int accepted = 0, tried = 0;

	CHECK(raw.len > pay && raw.data[pay - 3] == 0x59);
	plen = (size_t)raw.data[pay - 2] << 8 | raw.data[pay - 1];
	sig = pay + plen + 2;
	CHECK_EQ_INT(sig + 96, raw.len);
	for (size_t i = 0; i < raw.len; i++) {
		int all = i < pay + 64 || i >= sig - 2;

		if (!all && i % 7)
			continue;
		raw.data[i] ^= 0x01;
		accepted += verify_at(raw.data, raw.len, at, NULL, NULL) == CL_OK;
		raw.data[i] ^= 0x01;
		tried++;
	}
	CHECK_EQ_INT(accepted, 0);
	CHECK(tried > 1000);
	CHECK_EQ_INT(verify_at(raw.data, raw.len, at, NULL, NULL), CL_OK);
	cl_buf_free(&raw);
}

static void test_truncations(void)
{
	struct cl_buf raw = raw_of(DIR "nitro_attestation.b64");
	struct cl_buf t = vector_read(DIR "nitro_attestation.b64");
	int64_t at = at_of(GOOD_AT);
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	int accepted = 0;

	o.format = CL_FORMAT_NITRO;
	for (size_t n = 0; n < raw.len; n++) {
		int rc = verify_at(raw.data, n, at, &o, NULL);

		accepted += rc == CL_OK || rc > 0;
	}
	for (size_t n = 0; n < t.len - 4; n += 3)
		accepted += verify_at(t.data, n, at, &o, NULL) == CL_OK;
	CHECK_EQ_INT(accepted, 0);
	/* Trailing garbage is not the document. */
	if (cl_buf_append(&raw, "\0", 1) != CL_OK)
		abort();
	CHECK(verify_at(raw.data, raw.len, at, NULL, NULL) != CL_OK);
	cl_buf_free(&raw);
	cl_buf_free(&t);
}

int main(void)
{
	cl_log_set_level(CL_LOG_ERROR);
	RUN(test_known_answers);
	RUN(test_debug);
	RUN(test_selfsigned);
	RUN(test_foreign_chain);
	RUN(test_time);
	RUN(test_bindings);
	RUN(test_flips);
	RUN(test_truncations);
	return test_done("nitro_test");
}
