/*
 * Attested TLS: the CCC and CMW encodings (known answers, truncation,
 * malformed and non-canonical CBOR), issuing with dev-TEE evidence, and
 * verification: key binding, reference values, expiry, mutated extensions,
 * the cache, Gramine's legacy extension with a real SGX quote.
 */
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <unistd.h>

#include "cloister/devtee.h"
#include "cloister/ratls.h"
#include "ratls/internal.h"
#include "test.h"

static char state_dir[] = "/tmp/cloister-ratls-test.XXXXXX";
static EVP_PKEY *root_key;
static X509 *root_cert;
static char *root_pem;
static uint8_t measurement[48];

/* The dev TEE's signer, run in-process: real reports under a real (development) root. */
static int devtee_sign(void *arg, const uint8_t rd[64], struct cl_attest_evidence *out)
{
	struct cl_devtee_report r;
	uint8_t buf[CL_DEVTEE_REPORT_LEN];

	(void)arg;
	memset(&r, 0, sizeof(r));
	r.version = CL_DEVTEE_VERSION;
	memcpy(r.measurement, measurement, sizeof(measurement));
	memcpy(r.report_data, rd, 64);
	CL_GUARD(cl_devtee_report_sign(&r, root_key, buf));
	out->format = CL_FORMAT_DEVTEE;
	return cl_buf_append(&out->evidence, buf, sizeof(buf));
}

static void setup(void)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL;
	long n = 0;

	CHECK(mkdtemp(state_dir) != NULL);
	CHECK_EQ_INT(cl_devtee_root_load(state_dir, &root_key, &root_cert), CL_OK);
	CHECK(b && PEM_write_bio_X509(b, root_cert) == 1);
	n = BIO_get_mem_data(b, &p);
	root_pem = strndup(p, (size_t)n);
	BIO_free(b);
	CHECK_EQ_INT(cl_digest(CL_SHA384, "workload a", 10, measurement), CL_OK);
}

static struct cl_refvalues *rv_for(const uint8_t m[48])
{
	char hex[97], json[256];
	struct cl_refvalues *rv = NULL;

	cl_hex_encode(m, 48, hex);
	snprintf(json, sizeof(json), "{\"devtee\": {\"measurement\": [\"%s\"]}}", hex);
	CHECK_EQ_INT(cl_refvalues_parse(json, strlen(json), &rv), CL_OK);
	return rv;
}

static struct cl_ratls_verifier *verifier(const struct cl_refvalues *rv, int64_t at)
{
	struct cl_ratls_verifier_opts o = {0};
	struct cl_ratls_verifier *v = NULL;

	o.verify.devtee.root = root_pem;
	o.verify.at = at;
	o.rv = rv;
	CHECK_EQ_INT(cl_ratls_verifier_new(&o, &v), CL_OK);
	return v;
}

static void test_claims_known_answer(void)
{
	/* Gramine's and rats-tls's exact encoding for SHA-256. */
	static const uint8_t prefix[] = {0xa1, 0x6b, 'p', 'u',	'b',  'k',  'e',  'y',	'-', 'h',
					 'a',  's',  'h', 0x58, 0x24, 0x82, 0x01, 0x58, 0x20};
	uint8_t h[CL_MAX_DIGEST];
	struct cl_buf c = {0}, e = {0};
	struct cl_ratls_evidence ev;
	uint8_t nonce[3] = {1, 2, 3};

	for (int i = 0; i < CL_MAX_DIGEST; i++)
		h[i] = (uint8_t)i;
	CHECK_EQ_INT(cl_ratls_claims_encode(CL_SHA256, h, NULL, 0, &c), CL_OK);
	CHECK_EQ_INT(c.len, sizeof(prefix) + 32);
	CHECK(memcmp(c.data, prefix, sizeof(prefix)) == 0);
	CHECK(memcmp(c.data + sizeof(prefix), h, 32) == 0);
	CHECK_EQ_INT(cl_ratls_evidence_encode(CL_RATLS_TAG_INTEL_QUOTE, (const uint8_t *)"Q", 1,
					      c.data, c.len, &e),
		     CL_OK);
	/* tag(60000) [ ... ] */
	CHECK(e.data[0] == 0xd9 && e.data[1] == 0xea && e.data[2] == 0x60 && e.data[3] == 0x82);
	CHECK_EQ_INT(cl_ratls_evidence_parse(e.data, e.len, &ev), CL_OK);
	CHECK(ev.tag == CL_RATLS_TAG_INTEL_QUOTE && ev.hash == CL_SHA256 && !ev.nonce);
	CHECK(ev.evidence_len == 1 && ev.evidence[0] == 'Q');
	CHECK(ev.pubkey_hash_len == 32 && memcmp(ev.pubkey_hash, h, 32) == 0);
	cl_buf_free(&c);
	cl_buf_free(&e);
	CHECK_EQ_INT(cl_ratls_claims_encode(CL_SHA384, h, nonce, 3, &c), CL_OK);
	CHECK_EQ_INT(cl_ratls_evidence_encode(CL_RATLS_TAG_SNP, (const uint8_t *)"R", 1, c.data,
					      c.len, &e),
		     CL_OK);
	CHECK_EQ_INT(cl_ratls_evidence_parse(e.data, e.len, &ev), CL_OK);
	CHECK(ev.hash == CL_SHA384 && ev.nonce_len == 3 && memcmp(ev.nonce, nonce, 3) == 0);
	/* Every truncation fails cleanly. */
	for (size_t n = 0; n < e.len; n++)
		CHECK(cl_ratls_evidence_parse(e.data, n, &ev) != CL_OK);
	cl_buf_free(&c);
	cl_buf_free(&e);
}

/* Parse hand-written CBOR (not evidence: the evidence item is a placeholder byte). */
static int parse_hex(const char *hex)
{
	uint8_t *b = NULL;
	size_t n = 0;
	struct cl_ratls_evidence ev;
	int rc = 0;

	CHECK_EQ_INT(cl_hex_decode(hex, strlen(hex), &b, &n), CL_OK);
	rc = cl_ratls_evidence_parse(b, n, &ev);
	free(b);
	return rc;
}

static void test_cbor_strictness(void)
{
	/* claims {"pubkey-hash": [1, h'00'*32]} as bare array, wrapped in tag 60000 [h'51', claims] */
	const char *hash32 = "0000000000000000000000000000000000000000000000000000000000000000";
	char ok[512], bad[512];

	snprintf(ok, sizeof(ok), "d9ea608241515831a16b7075626b65792d6861736882015820%s", hash32);
	CHECK_EQ_INT(parse_hex(ok), CL_OK);
	/* non-shortest tag / length, indefinite array, alg id 2, short digest, trailing byte */
	snprintf(bad, sizeof(bad), "da0000ea608241515830a16b7075626b65792d6861736882015820%s",
		 hash32);
	CHECK_EQ_INT(parse_hex(bad), CL_ERR_MALFORMED);
	snprintf(bad, sizeof(bad), "d9ea60824151580031a16b7075626b65792d6861736882015820%s",
		 hash32);
	CHECK(parse_hex(bad) != CL_OK);
	snprintf(bad, sizeof(bad), "d9ea609f41515831a16b7075626b65792d6861736882015820%sff",
		 hash32);
	CHECK_EQ_INT(parse_hex(bad), CL_ERR_MALFORMED);
	snprintf(bad, sizeof(bad), "d9ea608241515831a16b7075626b65792d6861736882025820%s", hash32);
	CHECK_EQ_INT(parse_hex(bad), CL_ERR_UNSUPPORTED);
	snprintf(bad, sizeof(bad), "d9ea608241515830a16b7075626b65792d686173688201581f%s",
		 hash32 + 2);
	CHECK_EQ_INT(parse_hex(bad), CL_ERR_MALFORMED);
	snprintf(bad, sizeof(bad), "d9ea608241515831a16b7075626b65792d6861736882015820%s00",
		 hash32);
	CHECK_EQ_INT(parse_hex(bad), CL_ERR_MALFORMED);
	/* no pubkey-hash; a repeated key; an empty evidence string */
	CHECK_EQ_INT(parse_hex("d9ea6082415145a1616b4100"), CL_ERR_MALFORMED);
	CHECK_EQ_INT(parse_hex("d9ea60824151583fa26b7075626b65792d68617368820158200000000000000000"
			       "0000000000000000000000000000000000000000000000006b7075626b65792d"
			       "686173684100"),
		     CL_ERR_MALFORMED);
	snprintf(bad, sizeof(bad), "d9ea6082405831a16b7075626b65792d6861736882015820%s", hash32);
	CHECK_EQ_INT(parse_hex(bad), CL_ERR_MALFORMED);
}

static void test_cmw(void)
{
	struct cl_ratls_cmw c, d;
	struct cl_buf b = {0};

	memset(&c, 0, sizeof(c));
	c.n = 2;
	snprintf(c.rec[0].label, sizeof(c.rec[0].label), "cpu0");
	snprintf(c.rec[0].type, sizeof(c.rec[0].type), "application/vnd.cloister.devtee-report");
	c.rec[0].value = (const uint8_t *)"abc";
	c.rec[0].value_len = 3;
	c.rec[0].ind = 4;
	snprintf(c.rec[1].label, sizeof(c.rec[1].label), "gpu0");
	c.rec[1].cf = 10571;
	c.rec[1].value = (const uint8_t *)"x";
	c.rec[1].value_len = 1;
	CHECK_EQ_INT(cl_ratls_cmw_encode(&c, &b), CL_OK);
	CHECK(b.data[0] == 0x04); /* CMW ::= CHOICE { cbor OCTET STRING } */
	CHECK_EQ_INT(cl_ratls_cmw_parse(b.data, b.len, &d), CL_OK);
	CHECK_EQ_INT(d.n, 2);
	CHECK_STR(d.rec[0].label, "cpu0");
	CHECK_STR(d.rec[0].type, "application/vnd.cloister.devtee-report");
	CHECK(d.rec[0].value_len == 3 && d.rec[0].ind == 4);
	CHECK(d.rec[1].cf == 10571 && d.rec[1].type[0] == 0 && d.rec[1].ind == 0);
	for (size_t n = 0; n < b.len; n++)
		CHECK(cl_ratls_cmw_parse(b.data, n, &d) != CL_OK);
	b.data[0] = 0x0c; /* the JSON choice */
	CHECK_EQ_INT(cl_ratls_cmw_parse(b.data, b.len, &d), CL_ERR_UNSUPPORTED);
	cl_buf_free(&b);
}

/* Wrap CBOR claims (hex, under 256 bytes) as tag 60000 [h'51', claims] and parse. */
static int parse_claims_hex(const char *claims)
{
	char hex[1024];
	size_t n = strlen(claims) / 2;

	if (n < 24)
		snprintf(hex, sizeof(hex), "d9ea60824151%02x%s", (unsigned)(0x40 + n), claims);
	else
		snprintf(hex, sizeof(hex), "d9ea6082415158%02x%s", (unsigned)n, claims);
	return parse_hex(hex);
}

static void test_cbor_claim_forms(void)
{
	const char *h32 = "0000000000000000000000000000000000000000000000000000000000000000";
	const char *key = "6b7075626b65792d68617368"; /* "pubkey-hash" */
	char c[512];

	/* bstr-wrapped (Gramine, rats-tls) and bare, with a nonce and a custom claim */
	snprintf(c, sizeof(c),
		 "a3%s58248201"
		 "5820%s656e6f6e6365420102617842ffff",
		 key, h32);
	CHECK_EQ_INT(parse_claims_hex(c), CL_OK);
	snprintf(c, sizeof(c),
		 "a2%s8201"
		 "5820%s656e6f6e6365420102",
		 key, h32);
	CHECK_EQ_INT(parse_claims_hex(c), CL_OK);
	/* a non-shortest alg id, inside and outside the wrapping */
	snprintf(c, sizeof(c),
		 "a1%s5825821801"
		 "5820%s",
		 key, h32);
	CHECK_EQ_INT(parse_claims_hex(c), CL_ERR_MALFORMED);
	snprintf(c, sizeof(c),
		 "a1%s821801"
		 "5820%s",
		 key, h32);
	CHECK_EQ_INT(parse_claims_hex(c), CL_ERR_MALFORMED);
	/* a non-shortest nonce length; a custom claim that is not a byte string */
	snprintf(c, sizeof(c),
		 "a2%s8201"
		 "5820%s656e6f6e636558020102",
		 key, h32);
	CHECK_EQ_INT(parse_claims_hex(c), CL_ERR_MALFORMED);
	snprintf(c, sizeof(c),
		 "a2%s8201"
		 "5820%s617801",
		 key, h32);
	CHECK_EQ_INT(parse_claims_hex(c), CL_ERR_MALFORMED);
	/* a byte after the wrapped array */
	snprintf(c, sizeof(c),
		 "a1%s58258201"
		 "5820%s00",
		 key, h32);
	CHECK_EQ_INT(parse_claims_hex(c), CL_ERR_MALFORMED);
}

static void test_cmw_forms(void)
{
	/* OCTET STRING { {"a": [10571, h'78'], "__cmwc_t": "tag:x"} } */
	static const uint8_t in[] = {0x04, 0x18, 0xa2, 0x61, 'a', 0x82, 0x19, 0x29, 0x4b,
				     0x41, 'x',	 0x68, '_',  '_', 'c',	'm',  'w',  'c',
				     '_',  't',	 0x65, 't',  'a', 'g',	':',  'x'};
	/* The same record alone, as the encoder must write it. */
	static const uint8_t enc[] = {0x04, 0x09, 0xa1, 0x61, 'a', 0x82,
				      0x19, 0x29, 0x4b, 0x41, 'x'};
	static const uint8_t padded[] = {0x04, 0x0b, 0xa1, 0x61, 'a',  0x82, 0x1a,
					 0x00, 0x00, 0x29, 0x4b, 0x41, 'x'};
	struct cl_ratls_cmw c;
	struct cl_buf b = {0};
	uint8_t m[sizeof(in)];

	CHECK_EQ_INT(cl_ratls_cmw_parse(in, sizeof(in), &c), CL_OK);
	CHECK(c.n == 1 && c.rec[0].cf == 10571 && c.rec[0].type[0] == 0);
	CHECK(c.rec[0].value == in + 10 && c.rec[0].value_len == 1); /* into the input */
	CHECK_EQ_INT(cl_ratls_cmw_encode(&c, &b), CL_OK);
	CHECK(b.len == sizeof(enc) && memcmp(b.data, enc, sizeof(enc)) == 0);
	cl_buf_free(&b);
	CHECK_EQ_INT(cl_ratls_cmw_parse(enc, sizeof(enc), &c), CL_OK);
	CHECK_EQ_INT(cl_ratls_cmw_parse(padded, sizeof(padded), &c), CL_ERR_MALFORMED);
	/* A nested collection where a record belongs. */
	memcpy(m, in, sizeof(in));
	m[5] = 0xa1; /* {10571: h'78'} */
	CHECK_EQ_INT(cl_ratls_cmw_parse(m, sizeof(m), &c), CL_ERR_UNSUPPORTED);
}

static struct cl_ratls_issue_opts issue_opts(int64_t now)
{
	struct cl_ratls_issue_opts o = {0};

	o.attest = devtee_sign;
	o.now = now;
	return o;
}

static void test_issue_and_verify(void)
{
	struct cl_ratls_issue_opts o = issue_opts(0);
	struct cl_refvalues *rv = rv_for(measurement);
	struct cl_ratls_verifier *v = verifier(rv, 0);
	struct cl_ratls_result res;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	const uint8_t *p = NULL;
	size_t n = 0;
	int crit = -1;
	BASIC_CONSTRAINTS *bc = NULL;

	CHECK_EQ_INT(cl_ratls_issue(&o, &key, &cert), CL_OK);
	CHECK_EQ_INT(cl_x509_ext_by_oid(cert, CL_RATLS_OID_EVIDENCE, &p, &n), CL_OK);
	bc = X509_get_ext_d2i(cert, NID_basic_constraints, &crit, NULL);
	CHECK(bc && !bc->ca && crit == 1);
	BASIC_CONSTRAINTS_free(bc);
	CHECK_EQ_INT(cl_ratls_verify_cert(v, cert, NULL, 0, &res), CL_OK);
	CHECK(!res.cached && res.format == CL_FORMAT_DEVTEE && res.tier == CL_TIER_AFFIRMING);
	CHECK_STR(res.source, "ccc");
	CHECK(res.claims && json_is_true(json_object_get(res.claims, "development")));
	cl_ratls_result_free(&res);
	CHECK_EQ_INT(cl_ratls_verify_cert(v, cert, NULL, 0, &res), CL_OK);
	CHECK(res.cached);
	CHECK_EQ_INT(cl_ratls_verifier_cached(v), 1);
	cl_ratls_result_free(&res);
	/* A nonce the certificate does not carry is refused (and never cached). */
	CHECK_EQ_INT(cl_ratls_verify_cert(v, cert, (const uint8_t *)"12345678", 8, &res),
		     CL_ERR_MISMATCH);
	cl_ratls_result_free(&res);
	EVP_PKEY_free(key);
	X509_free(cert);
	cl_ratls_verifier_free(v);
	cl_refvalues_free(rv);
}

static void test_fresh(void)
{
	struct cl_ratls_issue_opts o = issue_opts(0);
	struct cl_refvalues *rv = rv_for(measurement);
	struct cl_ratls_verifier *v = verifier(rv, 0);
	struct cl_ratls_result res;
	EVP_PKEY *key = NULL, *other = EVP_EC_gen("P-256");
	X509 *cert = NULL;
	struct cl_buf f = {0};
	uint8_t nonce[16] = {7}, wrong[16] = {8};

	CHECK_EQ_INT(cl_ratls_issue(&o, &key, &cert), CL_OK);
	CHECK_EQ_INT(cl_ratls_fresh_evidence(&o, cert, nonce, sizeof(nonce), &f), CL_OK);
	CHECK_EQ_INT(cl_ratls_verify_fresh(v, f.data, f.len, key, nonce, sizeof(nonce), &res),
		     CL_OK);
	cl_ratls_result_free(&res);
	CHECK_EQ_INT(cl_ratls_verify_fresh(v, f.data, f.len, key, wrong, sizeof(wrong), &res),
		     CL_ERR_MISMATCH);
	cl_ratls_result_free(&res);
	CHECK_EQ_INT(cl_ratls_verify_fresh(v, f.data, f.len, other, nonce, sizeof(nonce), &res),
		     CL_ERR_MISMATCH);
	CHECK(strstr(res.reason, "key binding") != NULL);
	cl_ratls_result_free(&res);
	cl_buf_free(&f);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	X509_free(cert);
	cl_ratls_verifier_free(v);
	cl_refvalues_free(rv);
}

/* A copy of cert for another key, with the extensions carried over byte for byte. */
static X509 *rekey(X509 *cert, EVP_PKEY *key, const char *drop_oid)
{
	X509 *x = X509_dup(cert);
	ASN1_OBJECT *obj = drop_oid ? OBJ_txt2obj(drop_oid, 1) : NULL;

	CHECK(x && X509_set_pubkey(x, key) == 1);
	if (obj) {
		int i = X509_get_ext_by_OBJ(x, obj, -1);

		X509_EXTENSION_free(X509_delete_ext(x, i));
		ASN1_OBJECT_free(obj);
	}
	CHECK(X509_sign(x, key, EVP_sha256()) > 0);
	return x;
}

static void test_refusals(void)
{
	struct cl_ratls_issue_opts o = issue_opts(0);
	struct cl_refvalues *rv = rv_for(measurement);
	uint8_t other_m[48];
	struct cl_refvalues *rv_other = NULL;
	struct cl_ratls_verifier *v = verifier(rv, 0), *vo = NULL, *vlate = NULL;
	struct cl_ratls_result res;
	EVP_PKEY *key = NULL, *kold = NULL, *k2 = EVP_EC_gen("P-256");
	X509 *cert = NULL, *stolen = NULL, *old = NULL;

	CHECK_EQ_INT(cl_digest(CL_SHA384, "workload b", 10, other_m), CL_OK);
	rv_other = rv_for(other_m);
	vo = verifier(rv_other, 0);
	CHECK_EQ_INT(cl_ratls_issue(&o, &key, &cert), CL_OK);

	/* Measurement not in the reference values. */
	CHECK_EQ_INT(cl_ratls_verify_cert(vo, cert, NULL, 0, &res), CL_ERR_POLICY);
	CHECK(strstr(res.reason, "measurement is not in the reference values") != NULL);
	cl_ratls_result_free(&res);
	CHECK_EQ_INT(cl_ratls_verifier_cached(vo), 0);

	/* Evidence that belongs to another key. */
	stolen = rekey(cert, k2, NULL);
	CHECK_EQ_INT(cl_ratls_verify_cert(v, stolen, NULL, 0, &res), CL_ERR_MISMATCH);
	CHECK(strstr(res.reason, "key binding broken") != NULL);
	cl_ratls_result_free(&res);
	X509_free(stolen);
	/* ... also when only the CMW record is left. */
	stolen = rekey(cert, k2, CL_RATLS_OID_EVIDENCE);
	CHECK_EQ_INT(cl_ratls_verify_cert(v, stolen, NULL, 0, &res), CL_ERR_NOT_FOUND);
	cl_ratls_result_free(&res);
	X509_free(stolen);

	/* Expired: issued two hours ago with a one-hour lifetime; and not yet valid. */
	o.now = (int64_t)time(NULL) - 7200;
	CHECK_EQ_INT(cl_ratls_issue(&o, &kold, &old), CL_OK);
	CHECK_EQ_INT(cl_ratls_verify_cert(v, old, NULL, 0, &res), CL_ERR_EXPIRED);
	cl_ratls_result_free(&res);
	vlate = verifier(rv, (int64_t)time(NULL) - 86400);
	CHECK_EQ_INT(cl_ratls_verify_cert(vlate, cert, NULL, 0, &res), CL_ERR_EXPIRED);
	cl_ratls_result_free(&res);

	EVP_PKEY_free(key);
	EVP_PKEY_free(kold);
	EVP_PKEY_free(k2);
	X509_free(cert);
	X509_free(old);
	cl_ratls_verifier_free(v);
	cl_ratls_verifier_free(vo);
	cl_ratls_verifier_free(vlate);
	cl_refvalues_free(rv);
	cl_refvalues_free(rv_other);
}

/* Replace extension oid of cert with bytes, re-signed by key. */
static X509 *with_ext(X509 *cert, EVP_PKEY *key, const char *oid, const uint8_t *p, size_t n)
{
	X509 *x = X509_dup(cert);
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	int i = X509_get_ext_by_OBJ(x, obj, -1);
	X509_EXTENSION *e = NULL;

	if (i >= 0)
		X509_EXTENSION_free(X509_delete_ext(x, i));
	CHECK(ASN1_OCTET_STRING_set(os, p, (int)n) == 1);
	e = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
	CHECK(e && X509_add_ext(x, e, -1) == 1);
	CHECK(X509_sign(x, key, EVP_sha256()) > 0);
	X509_EXTENSION_free(e);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	return x;
}

static void test_mutated_extensions(void)
{
	struct cl_ratls_issue_opts o = issue_opts(0);
	struct cl_refvalues *rv = rv_for(measurement);
	struct cl_ratls_verifier *v = verifier(rv, 0);
	struct cl_ratls_result res;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL, *x = NULL;
	const uint8_t *p = NULL;
	uint8_t *m = NULL;
	size_t n = 0;
	int accepted = 0;

	CHECK_EQ_INT(cl_ratls_issue(&o, &key, &cert), CL_OK);
	CHECK_EQ_INT(cl_x509_ext_by_oid(cert, CL_RATLS_OID_EVIDENCE, &p, &n), CL_OK);
	m = malloc(n);
	/* Every byte flipped in turn (the report's, the claims', the CBOR heads'). */
	for (size_t i = 0; i < n; i += 7) {
		memcpy(m, p, n);
		m[i] ^= 0x01;
		x = with_ext(cert, key, CL_RATLS_OID_EVIDENCE, m, n);
		if (cl_ratls_verify_cert(v, x, NULL, 0, &res) == CL_OK)
			accepted++;
		cl_ratls_result_free(&res);
		X509_free(x);
	}
	CHECK_EQ_INT(accepted, 0);
	for (size_t len = 0; len < n; len += 37) {
		memcpy(m, p, n);
		x = with_ext(cert, key, CL_RATLS_OID_EVIDENCE, m, len);
		CHECK(cl_ratls_verify_cert(v, x, NULL, 0, &res) != CL_OK);
		cl_ratls_result_free(&res);
		X509_free(x);
	}
	free(m);
	/* A CMW CPU record that is not the certificate's evidence. */
	CHECK_EQ_INT(cl_x509_ext_by_oid(cert, CL_RATLS_OID_CMW, &p, &n), CL_OK);
	m = malloc(n);
	memcpy(m, p, n);
	m[n - 10] ^= 1;
	x = with_ext(cert, key, CL_RATLS_OID_CMW, m, n);
	CHECK_EQ_INT(cl_ratls_verify_cert(v, x, NULL, 0, &res), CL_ERR_MISMATCH);
	cl_ratls_result_free(&res);
	X509_free(x);
	free(m);
	EVP_PKEY_free(key);
	X509_free(cert);
	cl_ratls_verifier_free(v);
	cl_refvalues_free(rv);
}

static void test_gramine_real_quote(void)
{
	struct cl_buf q = vector_read("sgx/dcap-qvl/sgx_quote");
	struct cl_ratls_issue_opts o = issue_opts(0);
	struct cl_ratls_verifier_opts vo = {0};
	struct cl_ratls_verifier *v = NULL;
	struct cl_ratls_result res;
	struct cl_buf c = {0}, e = {0};
	struct cl_ratls_evidence ev;
	uint8_t h[CL_MAX_DIGEST] = {0};
	EVP_PKEY *key = NULL;
	X509 *cert = NULL, *g = NULL;
	ASN1_OBJECT *obj = OBJ_txt2obj(CL_RATLS_OID_EVIDENCE, 1);

	/* The real quote inside the CCC structure parses back to the same bytes. */
	CHECK_EQ_INT(cl_ratls_claims_encode(CL_SHA256, h, NULL, 0, &c), CL_OK);
	CHECK_EQ_INT(cl_ratls_evidence_encode(CL_RATLS_TAG_INTEL_QUOTE, q.data, q.len, c.data,
					      c.len, &e),
		     CL_OK);
	CHECK_EQ_INT(cl_ratls_evidence_parse(e.data, e.len, &ev), CL_OK);
	CHECK(ev.evidence_len == q.len && memcmp(ev.evidence, q.data, q.len) == 0);

	/* Gramine's legacy extension with it: the quote is genuine, its report data
	 * ("Hello, world!") binds no key, so the binding check refuses it. */
	CHECK_EQ_INT(cl_ratls_issue(&o, &key, &cert), CL_OK);
	X509_EXTENSION_free(X509_delete_ext(cert, X509_get_ext_by_OBJ(cert, obj, -1)));
	g = with_ext(cert, key, CL_RATLS_OID_GRAMINE, q.data, q.len);
	ASN1_OBJECT_free(obj);
	obj = OBJ_txt2obj(CL_RATLS_OID_CMW, 1);
	X509_EXTENSION_free(X509_delete_ext(g, X509_get_ext_by_OBJ(g, obj, -1)));
	CHECK(X509_sign(g, key, EVP_sha256()) > 0);
	vo.verify.dcap.collateral = vector_path("sgx/dcap-qvl/sgx_quote_collateral.json");
	vo.verify.offline = 1;
	vo.allow_warning = 1;
	CHECK_EQ_INT(cl_ratls_verifier_new(&vo, &v), CL_OK);
	CHECK(cl_ratls_verify_cert(v, g, NULL, 0, &res) != CL_OK);
	CHECK_STR(res.source, "gramine");
	CHECK(res.format == CL_FORMAT_SGX);
	cl_ratls_result_free(&res);
	ASN1_OBJECT_free(obj);
	cl_ratls_verifier_free(v);
	EVP_PKEY_free(key);
	X509_free(cert);
	X509_free(g);
	cl_buf_free(&c);
	cl_buf_free(&e);
	cl_buf_free(&q);
}

/* parse(text): cl_ratls_fresh_parse on text, with nonce length and head length. */
static enum cl_ratls_head parse(const char *text, size_t n, size_t *nlen, size_t *hlen)
{
	uint8_t nonce[CL_RATLS_MAX_NONCE];

	return cl_ratls_fresh_parse((const uint8_t *)text, n, nonce, nlen, hlen);
}

static void test_fresh_request_head(void)
{
	static const char *const ok[] = {
		/* No header lines: the request line ends where the head does. */
		"GET " CL_RATLS_FRESH_PATH "?nonce=00ff HTTP/1.1\r\n\r\n",
		"GET " CL_RATLS_FRESH_PATH "?nonce=00FF HTTP/1.0\r\n\r\n",
		"GET " CL_RATLS_FRESH_PATH "?nonce=00ff HTTP/1.1\r\nHost: x\r\n\r\n",
		"GET " CL_RATLS_FRESH_PATH "?a=b&nonce=00ff&c HTTP/1.1\r\nHost: x\r\nA: b\r\n\r\n",
	};
	static const char *const bad[] = {
		"GET " CL_RATLS_FRESH_PATH " HTTP/1.1\r\n\r\n", /* no nonce */
		"GET " CL_RATLS_FRESH_PATH "? HTTP/1.1\r\n\r\n",
		"GET " CL_RATLS_FRESH_PATH "?nonce= HTTP/1.1\r\n\r\n",
		"GET " CL_RATLS_FRESH_PATH "?nonce=0 HTTP/1.1\r\n\r\n",
		"GET " CL_RATLS_FRESH_PATH "?nonce=0g HTTP/1.1\r\n\r\n",
		"GET " CL_RATLS_FRESH_PATH "?nonce=00ff HTTP/2.0\r\n\r\n",
		"GET " CL_RATLS_FRESH_PATH "?nonce=00ff\r\n\r\n",
		"GET " CL_RATLS_FRESH_PATH "?nonce=00ff  HTTP/1.1\r\n\r\n",
		"GET " CL_RATLS_FRESH_PATH "?nonce=00ff HTTP/1.1 \r\n\r\n",
		"GET " CL_RATLS_FRESH_PATH "?nonce=00ff HTTP/1.1\rX\r\n\r\n",
		"GET " CL_RATLS_FRESH_PATH "?nonce=00\tff HTTP/1.1\r\n\r\n",
		"GET " CL_RATLS_FRESH_PATH "?x=1 HTTP/1.1\r\n\r\n",
	};
	char big[CL_RATLS_MAX_HEAD + 64], hex[2 * CL_RATLS_MAX_NONCE + 3];
	size_t nlen = 0, hlen = 0, len = 0;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		len = strlen(ok[i]);
		CHECK_EQ_INT(parse(ok[i], len, &nlen, &hlen), CL_RATLS_HEAD_OK);
		CHECK_EQ_INT(nlen, 2);
		CHECK_EQ_INT(hlen, len);
		/* Every proper prefix is undecided, never a verdict on half a head. */
		for (size_t n = strlen("GET " CL_RATLS_FRESH_PATH) + 1; n < len; n++)
			CHECK_EQ_INT(parse(ok[i], n, &nlen, &hlen), CL_RATLS_HEAD_MORE);
	}
	/* What follows the head (a pipelined request) is not part of it. */
	snprintf(big, sizeof(big), "%sGET / HTTP/1.1\r\n\r\n", ok[0]);
	CHECK_EQ_INT(parse(big, strlen(big), &nlen, &hlen), CL_RATLS_HEAD_OK);
	CHECK_EQ_INT(hlen, strlen(ok[0]));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_EQ_INT(parse(bad[i], strlen(bad[i]), &nlen, &hlen), CL_RATLS_HEAD_BAD);
		CHECK_EQ_INT(hlen, strlen(bad[i]));
	}
	/* Other requests are the upstream's, decided as early as possible. */
	CHECK_EQ_INT(parse("GET /x", 6, &nlen, &hlen), CL_RATLS_HEAD_NOT);
	CHECK_EQ_INT(parse("POST " CL_RATLS_FRESH_PATH, 38, &nlen, &hlen), CL_RATLS_HEAD_NOT);
	CHECK_EQ_INT(parse("GET " CL_RATLS_FRESH_PATH "x HTTP/1.1\r\n\r\n", 50, &nlen, &hlen),
		     CL_RATLS_HEAD_NOT);
	CHECK_EQ_INT(parse("G", 1, &nlen, &hlen), CL_RATLS_HEAD_MORE);
	CHECK_EQ_INT(parse("", 0, &nlen, &hlen), CL_RATLS_HEAD_MORE);
	/* Nonce sizes: 1 to CL_RATLS_MAX_NONCE bytes. */
	memset(hex, 'a', sizeof(hex));
	for (size_t n = 2 * CL_RATLS_MAX_NONCE; n <= 2 * CL_RATLS_MAX_NONCE + 2; n += 2) {
		snprintf(big, sizeof(big), "GET %s?nonce=%.*s HTTP/1.1\r\n\r\n",
			 CL_RATLS_FRESH_PATH, (int)n, hex);
		CHECK_EQ_INT(parse(big, strlen(big), &nlen, &hlen),
			     n <= 2 * CL_RATLS_MAX_NONCE ? CL_RATLS_HEAD_OK : CL_RATLS_HEAD_BAD);
	}
	CHECK_EQ_INT(nlen, 0);
	/* The head terminator: LF LF is not one; CR LF CR LF must end by CL_RATLS_MAX_HEAD. */
	snprintf(big, sizeof(big), "GET %s?nonce=00 HTTP/1.1\n\n", CL_RATLS_FRESH_PATH);
	CHECK_EQ_INT(parse(big, strlen(big), &nlen, &hlen), CL_RATLS_HEAD_MORE);
	for (size_t end = CL_RATLS_MAX_HEAD - 1; end <= CL_RATLS_MAX_HEAD + 1; end++) {
		len = (size_t)snprintf(big, sizeof(big),
				       "GET %s?nonce=00 HTTP/1.1\r\nX: ", CL_RATLS_FRESH_PATH);
		memset(big + len, 'x', end - 4 - len);
		memcpy(big + end - 4, "\r\n\r\n", 4);
		CHECK_EQ_INT(parse(big, end, &nlen, &hlen),
			     end <= CL_RATLS_MAX_HEAD ? CL_RATLS_HEAD_OK : CL_RATLS_HEAD_TOO_LONG);
		/* Cut just before the terminator completes. */
		CHECK_EQ_INT(parse(big, end - 1, &nlen, &hlen), end - 1 < CL_RATLS_MAX_HEAD
									? CL_RATLS_HEAD_MORE
									: CL_RATLS_HEAD_TOO_LONG);
	}
}

int main(void)
{
	setup();
	RUN(test_claims_known_answer);
	RUN(test_cbor_strictness);
	RUN(test_cbor_claim_forms);
	RUN(test_cmw_forms);
	RUN(test_cmw);
	RUN(test_issue_and_verify);
	RUN(test_fresh);
	RUN(test_fresh_request_head);
	RUN(test_refusals);
	RUN(test_mutated_extensions);
	RUN(test_gramine_real_quote);
	EVP_PKEY_free(root_key);
	X509_free(root_cert);
	free(root_pem);
	cl_policy_thread_release();
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf %s", state_dir);
		CHECK(system(cmd) == 0);
	}
	return test_done("ratls_test");
}
