/*
 * Resources at rest: AES-256-GCM under the key-encryption key, with the
 * resource path as additional data so that a sealed row copied to another
 * path (by anyone with write access to the store) no longer decrypts.
 */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include "cloister/kbs.h"

#define SEAL_MAGIC "CLS1"
#define SEAL_NONCE 12
#define SEAL_TAG   16
#define SEAL_HDR   (4 + SEAL_NONCE)

int cl_kbs_seal(const uint8_t kek[CL_KBS_KEK_LEN], const char *path, const uint8_t *pt, size_t len,
		struct cl_buf *out)
{
	EVP_CIPHER_CTX *c = NULL;
	uint8_t nonce[SEAL_NONCE], tag[SEAL_TAG];
	uint8_t *ct = NULL;
	int n = 0, rc = CL_OK;

	CL_CHECK(len <= CL_MAX_KBS_RESOURCE, CL_ERR_ARG, "resource larger than %zu bytes",
		 CL_MAX_KBS_RESOURCE);
	CL_CHECK(RAND_bytes(nonce, sizeof(nonce)) == 1, CL_ERR_CRYPTO, "no randomness");
	ct = malloc(len + 1);
	c = EVP_CIPHER_CTX_new();
	CL_CHECK(ct && c, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, kek, nonce) == 1 &&
			 EVP_EncryptUpdate(c, NULL, &n, (const uint8_t *)path, (int)strlen(path)) ==
				 1 &&
			 EVP_EncryptUpdate(c, ct, &n, pt, (int)len) == 1 &&
			 EVP_EncryptFinal_ex(c, ct + n, &n) == 1 &&
			 EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, SEAL_TAG, tag) == 1,
		 CL_ERR_CRYPTO, "sealing failed");
	CL_TRY(cl_buf_append(out, SEAL_MAGIC, 4));
	CL_TRY(cl_buf_append(out, nonce, sizeof(nonce)));
	CL_TRY(cl_buf_append(out, ct, len));
	CL_TRY(cl_buf_append(out, tag, sizeof(tag)));
out:
	if (ct) {
		cl_zeroize(ct, len);
		free(ct);
	}
	EVP_CIPHER_CTX_free(c);
	return rc;
}

int cl_kbs_unseal(const uint8_t kek[CL_KBS_KEK_LEN], const char *path, const uint8_t *blob,
		  size_t len, struct cl_buf *out)
{
	struct cl_reader r = cl_reader_make(blob, len);
	const uint8_t *magic = NULL, *nonce = NULL, *ct = NULL, *tag = NULL;
	EVP_CIPHER_CTX *c = NULL;
	uint8_t *pt = NULL;
	size_t ctlen = 0;
	int n = 0, rc = CL_OK;

	CL_CHECK(len >= SEAL_HDR + SEAL_TAG && len - SEAL_HDR - SEAL_TAG <= CL_MAX_KBS_RESOURCE,
		 CL_ERR_MALFORMED, "sealed resource has a bad length");
	ctlen = len - SEAL_HDR - SEAL_TAG;
	CL_CHECK(cl_read_ref(&r, 4, &magic) == CL_OK && memcmp(magic, SEAL_MAGIC, 4) == 0,
		 CL_ERR_MALFORMED, "sealed resource has a bad header");
	CL_CHECK(cl_read_ref(&r, SEAL_NONCE, &nonce) == CL_OK &&
			 cl_read_ref(&r, ctlen, &ct) == CL_OK &&
			 cl_read_ref(&r, SEAL_TAG, &tag) == CL_OK,
		 CL_ERR_TRUNCATED, "sealed resource truncated");
	pt = malloc(ctlen + 1);
	c = EVP_CIPHER_CTX_new();
	CL_CHECK(pt && c, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(EVP_DecryptInit_ex(c, EVP_aes_256_gcm(), NULL, kek, nonce) == 1 &&
			 EVP_DecryptUpdate(c, NULL, &n, (const uint8_t *)path, (int)strlen(path)) ==
				 1 &&
			 EVP_DecryptUpdate(c, pt, &n, ct, (int)ctlen) == 1 &&
			 EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_TAG, SEAL_TAG, (void *)tag) == 1,
		 CL_ERR_CRYPTO, "unsealing failed");
	CL_CHECK(EVP_DecryptFinal_ex(c, pt + n, &n) == 1, CL_ERR_SIGNATURE,
		 "sealed resource does not authenticate (wrong key or path)");
	CL_TRY(cl_buf_append(out, pt, ctlen));
out:
	if (pt) {
		cl_zeroize(pt, ctlen);
		free(pt);
	}
	EVP_CIPHER_CTX_free(c);
	return rc;
}
