/*
 * Arm PSA attestation tokens: the two TF-M tokens from veraison/psatoken
 * (PSA_IOT_PROFILE_1 and psa 2.0.0) verify under TF-M's test IAK given as a
 * JWK or as PEM, with their known claims; another IAK, another curve or none
 * at all is refused; every byte flipped and every truncation is rejected
 * cleanly; the claim checks past the signature run on real payloads changed
 * and re-signed at test time.
 */
#include <jose/openssl.h>
#include <openssl/ec.h>
#include <openssl/pem.h>

#include "cloister/cose.h"
#include "cloister/crypto.h"
#include "cloister/evidence.h"
#include "test.h"

#define DIR "psa/veraison-psatoken/"

static struct cl_buf iak;

static int verify(const uint8_t *p, size_t n, const uint8_t *key, size_t key_len,
		  struct cl_verify_result *r)
{
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;

	o.psa.iak = key;
	o.psa.iak_len = key_len;
	return cl_verify_evidence(p, n, &o, r);
}

static const char *claim(const struct cl_verify_result *r, const char *k)
{
	return json_string_value(json_object_get(r->claims, k));
}

static const char *swc(const struct cl_verify_result *r, size_t i, const char *k)
{
	return json_string_value(
		json_object_get(json_array_get(json_object_get(r->claims, "sw_components"), i), k));
}

static void known_answers(const char *file, const char *profile, const char *spe_measurement)
{
	struct cl_buf t = vector_read(file);
	struct cl_verify_result r = {0};
	char zeros[129];

	memset(zeros, '0', 128);
	zeros[128] = '\0';
	CHECK_EQ_INT(cl_format_detect(t.data, t.len), CL_FORMAT_PSA);
	CHECK_EQ_INT(verify(t.data, t.len, iak.data, iak.len, &r), CL_OK);
	CHECK_EQ_INT(r.format, CL_FORMAT_PSA);
	CHECK_STR(claim(&r, "platform"), "psa");
	CHECK_STR(claim(&r, "profile"), profile);
	CHECK_STR(claim(&r, "report_data"), zeros);
	/* Implementation id -75003 / 2396; a0a1…bf is the boot seed (-75004 / 2397). */
	CHECK_STR(claim(&r, "implementation_id"),
		  "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd");
	CHECK_STR(claim(&r, "boot_seed"),
		  "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf");
	CHECK_STR(claim(&r, "instance_id"),
		  "01fa58755f658627ce5460f29b75296713248cae7ad9e2984b90280efcbcb50248");
	CHECK_STR(claim(&r, "verification_service"), "www.trustedfirmware.org");
	CHECK_STR(claim(&r, "hardware_version"), "0604565272829-10010");
	CHECK_EQ_INT(json_integer_value(json_object_get(r.claims, "client_id")), 3002);
	CHECK_STR(
		json_string_value(json_object_get(json_object_get(r.claims, "lifecycle"), "name")),
		"secured");
	CHECK_EQ_INT(json_integer_value(
			     json_object_get(json_object_get(r.claims, "lifecycle"), "value")),
		     0x3000);
	CHECK_EQ_INT(json_array_size(json_object_get(r.claims, "sw_components")), 2);
	CHECK_STR(swc(&r, 0, "measurement_type"), "SPE");
	CHECK_STR(swc(&r, 0, "version"), "1.6.0");
	CHECK_STR(swc(&r, 0, "measurement_description"), "SHA256");
	CHECK_STR(swc(&r, 0, "measurement_value"), spe_measurement);
	CHECK_STR(swc(&r, 0, "signer_id"),
		  "bfe6d86f8826f4ff97fb96c4e6fbc4993e4619fc565da26adf34c329489adc38");
	CHECK_STR(swc(&r, 1, "measurement_type"), "NSPE");
	CHECK_STR(swc(&r, 1, "version"), "0.0.0");
	CHECK_STR(swc(&r, 1, "measurement_value"),
		  "087d13c68f32aaafb8c4fc0a2253445432009765e216fb85c398c9580522c1bf");
	CHECK(strlen(claim(&r, "measurement")) == 64);
	CHECK_EQ_INT(json_integer_value(json_object_get(r.claims, "trailing_bytes")), 0);
	CHECK(json_is_false(json_object_get(r.claims, "debug")));
	cl_verify_result_free(&r);
	cl_buf_free(&t);
}

static void test_known_answers(void)
{
	known_answers(DIR "tfm-p1-token.cbor", "PSA_IOT_PROFILE_1",
		      "81e265884997ccc4fbb37738b99842bd6408dae6a02b4db709b1ac198840f05a");
	known_answers(DIR "tfm-p2-token.cbor", "http://arm.com/psa/2.0.0",
		      "96a2ec56c65120a60ce3a53ef8d2082233772aacd5b17935a92be12ac577f685");
}

static char *pem_of(EVP_PKEY *k, size_t *n)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *out = NULL;
	long len = 0;

	if (!b || PEM_write_bio_PUBKEY(b, k) != 1)
		abort();
	len = BIO_get_mem_data(b, &p);
	out = malloc((size_t)len + 1);
	if (!out)
		abort();
	memcpy(out, p, (size_t)len);
	out[len] = '\0';
	*n = (size_t)len;
	BIO_free(b);
	return out;
}

static void test_keys(void)
{
	struct cl_buf t = vector_read(DIR "tfm-p2-token.cbor");
	struct cl_verify_result r = {0};
	json_t *jwk = json_loadb((const char *)iak.data, iak.len, 0, NULL);
	EVP_PKEY *tfm = jose_openssl_jwk_to_EVP_PKEY(NULL, jwk);
	EVP_PKEY *other = EVP_EC_gen("P-256"), *p384 = EVP_EC_gen("P-384");
	size_t n = 0;
	char *pem = NULL;

	CHECK(tfm && other && p384);
	/* The same IAK as PEM. */
	pem = pem_of(tfm, &n);
	CHECK_EQ_INT(verify(t.data, t.len, (const uint8_t *)pem, n, &r), CL_OK);
	cl_verify_result_free(&r);
	free(pem);
	/* Another P-256 key. */
	pem = pem_of(other, &n);
	CHECK_EQ_INT(verify(t.data, t.len, (const uint8_t *)pem, n, &r), CL_ERR_SIGNATURE);
	CHECK(r.claims != NULL);
	cl_verify_result_free(&r);
	free(pem);
	/* A key on the wrong curve for ES256. */
	pem = pem_of(p384, &n);
	CHECK(verify(t.data, t.len, (const uint8_t *)pem, n, &r) != CL_OK);
	cl_verify_result_free(&r);
	free(pem);
	/* No IAK: refused, and the reason says what is missing. */
	CHECK_EQ_INT(verify(t.data, t.len, NULL, 0, &r), CL_ERR_POLICY);
	CHECK(strstr(r.reason, "--psa-iak") != NULL);
	CHECK(r.claims != NULL);
	cl_verify_result_free(&r);
	/* Not a key. */
	CHECK_EQ_INT(verify(t.data, t.len, (const uint8_t *)"{\"kty\":\"EC\"}", 12, &r),
		     CL_ERR_ARG);
	cl_verify_result_free(&r);
	CHECK_EQ_INT(verify(t.data, t.len, (const uint8_t *)"junk", 4, &r), CL_ERR_ARG);
	cl_verify_result_free(&r);
	json_decref(jwk);
	EVP_PKEY_free(tfm);
	EVP_PKEY_free(other);
	EVP_PKEY_free(p384);
	cl_buf_free(&t);
}

static void test_report_data(void)
{
	struct cl_buf t = vector_read(DIR "tfm-p1-token.cbor");
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result r = {0};

	o.psa.iak = iak.data;
	o.psa.iak_len = iak.len;
	o.have_report_data = 1;
	CHECK_EQ_INT(cl_verify_evidence(t.data, t.len, &o, &r), CL_OK);
	cl_verify_result_free(&r);
	o.report_data[63] = 1;
	CHECK_EQ_INT(cl_verify_evidence(t.data, t.len, &o, &r), CL_ERR_MISMATCH);
	cl_verify_result_free(&r);
	cl_buf_free(&t);
}

/* Every byte flipped, every truncation and one byte appended: rejected, never a crash. */
static void mutations(const char *file)
{
	struct cl_buf t = vector_read(file);
	uint8_t *m = malloc(t.len + 1);
	struct cl_verify_result r = {0};
	int flips_ok = 1, cuts_ok = 1;

	if (!m)
		abort();
	for (size_t i = 0; i < t.len; i++) {
		memcpy(m, t.data, t.len);
		m[i] ^= 0x01;
		if (verify(m, t.len, iak.data, iak.len, &r) == CL_OK || !r.reason[0]) {
			fprintf(stderr, "flip at %zu accepted\n", i);
			flips_ok = 0;
		}
		cl_verify_result_free(&r);
	}
	for (size_t n = 0; n < t.len; n++) {
		struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;

		o.format = CL_FORMAT_PSA;
		o.psa.iak = iak.data;
		o.psa.iak_len = iak.len;
		memcpy(m, t.data, n);
		if (cl_verify_evidence(m, n, &o, &r) == CL_OK || !r.reason[0] || r.claims) {
			fprintf(stderr, "truncation to %zu not rejected cleanly\n", n);
			cuts_ok = 0;
		}
		cl_verify_result_free(&r);
	}
	CHECK(flips_ok);
	CHECK(cuts_ok);
	memcpy(m, t.data, t.len);
	m[t.len] = 0;
	CHECK(verify(m, t.len + 1, iak.data, iak.len, &r) != CL_OK);
	cl_verify_result_free(&r);
	free(m);
	cl_buf_free(&t);
}

static void test_mutations(void)
{
	mutations(DIR "tfm-p1-token.cbor");
	mutations(DIR "tfm-p2-token.cbor");
}

/*
 * The p2 token's payload with one value replaced (same length), re-signed by
 * a key made here: the checks after the signature see real claims.
 */
/* A payload signed by a key made here, verified under that key. */
static int resign(const uint8_t *payload, size_t n, int allow_debug, struct cl_verify_result *r)
{
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	EVP_PKEY *k = EVP_EC_gen("P-256");
	uint8_t *tok = NULL;
	size_t tok_len = 0, pem_len = 0;
	char *pem = NULL;
	int rc = CL_ERR_INTERNAL;

	if (!k || cl_cose_sign1_sign(k, payload, n, 1, &tok, &tok_len) != CL_OK)
		abort();
	pem = pem_of(k, &pem_len);
	o.psa.iak = (const uint8_t *)pem;
	o.psa.iak_len = pem_len;
	o.allow_debug = allow_debug;
	rc = cl_verify_evidence(tok, tok_len, &o, r);
	free(pem);
	free(tok);
	EVP_PKEY_free(k);
	return rc;
}

/*
 * The p2 token's payload with one value replaced (same length), re-signed:
 * the checks after the signature see real claims.
 */
static int resigned(const uint8_t *from, const uint8_t *to, size_t n, int allow_debug,
		    struct cl_verify_result *r)
{
	struct cl_buf t = vector_read(DIR "tfm-p2-token.cbor");
	struct cl_cose_sign1 s;
	uint8_t *payload = NULL;
	int rc = CL_ERR_INTERNAL;

	if (cl_cose_sign1_parse(t.data, t.len, &s) != CL_OK)
		abort();
	payload = malloc(s.payload_len);
	if (!payload)
		abort();
	memcpy(payload, s.payload, s.payload_len);
	for (size_t i = 0; i + n <= s.payload_len; i++)
		if (memcmp(payload + i, from, n) == 0) {
			memcpy(payload + i, to, n);
			break;
		}
	rc = resign(payload, s.payload_len, allow_debug, r);
	free(payload);
	cl_cose_sign1_free(&s);
	cl_buf_free(&t);
	return rc;
}

static size_t find(const uint8_t *p, size_t n, const uint8_t *what, size_t wn)
{
	for (size_t i = 0; i + wn <= n; i++)
		if (memcmp(p + i, what, wn) == 0)
			return i;
	abort();
}

/*
 * Profile 1 without software measurements: the p1 payload with its
 * components (-75006, up to the verification service -75010 that follows
 * them) replaced by no-software-measurements (-75007: 1); with both present
 * (one more map entry) it is malformed.
 */
static void test_no_sw_measurements(void)
{
	static const uint8_t swc[] = {0x3a, 0x00, 0x01, 0x24, 0xfd};
	static const uint8_t vsi[] = {0x3a, 0x00, 0x01, 0x25, 0x01};
	static const uint8_t none[] = {0x3a, 0x00, 0x01, 0x24, 0xfe, 0x01};
	struct cl_buf t = vector_read(DIR "tfm-p1-token.cbor"), p = {0};
	struct cl_verify_result r = {0};
	struct cl_cose_sign1 s;
	size_t a = 0, b = 0;

	if (cl_cose_sign1_parse(t.data, t.len, &s) != CL_OK)
		abort();
	a = find(s.payload, s.payload_len, swc, sizeof(swc));
	b = find(s.payload, s.payload_len, vsi, sizeof(vsi));
	CHECK(a < b);
	CHECK(cl_buf_append(&p, s.payload, a) == CL_OK &&
	      cl_buf_append(&p, none, sizeof(none)) == CL_OK &&
	      cl_buf_append(&p, s.payload + b, s.payload_len - b) == CL_OK);
	CHECK_EQ_INT(resign(p.data, p.len, 0, &r), CL_OK);
	CHECK_EQ_INT(json_array_size(json_object_get(r.claims, "sw_components")), 0);
	CHECK_STR(claim(&r, "measurement"), "");
	cl_verify_result_free(&r);
	p.len = 0;
	CHECK(s.payload[0] == 0xaa);
	CHECK(cl_buf_append(&p, "\xab", 1) == CL_OK &&
	      cl_buf_append(&p, s.payload + 1, s.payload_len - 1) == CL_OK &&
	      cl_buf_append(&p, none, sizeof(none)) == CL_OK);
	CHECK_EQ_INT(resign(p.data, p.len, 0, &r), CL_ERR_MALFORMED);
	cl_verify_result_free(&r);
	cl_buf_free(&p);
	cl_cose_sign1_free(&s);
	cl_buf_free(&t);
}

static void test_claim_checks(void)
{
	struct cl_verify_result r = {0};
	/* lifecycle 2395: secured 0x3000 → non-psa-rot-debug 0x4000, → 0x3100 (invalid) */
	static const uint8_t lc[] = {0x19, 0x09, 0x5b, 0x19, 0x30, 0x00};
	static const uint8_t lc_dbg[] = {0x19, 0x09, 0x5b, 0x19, 0x40, 0x00};
	static const uint8_t lc_bad[] = {0x19, 0x09, 0x5b, 0x19, 0x31, 0x00};
	/* client id 2394 → an unknown key 2401; instance id type 0x01 → 0x02 */
	static const uint8_t cid[] = {0x19, 0x09, 0x5a}, cid_bad[] = {0x19, 0x09, 0x61};
	static const uint8_t ueid[] = {0x58, 0x21, 0x01}, ueid_bad[] = {0x58, 0x21, 0x02};
	/* the profile string → psa 3.0.0 */
	static const uint8_t prof[] = "psa/2.0.0", prof_bad[] = "psa/3.0.0";

	CHECK_EQ_INT(resigned(lc, lc, sizeof(lc), 0, &r), CL_OK);
	cl_verify_result_free(&r);
	CHECK_EQ_INT(resigned(lc, lc_dbg, sizeof(lc), 0, &r), CL_ERR_POLICY);
	CHECK(json_is_true(json_object_get(r.claims, "debug")));
	cl_verify_result_free(&r);
	CHECK_EQ_INT(resigned(lc, lc_dbg, sizeof(lc), 1, &r), CL_OK);
	cl_verify_result_free(&r);
	CHECK_EQ_INT(resigned(lc, lc_bad, sizeof(lc), 0, &r), CL_ERR_MALFORMED);
	cl_verify_result_free(&r);
	CHECK_EQ_INT(resigned(cid, cid_bad, sizeof(cid), 0, &r), CL_ERR_MALFORMED);
	CHECK(strstr(r.reason, "2401") != NULL);
	cl_verify_result_free(&r);
	CHECK_EQ_INT(resigned(ueid, ueid_bad, sizeof(ueid), 0, &r), CL_ERR_MALFORMED);
	cl_verify_result_free(&r);
	CHECK_EQ_INT(resigned(prof, prof_bad, sizeof(prof) - 1, 0, &r), CL_ERR_UNSUPPORTED);
	cl_verify_result_free(&r);
}

/* Detection wants tag 18 and PSA claim keys; an untagged token is refused. */
static void test_detect(void)
{
	struct cl_buf t = vector_read(DIR "tfm-p2-token.cbor");
	static const uint8_t text_keys[] = {0xa1, 0x69, 'm', 'o', 'd',	'u', 'l',
					    'e',  '_',	'i', 'd', 0x61, 'x'};
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result r = {0};
	EVP_PKEY *k = EVP_EC_gen("P-256");
	uint8_t *tok = NULL;
	size_t tok_len = 0;

	CHECK(k && cl_cose_sign1_sign(k, text_keys, sizeof(text_keys), 1, &tok, &tok_len) == CL_OK);
	CHECK(cl_format_detect(tok, tok_len) != CL_FORMAT_PSA);
	CHECK(cl_format_detect(t.data + 1, t.len - 1) != CL_FORMAT_PSA);
	o.format = CL_FORMAT_PSA;
	o.psa.iak = iak.data;
	o.psa.iak_len = iak.len;
	CHECK_EQ_INT(cl_verify_evidence(t.data + 1, t.len - 1, &o, &r), CL_ERR_MALFORMED);
	CHECK(strstr(r.reason, "tag 18") != NULL);
	cl_verify_result_free(&r);
	free(tok);
	EVP_PKEY_free(k);
	cl_buf_free(&t);
}

int main(void)
{
	iak = vector_read(DIR "tfm-iak-pub.jwk.json");
	RUN(test_known_answers);
	RUN(test_keys);
	RUN(test_report_data);
	RUN(test_mutations);
	RUN(test_claim_checks);
	RUN(test_detect);
	RUN(test_no_sw_measurements);
	cl_buf_free(&iak);
	return test_done("psa_test");
}
