/*
 * Compact JWS tokens: the EAR verifier and the KBS admin-token check on raw
 * token bytes (first byte even), and on tokens whose payload is the input and
 * whose signature is good (first byte odd), so the claim checks behind the
 * signature are reached too.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include "cloister/appraise.h"
#include "cloister/jws.h"
#include "cloister/kbs.h"

#define NOW 1767225600 /* 2026-01-01 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static EVP_PKEY *key;
static json_t *jwks, *hdr;
static struct cl_kbs_admin_key *admin;

static int setup(void)
{
	BIO *b = BIO_new(BIO_s_mem());
	struct cl_ear_key *ek = NULL;
	BUF_MEM *m = NULL;

	key = EVP_EC_gen("P-256");
	if (!b || !key || PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL) != 1)
		abort();
	BIO_get_mem_ptr(b, &m);
	if (cl_ear_key_from_pem((const uint8_t *)m->data, m->length, &ek) != CL_OK ||
	    cl_kbs_admin_key_from_pem((const uint8_t *)m->data, m->length, &admin) != CL_OK)
		abort();
	jwks = cl_ear_key_jwks(ek);
	hdr = json_pack("{s:s, s:O}", "typ", "JWT", "kid",
			json_object_get(json_array_get(json_object_get(jwks, "keys"), 0), "kid"));
	cl_ear_key_free(ek);
	BIO_free(b);
	return jwks && hdr ? 0 : -1;
}

static void check(const char *tok, size_t n)
{
	struct cl_jws j;
	json_t *claims = NULL;
	char role[32];

	if (cl_jws_parse(tok, n, 1 << 20, &j) == CL_OK) {
		(void)cl_jws_verify(&j, key);
		if (cl_jws_payload_json(&j, &claims) == CL_OK)
			json_decref(claims);
		cl_jws_clear(&j);
	}
	claims = NULL;
	if (cl_ear_verify(jwks, tok, n, NOW, &claims) == CL_OK)
		json_decref(claims);
	(void)cl_kbs_admin_verify(admin, tok, n, NOW, role);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	char *tok = NULL;

	if (!ready && setup() != 0)
		abort();
	ready = 1;
	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0) {
		check((const char *)data + 1, size - 1);
		return 0;
	}
	if (cl_jws_sign(key, hdr, data + 1, size - 1, &tok) == CL_OK) {
		check(tok, strlen(tok));
		free(tok);
	}
	return 0;
}
