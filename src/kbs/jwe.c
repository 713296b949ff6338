/*
 * Resource responses as flattened JSON JWE (RFC 7516), enc A256GCM.
 *
 * ECDH-ES+A256KW goes through libjose; libjose writes the ephemeral key into
 * the per-recipient "header", while Trustee's clients read it from the
 * protected header only, so it is moved there before the content is
 * encrypted (the protected header is the AAD, so this must happen first).
 * libjose 11 built against OpenSSL 3 lacks RSA-OAEP (its feature check misses
 * the OpenSSL 3 function), so the CEK is wrapped with RSA-OAEP-256 here with
 * OpenSSL and libjose encrypts the content under that CEK.
 */
#include <string.h>

#include <jose/b64.h>
#include <jose/jwe.h>
#include <jose/jwk.h>
#include <jose/openssl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>

#include "cloister/kbs.h"

static void wipe_json_str(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	if (json_is_string(v))
		cl_zeroize((char *)json_string_value(v), json_string_length(v));
}

static int enc_ec(const json_t *pub, const uint8_t *pt, size_t len, json_t **out)
{
	json_t *jwe = NULL, *cek = NULL, *epk = NULL, *key = NULL;
	int rc = CL_OK;

	key = json_pack("{s:O, s:O, s:O, s:O}", "kty", json_object_get(pub, "kty"), "crv",
			json_object_get(pub, "crv"), "x", json_object_get(pub, "x"), "y",
			json_object_get(pub, "y"));
	jwe = json_pack("{s:{s:s, s:s}}", "protected", "alg", "ECDH-ES+A256KW", "enc", "A256GCM");
	cek = json_object();
	CL_CHECK(key && jwe && cek, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(jose_jwe_enc_jwk(NULL, jwe, NULL, key, cek), CL_ERR_CRYPTO,
		 "JWE: ECDH-ES key wrapping failed (bad tee-pubkey?)");
	epk = json_object_get(json_object_get(jwe, "header"), "epk");
	CL_CHECK(epk && json_object_set(json_object_get(jwe, "protected"), "epk", epk) == 0,
		 CL_ERR_CRYPTO, "JWE: no ephemeral key");
	json_object_del(jwe, "header");
	CL_CHECK(jose_jwe_enc_cek(NULL, jwe, cek, pt, len), CL_ERR_CRYPTO,
		 "JWE: encryption failed");
	*out = jwe;
	jwe = NULL;
out:
	if (cek)
		wipe_json_str(cek, "k");
	json_decref(cek);
	json_decref(jwe);
	json_decref(key);
	return rc;
}

static EVP_PKEY *rsa_from_jwk(const json_t *pub)
{
	json_t *k = json_pack("{s:s, s:O, s:O}", "kty", "RSA", "n", json_object_get(pub, "n"), "e",
			      json_object_get(pub, "e"));
	EVP_PKEY *pk = k ? jose_openssl_jwk_to_EVP_PKEY(NULL, k) : NULL;

	json_decref(k);
	return pk;
}

static int enc_rsa(const json_t *pub, const uint8_t *pt, size_t len, json_t **out)
{
	uint8_t cekb[32], wrapped[1024];
	size_t wl = sizeof(wrapped);
	EVP_PKEY *pk = rsa_from_jwk(pub);
	EVP_PKEY_CTX *c = NULL;
	char *kb = NULL, *ek = NULL;
	json_t *jwe = NULL, *cek = NULL;
	int rc = CL_OK;

	CL_CHECK(pk && EVP_PKEY_get_bits(pk) >= 2048, CL_ERR_MALFORMED,
		 "JWE: RSA tee-pubkey is not a usable 2048+ bit key");
	CL_CHECK(RAND_bytes(cekb, sizeof(cekb)) == 1, CL_ERR_CRYPTO, "no randomness");
	c = EVP_PKEY_CTX_new(pk, NULL);
	CL_CHECK(c && EVP_PKEY_encrypt_init(c) == 1 &&
			 EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
			 EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) == 1 &&
			 EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) == 1 &&
			 EVP_PKEY_encrypt(c, wrapped, &wl, cekb, sizeof(cekb)) == 1,
		 CL_ERR_CRYPTO, "JWE: RSA-OAEP-256 key wrapping failed");
	kb = cl_base64url_encode(cekb, sizeof(cekb));
	ek = cl_base64url_encode(wrapped, wl);
	CL_CHECK(kb && ek, CL_ERR_NOMEM, "out of memory");
	cek = json_pack("{s:s, s:s}", "kty", "oct", "k", kb);
	jwe = json_pack("{s:{s:s, s:s}, s:s}", "protected", "alg", "RSA-OAEP-256", "enc", "A256GCM",
			"encrypted_key", ek);
	CL_CHECK(cek && jwe, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(jose_jwe_enc_cek(NULL, jwe, cek, pt, len), CL_ERR_CRYPTO,
		 "JWE: encryption failed");
	*out = jwe;
	jwe = NULL;
out:
	cl_zeroize(cekb, sizeof(cekb));
	if (kb) {
		cl_zeroize(kb, strlen(kb));
		free(kb);
	}
	if (cek)
		wipe_json_str(cek, "k");
	json_decref(cek);
	json_decref(jwe);
	free(ek);
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(pk);
	return rc;
}

int cl_kbs_jwe_encrypt(const json_t *tee_pubkey, const uint8_t *pt, size_t len, json_t **out)
{
	const char *kty = NULL;

	*out = NULL;
	CL_GUARD(cl_kbs_check_tee_pubkey(tee_pubkey));
	kty = json_string_value(json_object_get(tee_pubkey, "kty"));
	if (strcmp(kty, "EC") == 0)
		return enc_ec(tee_pubkey, pt, len, out);
	return enc_rsa(tee_pubkey, pt, len, out);
}

static int dec_rsa_cek(const json_t *jwk, const json_t *jwe, json_t **cek)
{
	EVP_PKEY *pk = jose_openssl_jwk_to_EVP_PKEY(NULL, jwk);
	EVP_PKEY_CTX *c = NULL;
	uint8_t *ek = NULL, k[1024]; /* OpenSSL wants room for a whole modulus */
	size_t ekl = 0, kl = sizeof(k);
	char *kb = NULL;
	int rc = CL_OK;

	ekl = jose_b64_dec(json_object_get(jwe, "encrypted_key"), NULL, 0);
	CL_CHECK(pk && ekl != SIZE_MAX && ekl <= 1024, CL_ERR_MALFORMED, "JWE: bad encrypted_key");
	ek = malloc(ekl + 1);
	CL_CHECK(ek && jose_b64_dec(json_object_get(jwe, "encrypted_key"), ek, ekl) == ekl,
		 CL_ERR_MALFORMED, "JWE: bad encrypted_key");
	c = EVP_PKEY_CTX_new(pk, NULL);
	CL_CHECK(c && EVP_PKEY_decrypt_init(c) == 1 &&
			 EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
			 EVP_PKEY_CTX_set_rsa_oaep_md(c, EVP_sha256()) == 1 &&
			 EVP_PKEY_CTX_set_rsa_mgf1_md(c, EVP_sha256()) == 1 &&
			 EVP_PKEY_decrypt(c, k, &kl, ek, ekl) == 1 && kl == 32,
		 CL_ERR_SIGNATURE, "JWE: key unwrapping failed");
	kb = cl_base64url_encode(k, kl);
	CL_CHECK(kb, CL_ERR_NOMEM, "out of memory");
	*cek = json_pack("{s:s, s:s}", "kty", "oct", "k", kb);
	CL_CHECK(*cek, CL_ERR_NOMEM, "out of memory");
out:
	cl_zeroize(k, sizeof(k));
	if (kb) {
		cl_zeroize(kb, strlen(kb));
		free(kb);
	}
	free(ek);
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(pk);
	return rc;
}

int cl_kbs_jwe_decrypt(const json_t *jwk, const json_t *jwe, uint8_t **pt, size_t *len)
{
	json_t *hdr = NULL, *cek = NULL;
	const char *alg = NULL, *enc = NULL;
	uint8_t *p = NULL;
	size_t n = 0;
	int rc = CL_OK;

	*pt = NULL;
	*len = 0;
	CL_CHECK(json_is_object(jwe) && json_is_string(json_object_get(jwe, "ciphertext")) &&
			 json_is_string(json_object_get(jwe, "protected")),
		 CL_ERR_MALFORMED, "JWE: not a flattened JSON JWE");
	hdr = jose_jwe_hdr(jwe, NULL);
	alg = json_string_value(json_object_get(hdr, "alg"));
	enc = json_string_value(json_object_get(hdr, "enc"));
	CL_CHECK(alg && enc && strcmp(enc, "A256GCM") == 0 &&
			 (strcmp(alg, "ECDH-ES+A256KW") == 0 || strcmp(alg, "RSA-OAEP-256") == 0),
		 CL_ERR_UNSUPPORTED, "JWE: only ECDH-ES+A256KW or RSA-OAEP-256 with A256GCM");
	if (strcmp(alg, "RSA-OAEP-256") == 0)
		CL_TRY(dec_rsa_cek(jwk, jwe, &cek));
	else
		cek = jose_jwe_dec_jwk(NULL, jwe, NULL, jwk);
	CL_CHECK(cek, CL_ERR_SIGNATURE, "JWE: key unwrapping failed");
	p = jose_jwe_dec_cek(NULL, jwe, cek, &n);
	CL_CHECK(p, CL_ERR_SIGNATURE, "JWE: content does not authenticate");
	*pt = p;
	*len = n;
out:
	if (cek)
		wipe_json_str(cek, "k");
	json_decref(cek);
	json_decref(hdr);
	return rc;
}
