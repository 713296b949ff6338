/* EAR tokens: sign, verify, tamper, wrong key, expiry, older names. */
#include <jose/b64.h>
#include <jose/jws.h>
#include <jose/openssl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cloister/appraise.h"
#include "test.h"

#define NOW 1748736000 /* 2025-06-01T00:00:00Z */

static struct cl_ear_key *new_key(const char *curve)
{
	EVP_PKEY *pk = EVP_EC_gen(curve);
	BIO *bio = BIO_new(BIO_s_mem());
	struct cl_ear_key *k = NULL;
	char *pem = NULL;
	long n = 0;

	if (pk && bio && PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL) == 1) {
		n = BIO_get_mem_data(bio, &pem);
		CHECK_EQ_INT(cl_ear_key_from_pem((const uint8_t *)pem, (size_t)n, &k), CL_OK);
	}
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return k;
}

static void make_appraisal(struct cl_appraisal *a, int8_t exe)
{
	memset(a, 0, sizeof(*a));
	a->vector[CL_TV_EXECUTABLES] = exe;
	a->vector[CL_TV_HARDWARE] = 2;
	a->status = cl_vector_status(a->vector);
	snprintf(a->policy_id, sizeof(a->policy_id), "policy://test");
}

static char *sign(const struct cl_ear_key *k, int8_t exe, json_t *claims)
{
	static const uint8_t nonce[32] = {1, 2, 3, 4, 5, 6, 7, 8};
	struct cl_appraisal a;
	struct cl_ear_submod sm = {"cpu0", &a, claims};
	struct cl_ear_opts o = {0};
	char *jwt = NULL;

	make_appraisal(&a, exe);
	o.iat = NOW;
	o.ttl = 600;
	o.nonce = nonce;
	o.nonce_len = sizeof(nonce);
	o.verifier_build = "cloister test";
	CHECK_EQ_INT(cl_ear_sign(k, &sm, 1, &o, &jwt), CL_OK);
	return jwt;
}

static void test_roundtrip(const char *curve, const char *alg)
{
	struct cl_ear_key *k = new_key(curve);
	json_t *claims = json_pack("{s:s, s:s}", "platform", "snp", "measurement", "a1f3");
	json_t *jwks = cl_ear_key_jwks(k), *out = NULL, *cpu0 = NULL;
	char *jwt = sign(k, 2, claims);

	CHECK_STR(cl_ear_key_alg(k), alg);
	CHECK(json_object_get(json_array_get(json_object_get(jwks, "keys"), 0), "d") == NULL);
	CHECK_STR(json_string_value(
			  json_object_get(json_array_get(json_object_get(jwks, "keys"), 0), "alg")),
		  alg);
	CHECK_EQ_INT(cl_ear_verify(jwks, jwt, strlen(jwt), NOW + 1, &out), CL_OK);
	CHECK_STR(json_string_value(json_object_get(out, "eat_profile")), CL_EAR_PROFILE);
	CHECK_STR(json_string_value(json_object_get(out, "ear_status")), "affirming");
	CHECK_EQ_INT(json_integer_value(json_object_get(out, "exp")), NOW + 600);
	CHECK_STR(json_string_value(json_object_get(out, "eat_nonce")),
		  "AQIDBAUGBwgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
	cpu0 = json_object_get(json_object_get(out, "submods"), "cpu0");
	CHECK_STR(json_string_value(json_object_get(cpu0, "ear_status")), "affirming");
	CHECK_EQ_INT(json_integer_value(json_object_get(
			     json_object_get(cpu0, "ear_trustworthiness_vector"), "executables")),
		     2);
	CHECK(json_object_get(json_object_get(cpu0, "ear_trustworthiness_vector"),
			      "configuration") == NULL);
	CHECK_STR(json_string_value(
			  json_array_get(json_object_get(cpu0, "ear_appraisal_policy_ids"), 0)),
		  "policy://test");
	CHECK_STR(json_string_value(json_object_get(
			  json_object_get(json_object_get(cpu0, CL_EAR_ANNOTATED_EVIDENCE), "snp"),
			  "measurement")),
		  "a1f3");
	json_decref(out);
	out = NULL;
	/* Expired, and issued in the future. */
	CHECK_EQ_INT(cl_ear_verify(jwks, jwt, strlen(jwt), NOW + 600, &out), CL_ERR_EXPIRED);
	CHECK(cl_ear_verify(jwks, jwt, strlen(jwt), NOW - 3600, &out) != CL_OK);
	CHECK(out == NULL);
	free(jwt);
	/* A contraindicated token is still a valid token. */
	jwt = sign(k, 96, NULL);
	CHECK_EQ_INT(cl_ear_verify(jwks, jwt, strlen(jwt), NOW, &out), CL_OK);
	CHECK_STR(json_string_value(json_object_get(out, "ear_status")), "contraindicated");
	json_decref(out);
	free(jwt);
	json_decref(jwks);
	json_decref(claims);
	cl_ear_key_free(k);
}

static void test_tamper(void)
{
	struct cl_ear_key *k = new_key("P-256"), *other = new_key("P-256"),
			  *p384 = new_key("P-384");
	json_t *jwks = cl_ear_key_jwks(k), *jwks2 = cl_ear_key_jwks(other),
	       *jwks3 = cl_ear_key_jwks(p384);
	char *jwt = sign(k, 2, NULL);
	size_t n = strlen(jwt);
	json_t *out = NULL;
	int accepted = 0;

	/* Every byte, changed to another base64url character or to a dot. */
	for (size_t i = 0; i < n; i++) {
		char saved = jwt[i];

		if (saved == '.')
			continue;
		jwt[i] = saved == 'A' ? 'B' : 'A';
		if (cl_ear_verify(jwks, jwt, n, NOW, &out) == CL_OK) {
			accepted++;
			fprintf(stderr, "  tampered byte %zu accepted\n", i);
		}
		json_decref(out);
		out = NULL;
		jwt[i] = (char)(saved ^ 1);
		if (cl_ear_verify(jwks, jwt, n, NOW, &out) == CL_OK) {
			accepted++;
			fprintf(stderr, "  tampered byte %zu (^1) accepted\n", i);
		}
		json_decref(out);
		out = NULL;
		jwt[i] = saved;
	}
	CHECK_EQ_INT(accepted, 0);
	/* Truncated, extended. */
	for (size_t i = 0; i < n; i++)
		CHECK(cl_ear_verify(jwks, jwt, i, NOW, &out) != CL_OK);
	{
		char *longer = malloc(n + 3);

		memcpy(longer, jwt, n);
		memcpy(longer + n, "AA", 3);
		CHECK(cl_ear_verify(jwks, longer, n + 2, NOW, &out) != CL_OK);
		free(longer);
	}
	/* Signed by another key; the key of another curve. */
	CHECK_EQ_INT(cl_ear_verify(jwks2, jwt, n, NOW, &out), CL_ERR_SIGNATURE);
	CHECK(cl_ear_verify(jwks3, jwt, n, NOW, &out) != CL_OK);
	CHECK(out == NULL);
	free(jwt);
	json_decref(jwks);
	json_decref(jwks2);
	json_decref(jwks3);
	cl_ear_key_free(k);
	cl_ear_key_free(other);
	cl_ear_key_free(p384);
}

/* Build a token by hand with libjose: header and payload of our choosing. */
static char *forge(const json_t *jwk, const char *hdr, const char *payload)
{
	json_t *jws = json_pack("{s:o}", "payload", jose_b64_enc(payload, strlen(payload)));
	json_t *sig = json_pack("{s:o}", "protected", json_loads(hdr, 0, NULL));
	char *out = NULL;

	if (jose_jws_sig(NULL, jws, sig, jwk)) {
		const char *p = json_string_value(json_object_get(jws, "protected"));
		const char *b = json_string_value(json_object_get(jws, "payload"));
		const char *s = json_string_value(json_object_get(jws, "signature"));

		out = malloc(strlen(p) + strlen(b) + strlen(s) + 3);
		sprintf(out, "%s.%s.%s", p, b, s);
	}
	json_decref(jws);
	json_decref(sig);
	return out;
}

static void test_forged(void)
{
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	BIO *bio = BIO_new(BIO_s_mem());
	struct cl_ear_key *k = NULL;
	json_t *jwk = NULL, *jwks = NULL, *out = NULL, *sm = NULL;
	char *pem = NULL, *t = NULL;
	long n = 0;

	CHECK_EQ_INT(PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL), 1);
	n = BIO_get_mem_data(bio, &pem);
	CHECK_EQ_INT(cl_ear_key_from_pem((const uint8_t *)pem, (size_t)n, &k), CL_OK);
	jwks = cl_ear_key_jwks(k);
	jwk = jose_openssl_jwk_from_EVP_PKEY(NULL, pk);

	/* Older dotted names with the older profile are read and renamed. */
	t = forge(
		jwk, "{\"alg\":\"ES256\"}",
		"{\"eat_profile\":\"tag:github.com,2023:veraison/ear\",\"iat\":1748736000,"
		"\"exp\":1748736600,\"ear.verifier-id\":{\"developer\":\"x\",\"build\":\"y\"},"
		"\"submods\":{\"cpu0\":{\"ear.status\":\"warning\",\"ear.trustworthiness-vector\":"
		"{\"hardware\":32},\"ear.appraisal-policy-id\":\"policy://x\","
		"\"ear.veraison.annotated-evidence\":{\"sgx\":{}}}}}");
	CHECK_EQ_INT(cl_ear_verify(jwks, t, strlen(t), NOW, &out), CL_OK);
	sm = json_object_get(json_object_get(out, "submods"), "cpu0");
	CHECK_STR(json_string_value(json_object_get(sm, "ear_status")), "warning");
	CHECK_STR(json_string_value(
			  json_array_get(json_object_get(sm, "ear_appraisal_policy_ids"), 0)),
		  "policy://x");
	CHECK(json_object_get(sm, CL_EAR_ANNOTATED_EVIDENCE) != NULL);
	CHECK(json_object_get(out, "ear_verifier_id") != NULL);
	json_decref(out);
	out = NULL;
	free(t);

	/* Wrong profile, no exp, bad status, bad vector, no submods. */
	static const char *const bad[] = {
		"{\"eat_profile\":\"tag:example.com,2020:other\",\"iat\":1748736000,\"exp\":"
		"1748736600,"
		"\"submods\":{\"cpu0\":{\"ear_status\":\"affirming\"}}}",
		"{\"eat_profile\":\"" CL_EAR_PROFILE "\",\"iat\":1748736000,"
		"\"submods\":{\"cpu0\":{\"ear_status\":\"affirming\"}}}",
		"{\"eat_profile\":\"" CL_EAR_PROFILE "\",\"iat\":1748736000,\"exp\":1748736600,"
		"\"submods\":{\"cpu0\":{\"ear_status\":\"great\"}}}",
		"{\"eat_profile\":\"" CL_EAR_PROFILE "\",\"iat\":1748736000,\"exp\":1748736600,"
		"\"submods\":{\"cpu0\":{\"ear_status\":\"affirming\",\"ear_trustworthiness_"
		"vector\":"
		"{\"hardware\":300}}}}",
		"{\"eat_profile\":\"" CL_EAR_PROFILE "\",\"iat\":1748736000,\"exp\":1748736600,"
		"\"submods\":{}}",
		"{\"eat_profile\":\"tag:github.com,2023:veraison/ear\",\"iat\":1748736000,"
		"\"exp\":1748736600,\"submods\":{\"cpu0\":{\"ear_status\":\"affirming\"}}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		t = forge(jwk, "{\"alg\":\"ES256\"}", bad[i]);
		CHECK(t != NULL);
		CHECK(cl_ear_verify(jwks, t, strlen(t), NOW, &out) != CL_OK);
		free(t);
	}
	/* Algorithms other than ES256/ES384, and critical headers, are refused. */
	{
		static const char good[] = "{\"eat_profile\":\"" CL_EAR_PROFILE
					   "\",\"iat\":1748736000,\"exp\":1748736600,"
					   "\"submods\":{\"cpu0\":{\"ear_status\":\"affirming\"}}}";
		json_t *oct = json_pack(
			"{s:s, s:s}", "kty", "oct", "k",
			"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0");

		t = forge(jwk, "{\"alg\":\"ES256\",\"crit\":[\"x\"],\"x\":1}", good);
		CHECK(t && cl_ear_verify(jwks, t, strlen(t), NOW, &out) != CL_OK);
		free(t);
		t = forge(oct, "{\"alg\":\"HS256\"}", good);
		CHECK(t && cl_ear_verify(jwks, t, strlen(t), NOW, &out) == CL_ERR_UNSUPPORTED);
		free(t);
		t = forge(jwk, "{\"alg\":\"ES256\"}", good);
		CHECK(t && cl_ear_verify(jwks, t, strlen(t), NOW, &out) == CL_OK);
		json_decref(out);
		out = NULL;
		/* alg "none" with the signature stripped. */
		{
			char *none = NULL;
			const char *dot = strrchr(t, '.');
			const char *hdr = "eyJhbGciOiJub25lIn0"; /* {"alg":"none"} */
			const char *p = strchr(t, '.');

			none = malloc(strlen(t) + 32);
			sprintf(none, "%s%.*s.", hdr, (int)(dot - p), p);
			CHECK(cl_ear_verify(jwks, none, strlen(none), NOW, &out) != CL_OK);
			free(none);
		}
		free(t);
		json_decref(oct);
	}
	CHECK(cl_ear_verify(jwks, "", 0, NOW, &out) != CL_OK);
	CHECK(cl_ear_verify(jwks, "a.b", 3, NOW, &out) != CL_OK);
	CHECK(cl_ear_verify(jwks, "a.b.c.d", 7, NOW, &out) != CL_OK);
	CHECK(out == NULL);
	json_decref(jwk);
	json_decref(jwks);
	cl_ear_key_free(k);
	BIO_free(bio);
	EVP_PKEY_free(pk);
}

static void test_bad_keys(void)
{
	static const char junk[] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
	struct cl_ear_key *k = NULL;
	EVP_PKEY *rsa = EVP_RSA_gen(2048), *p521 = EVP_EC_gen("P-521");
	BIO *bio = BIO_new(BIO_s_mem());
	char *pem = NULL;
	long n = 0;

	CHECK(cl_ear_key_from_pem((const uint8_t *)junk, sizeof(junk) - 1, &k) != CL_OK);
	CHECK(cl_ear_key_from_pem((const uint8_t *)"", 0, &k) != CL_OK);
	CHECK(PEM_write_bio_PrivateKey(bio, rsa, NULL, NULL, 0, NULL, NULL) == 1);
	n = BIO_get_mem_data(bio, &pem);
	CHECK_EQ_INT(cl_ear_key_from_pem((const uint8_t *)pem, (size_t)n, &k), CL_ERR_UNSUPPORTED);
	(void)BIO_reset(bio);
	CHECK(PEM_write_bio_PrivateKey(bio, p521, NULL, NULL, 0, NULL, NULL) == 1);
	n = BIO_get_mem_data(bio, &pem);
	CHECK_EQ_INT(cl_ear_key_from_pem((const uint8_t *)pem, (size_t)n, &k), CL_ERR_UNSUPPORTED);
	CHECK(k == NULL);
	CHECK(cl_ear_key_load("/nonexistent.pem", &k) != CL_OK);
	BIO_free(bio);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(p521);
	cl_ear_key_free(NULL);
}

int main(void)
{
	RUN(test_bad_keys);
	test_roundtrip("P-256", "ES256");
	test_roundtrip("P-384", "ES384");
	RUN(test_tamper);
	RUN(test_forged);
	return test_done("ear_test");
}
