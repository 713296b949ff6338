/*
 * First-start state for `cloister kbs serve --state DIR`: whatever is
 * missing is generated with mode 0600 (the directory 0700), never
 * overwritten: the key-encryption key, the EAR signing key and an admin key
 * pair.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "cloister/kbs.h"

static int write_new(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	ssize_t w = 0;

	CL_ENSURE_MSG(fd >= 0, CL_ERR_IO, "cannot create %s: %s", path, strerror(errno));
	w = write(fd, p, n);
	if (w != (ssize_t)n || fsync(fd) != 0) {
		close(fd);
		unlink(path);
		CL_BAIL(CL_ERR_IO, "cannot write %s", path);
	}
	close(fd);
	return CL_OK;
}

static int pem_of(EVP_PKEY *pk, int priv, struct cl_buf *out)
{
	BIO *b = BIO_new(BIO_s_secmem());
	char *p = NULL;
	long n = 0;
	int rc = CL_OK;

	CL_CHECK(b, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(priv ? PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL) == 1
		      : PEM_write_bio_PUBKEY(b, pk) == 1,
		 CL_ERR_CRYPTO, "cannot encode key");
	n = BIO_get_mem_data(b, &p);
	CL_TRY(cl_buf_append(out, p, (size_t)n));
out:
	BIO_free(b);
	return rc;
}

static int gen_key(const char *path, const char *pubpath, const char *type, const char *curve)
{
	EVP_PKEY *pk = NULL;
	struct cl_buf priv = {0}, pub = {0};
	int rc = CL_OK;

	if (access(path, F_OK) == 0)
		return CL_OK;
	pk = curve ? EVP_EC_gen(curve) : EVP_PKEY_Q_keygen(NULL, NULL, type);
	CL_CHECK(pk, CL_ERR_CRYPTO, "cannot generate a %s key", type);
	CL_TRY(pem_of(pk, 1, &priv));
	CL_TRY(write_new(path, priv.data, priv.len));
	if (pubpath) {
		CL_TRY(pem_of(pk, 0, &pub));
		unlink(pubpath);
		CL_TRY(write_new(pubpath, pub.data, pub.len));
	}
out:
	cl_buf_free(&priv);
	cl_buf_free(&pub);
	EVP_PKEY_free(pk);
	return rc;
}

int cl_kbs_state_init(const char *dir)
{
	char p[4096], q[4096];
	uint8_t kek[CL_KBS_KEK_LEN];
	int rc = CL_OK;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		CL_BAIL(CL_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
	snprintf(p, sizeof(p), "%s/kek", dir);
	if (access(p, F_OK) != 0) {
		CL_ENSURE_MSG(RAND_priv_bytes(kek, sizeof(kek)) == 1, CL_ERR_CRYPTO,
			      "no randomness");
		rc = write_new(p, kek, sizeof(kek));
		cl_zeroize(kek, sizeof(kek));
		CL_GUARD(rc);
	}
	snprintf(p, sizeof(p), "%s/token.key", dir);
	CL_GUARD(gen_key(p, NULL, "EC", "P-256"));
	snprintf(p, sizeof(p), "%s/admin.key", dir);
	snprintf(q, sizeof(q), "%s/admin.pub", dir);
	CL_GUARD(gen_key(p, q, "ED25519", NULL));
	return CL_OK;
}

int cl_kbs_kek_load(const char *path, uint8_t kek[CL_KBS_KEK_LEN])
{
	struct cl_buf b = {0};
	int rc = CL_OK;

	CL_TRY(cl_read_file(path, 256, &b));
	if (b.len == CL_KBS_KEK_LEN) {
		memcpy(kek, b.data, CL_KBS_KEK_LEN);
	} else {
		/* Also accept the key as 64 hex digits (and a newline). */
		size_t n = b.len;

		while (n > 0 && (b.data[n - 1] == '\n' || b.data[n - 1] == '\r'))
			n--;
		CL_CHECK(n == 2 * CL_KBS_KEK_LEN && cl_hex_decode_exact((const char *)b.data, kek,
									CL_KBS_KEK_LEN) == CL_OK,
			 CL_ERR_MALFORMED, "%s: a KEK is 32 raw bytes or 64 hex digits", path);
	}
	struct stat sb;
	if (stat(path, &sb) == 0 && (sb.st_mode & 0077))
		cl_log_warn("kbs: %s is readable by group or others", path);
out:
	cl_buf_free(&b);
	return rc;
}
