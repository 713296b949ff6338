/*
 * The dev TEE's state directory: the development root (key and self-signed
 * certificate) and the sealing secret, created together on first use under
 * an exclusive lock so two first launches agree on one root.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "cloister/devtee.h"

#define ROOT_CN	 "cloister development TEE root (NOT FOR PRODUCTION)"
#define SEAL_LEN 32

int cl_devtee_state_dir(const char *given, char *out, size_t cap)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	int w = 0;

	if (given && *given)
		w = snprintf(out, cap, "%s", given);
	else if (xdg && *xdg == '/')
		w = snprintf(out, cap, "%s/cloister/devtee", xdg);
	else if (home && *home)
		w = snprintf(out, cap, "%s/.local/share/cloister/devtee", home);
	else
		CL_BAIL(CL_ERR_ARG, "no state directory: set HOME or use --state");
	CL_ENSURE_MSG(w > 0 && (size_t)w < cap, CL_ERR_ARG, "state directory path too long");
	return CL_OK;
}

/* mkdir -p with mode 0700 for the directories we create. */
static int mkdirs(const char *dir)
{
	char tmp[PATH_MAX];
	size_t n = strlen(dir);

	CL_ENSURE_MSG(n > 0 && n < sizeof(tmp), CL_ERR_ARG, "bad state directory");
	memcpy(tmp, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (tmp[i] != '/' && tmp[i] != '\0')
			continue;
		tmp[i] = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			CL_BAIL(CL_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
		tmp[i] = i < n ? '/' : '\0';
	}
	return CL_OK;
}

static int path_in(const char *dir, const char *name, char *out, size_t cap)
{
	int w = snprintf(out, cap, "%s/%s", dir, name);

	CL_ENSURE_MSG(w > 0 && (size_t)w < cap, CL_ERR_ARG, "state path too long");
	return CL_OK;
}

/* Write p to DIR/name atomically (temporary file, fsync, rename) with mode. */
static int write_file(const char *dir, const char *name, const void *p, size_t n, mode_t mode)
{
	char path[PATH_MAX], tmp[PATH_MAX];
	int fd = -1, rc = CL_OK;
	ssize_t w = 0;

	CL_TRY(path_in(dir, name, path, sizeof(path)));
	CL_CHECK(snprintf(tmp, sizeof(tmp), "%s.tmp", path) < (int)sizeof(tmp), CL_ERR_ARG,
		 "state path too long");
	(void)unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	CL_CHECK(fd >= 0, CL_ERR_IO, "cannot create %s: %s", tmp, strerror(errno));
	w = write(fd, p, n);
	CL_CHECK(w == (ssize_t)n && fsync(fd) == 0, CL_ERR_IO, "cannot write %s", tmp);
	CL_CHECK(close(fd) == 0, CL_ERR_IO, "cannot write %s", tmp);
	fd = -1;
	CL_CHECK(rename(tmp, path) == 0, CL_ERR_IO, "cannot rename %s: %s", tmp, strerror(errno));
out:
	if (fd >= 0) {
		close(fd);
		(void)unlink(tmp);
	}
	return rc;
}

static int make_cert(EVP_PKEY *key, X509 **out)
{
	X509 *c = X509_new();
	X509_NAME *name = NULL;
	X509V3_CTX v3;
	X509_EXTENSION *ext = NULL;
	ASN1_INTEGER *serial = NULL;
	uint8_t sn[16];
	static const char *const exts[][2] = {
		{"basicConstraints", "critical,CA:TRUE"},
		{"keyUsage", "critical,digitalSignature,keyCertSign"},
		{"subjectKeyIdentifier", "hash"},
		{"nsComment", "cloister development TEE: not a hardware root of trust"},
	};
	int rc = CL_OK;

	CL_CHECK(c, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(RAND_bytes(sn, sizeof(sn)) == 1, CL_ERR_CRYPTO, "no randomness");
	/*
	 * Positive and minimally encoded: a leading zero byte would be DER
	 * padding that parsers refuse (one root in a few hundred was unreadable).
	 */
	sn[0] = (uint8_t)((sn[0] & 0x7f) | 0x40);
	serial = ASN1_INTEGER_new();
	CL_CHECK(serial && ASN1_STRING_set(serial, sn, sizeof(sn)) == 1, CL_ERR_NOMEM,
		 "out of memory");
	name = X509_get_subject_name(c);
	CL_CHECK(X509_set_version(c, X509_VERSION_3) == 1 &&
			 X509_set_serialNumber(c, serial) == 1 &&
			 X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
						    (const unsigned char *)"cloister development",
						    -1, -1, 0) == 1 &&
			 X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
						    (const unsigned char *)ROOT_CN, -1, -1,
						    0) == 1 &&
			 X509_set_issuer_name(c, name) == 1 &&
			 X509_gmtime_adj(X509_getm_notBefore(c), -3600) &&
			 X509_gmtime_adj(X509_getm_notAfter(c), 10L * 366 * 86400) &&
			 X509_set_pubkey(c, key) == 1,
		 CL_ERR_CRYPTO, "cannot build the development root certificate");
	X509V3_set_ctx(&v3, c, c, NULL, NULL, 0);
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		ext = X509V3_EXT_conf(NULL, &v3, exts[i][0], exts[i][1]);
		CL_CHECK(ext && X509_add_ext(c, ext, -1) == 1, CL_ERR_CRYPTO,
			 "cannot add %s to the development root", exts[i][0]);
		X509_EXTENSION_free(ext);
		ext = NULL;
	}
	CL_CHECK(X509_sign(c, key, EVP_sha384()) > 0, CL_ERR_CRYPTO,
		 "cannot sign the development root certificate");
	*out = c;
	c = NULL;
out:
	X509_EXTENSION_free(ext);
	ASN1_INTEGER_free(serial);
	X509_free(c);
	return rc;
}

static int create_root(const char *dir)
{
	EVP_PKEY *key = EVP_EC_gen("P-384");
	X509 *cert = NULL;
	BIO *kb = BIO_new(BIO_s_secmem()), *cb = BIO_new(BIO_s_mem());
	uint8_t seal[SEAL_LEN];
	char *kp = NULL, *cp = NULL;
	long kn = 0, cn = 0;
	int rc = CL_OK;

	CL_CHECK(key, CL_ERR_CRYPTO, "cannot generate the development root key");
	CL_CHECK(kb && cb, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(RAND_priv_bytes(seal, sizeof(seal)) == 1, CL_ERR_CRYPTO, "no randomness");
	CL_TRY(make_cert(key, &cert));
	CL_CHECK(PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) == 1 &&
			 PEM_write_bio_X509(cb, cert) == 1,
		 CL_ERR_CRYPTO, "cannot encode the development root");
	kn = BIO_get_mem_data(kb, &kp);
	cn = BIO_get_mem_data(cb, &cp);
	CL_CHECK(kn > 0 && cn > 0, CL_ERR_CRYPTO, "cannot encode the development root");
	/* The certificate goes last: its presence marks a complete state. */
	CL_TRY(write_file(dir, "seal.key", seal, sizeof(seal), 0600));
	CL_TRY(write_file(dir, "root.key", kp, (size_t)kn, 0600));
	CL_TRY(write_file(dir, "root.pem", cp, (size_t)cn, 0644));
	cl_log_info("devtee: created development root in %s", dir);
out:
	cl_zeroize(seal, sizeof(seal));
	BIO_free(kb);
	BIO_free(cb);
	X509_free(cert);
	EVP_PKEY_free(key);
	ERR_clear_error();
	return rc;
}

static int load_pem(const char *path, EVP_PKEY **key, X509 **cert)
{
	FILE *f = fopen(path, "r");
	int rc = CL_OK;

	CL_CHECK(f, CL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
	if (key)
		*key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	else
		*cert = PEM_read_X509(f, NULL, NULL, NULL);
	CL_CHECK(key ? *key != NULL : *cert != NULL, CL_ERR_MALFORMED, "cannot parse %s", path);
out:
	if (f)
		fclose(f);
	ERR_clear_error();
	return rc;
}

int cl_devtee_root_load(const char *dir, EVP_PKEY **key, X509 **cert)
{
	char lockp[PATH_MAX], certp[PATH_MAX], keyp[PATH_MAX];
	EVP_PKEY *k = NULL;
	X509 *c = NULL;
	int lock = -1, rc = CL_OK;

	CL_TRY(mkdirs(dir));
	CL_TRY(path_in(dir, ".lock", lockp, sizeof(lockp)));
	CL_TRY(path_in(dir, "root.pem", certp, sizeof(certp)));
	CL_TRY(path_in(dir, "root.key", keyp, sizeof(keyp)));
	lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	CL_CHECK(lock >= 0 && flock(lock, LOCK_EX) == 0, CL_ERR_IO, "cannot lock %s: %s", lockp,
		 strerror(errno));
	if (access(certp, F_OK) != 0)
		CL_TRY(create_root(dir));
	if (key)
		CL_TRY(load_pem(keyp, &k, NULL));
	CL_TRY(load_pem(certp, NULL, &c));
	if (k)
		CL_CHECK(X509_check_private_key(c, k) == 1, CL_ERR_MALFORMED,
			 "%s does not belong to %s", keyp, certp);
	if (key) {
		*key = k;
		k = NULL;
	}
	if (cert) {
		*cert = c;
		c = NULL;
	}
out:
	EVP_PKEY_free(k);
	X509_free(c);
	if (lock >= 0)
		close(lock);
	ERR_clear_error();
	return rc;
}

int cl_devtee_seal_secret_load(const char *dir, uint8_t out[32])
{
	char path[PATH_MAX];
	int fd = -1, rc = CL_OK;
	ssize_t n = 0;
	uint8_t extra = 0;

	CL_TRY(path_in(dir, "seal.key", path, sizeof(path)));
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	CL_CHECK(fd >= 0, CL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
	n = read(fd, out, SEAL_LEN);
	CL_CHECK(n == SEAL_LEN && read(fd, &extra, 1) == 0, CL_ERR_MALFORMED, "%s is not %d bytes",
		 path, SEAL_LEN);
out:
	if (rc != CL_OK)
		cl_zeroize(out, SEAL_LEN);
	if (fd >= 0)
		close(fd);
	return rc;
}
