/*
 * First-start state for `cloister kbs serve --state DIR`: whatever is
 * missing is generated with mode 0600 (the directory 0700), never
 * overwritten: the key-encryption key, the EAR signing key and an admin key
 * pair.
 *
 * A key file appears whole or not at all: it is written to a temporary name,
 * fsynced, then linked to its name (link, unlike rename, never replaces a
 * key another process made meanwhile), and the directory fsynced. Of a pair
 * the private key is the commit point: its public half is written before it
 * and rewritten from it whenever it is missing, so a full disk or a crash at
 * any point leaves either no key or a usable pair, and the next start
 * finishes the job. Temporary files a crash left behind are removed.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "cloister/crypto.h"
#include "cloister/kbs.h"

#define TMP_SUFFIX ".tmp"

static int sync_dir(const char *path)
{
	char d[4096];
	char *slash = NULL;
	int fd = -1, ok = 0;

	snprintf(d, sizeof(d), "%s", path);
	slash = strrchr(d, '/');
	if (slash)
		*(slash == d ? slash + 1 : slash) = 0;
	else
		snprintf(d, sizeof(d), ".");
	fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ok = fd >= 0 && fsync(fd) == 0;
	if (fd >= 0)
		close(fd);
	CL_ENSURE_MSG(ok, CL_ERR_IO, "cannot sync %s: %s", d, strerror(errno));
	return CL_OK;
}

/* path + ".tmp", written in full and fsynced, mode 0600. */
static int write_tmp(const char *path, const void *p, size_t n)
{
	char tmp[4200];
	int fd = -1, err = 0;
	size_t done = 0;

	snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	CL_ENSURE_MSG(fd >= 0, CL_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
	while (done < n) {
		ssize_t w = write(fd, (const uint8_t *)p + done, n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			err = w < 0 ? errno : ENOSPC;
			break;
		}
		done += (size_t)w;
	}
	if (!err && fsync(fd) != 0)
		err = errno;
	if (close(fd) != 0 && !err)
		err = errno;
	if (err) {
		unlink(tmp);
		CL_BAIL(CL_ERR_IO, "cannot write %s: %s", tmp, strerror(err));
	}
	return CL_OK;
}

/*
 * Publish path + ".tmp" as path. replace: rename over what is there (a public
 * key rewritten from its private half); else link, and leave an existing file
 * alone.
 */
static int publish(const char *path, int replace, int *existed)
{
	char tmp[4200];
	int rc = CL_OK;

	if (existed)
		*existed = 0;
	snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, path);
	if (replace) {
		CL_CHECK(rename(tmp, path) == 0, CL_ERR_IO, "cannot rename %s: %s", tmp,
			 strerror(errno));
	} else {
		if (link(tmp, path) != 0) {
			CL_CHECK(errno == EEXIST, CL_ERR_IO, "cannot link %s: %s", path,
				 strerror(errno));
			if (existed)
				*existed = 1;
		}
		unlink(tmp);
	}
	CL_TRY(sync_dir(path));
out:
	if (rc != CL_OK)
		unlink(tmp);
	return rc;
}

static int write_new(const char *path, const void *p, size_t n)
{
	CL_GUARD(write_tmp(path, p, n));
	return publish(path, 0, NULL);
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

/* Rewrite pubpath from the private key at path. */
static int derive_pub(const char *path, const char *pubpath)
{
	struct cl_buf pem = {0}, pub = {0};
	BIO *b = NULL;
	EVP_PKEY *pk = NULL;
	int rc = CL_OK;

	CL_TRY(cl_read_file(path, 16384, &pem));
	b = BIO_new_mem_buf(pem.data, (int)pem.len);
	pk = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	CL_CHECK(pk, CL_ERR_MALFORMED, "%s is not a PEM private key", path);
	CL_TRY(pem_of(pk, 0, &pub));
	CL_TRY(write_tmp(pubpath, pub.data, pub.len));
	CL_TRY(publish(pubpath, 1, NULL));
out:
	EVP_PKEY_free(pk);
	BIO_free(b);
	cl_buf_free(&pem);
	cl_buf_free(&pub);
	return rc;
}

static int gen_key(const char *path, const char *pubpath, const char *type, const char *curve)
{
	EVP_PKEY *pk = NULL;
	struct cl_buf priv = {0}, pub = {0};
	char tmp[4200];
	int rc = CL_OK, existed = 0;

	if (access(path, F_OK) == 0) {
		if (pubpath && access(pubpath, F_OK) != 0)
			return derive_pub(path, pubpath);
		return CL_OK;
	}
	pk = curve ? EVP_EC_gen(curve) : EVP_PKEY_Q_keygen(NULL, NULL, type);
	CL_CHECK(pk, CL_ERR_CRYPTO, "cannot generate a %s key", type);
	CL_TRY(pem_of(pk, 1, &priv));
	if (pubpath) {
		CL_TRY(pem_of(pk, 0, &pub));
		CL_TRY(write_tmp(pubpath, pub.data, pub.len));
	}
	rc = write_tmp(path, priv.data, priv.len);
	if (rc != CL_OK && pubpath) {
		snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, pubpath);
		unlink(tmp);
	}
	CL_TRY(rc);
	if (pubpath) {
		/* Publish the public half first: a crash between the two leaves a
		 * public key without its private key, which the next start replaces. */
		rc = publish(pubpath, 1, NULL);
		if (rc != CL_OK) {
			snprintf(tmp, sizeof(tmp), "%s" TMP_SUFFIX, path);
			unlink(tmp);
			goto out;
		}
	}
	CL_TRY(publish(path, 0, &existed));
	/* Someone else made path meanwhile: match its key. */
	if (pubpath && existed)
		CL_TRY(derive_pub(path, pubpath));
out:
	cl_buf_free(&priv);
	cl_buf_free(&pub);
	EVP_PKEY_free(pk);
	return rc;
}

static int state_fill(const char *dir)
{
	static const char *const names[] = {"kek", "token.key", "admin.key", "admin.pub"};
	char p[4096], q[4096];
	uint8_t kek[CL_KBS_KEK_LEN];
	int rc = CL_OK;

	/* Left by a crash or a full disk: never read, only removed. */
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s" TMP_SUFFIX, dir, names[i]);
		if (unlink(p) == 0)
			cl_log_warn("kbs: removed %s, left by an interrupted start", p);
	}
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

int cl_kbs_state_init(const char *dir)
{
	int rc = CL_OK, dfd = -1;

	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
		CL_BAIL(CL_ERR_IO, "cannot create %s: %s", dir, strerror(errno));
	/* KBS processes starting together on one directory take turns here. */
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CL_ENSURE_MSG(dfd >= 0, CL_ERR_IO, "cannot open %s: %s", dir, strerror(errno));
	if (flock(dfd, LOCK_EX) != 0) {
		rc = cl_fail(CL_ERR_IO, "cannot lock %s: %s", dir, strerror(errno));
		close(dfd);
		return rc;
	}
	rc = state_fill(dir);
	close(dfd);
	return rc;
}

int cl_kbs_process_harden(void)
{
	struct rlimit no_core = {0, 0};
	int rc = 0;

	CL_ENSURE_MSG(setrlimit(RLIMIT_CORE, &no_core) == 0, CL_ERR_INTERNAL,
		      "cannot disable core dumps: %s", strerror(errno));
	CL_ENSURE_MSG(prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0, CL_ERR_INTERNAL,
		      "cannot make the process non-dumpable: %s", strerror(errno));
	CL_GUARD(cl_secure_heap_init(CL_KBS_SECURE_HEAP, &rc));
	if (!rc)
		cl_log_warn("kbs: the secure heap could not be locked in memory");
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
