/*
 * Launch measurement and sealing keys of the development TEE.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "cloister/crypto.h"
#include "cloister/devtee.h"
#include "internal.h"

static const char measure_domain[] = "cloister devtee launch v1";
static const char seal_domain[] = "cloister devtee seal v1";

static int upd(EVP_MD_CTX *md, const void *p, size_t n)
{
	return EVP_DigestUpdate(md, p, n) == 1 ? CL_OK
					       : cl_fail(CL_ERR_CRYPTO, "SHA-384 update failed");
}

static int upd_u32(EVP_MD_CTX *md, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};

	return upd(md, b, 4);
}

static int upd_u64(EVP_MD_CTX *md, uint64_t v)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	return upd(md, b, 8);
}

int cl_devtee_measure(const struct cl_devtee_launch *l, uint8_t out[CL_DEVTEE_HASH_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned int olen = 0;
	int rc = CL_OK;

	CL_CHECK(md, CL_ERR_NOMEM, "out of memory");
	CL_CHECK(l->argc >= 1 && l->argc <= CL_DEVTEE_MAX_ARGS, CL_ERR_ARG,
		 "a launch needs 1 to %d arguments", CL_DEVTEE_MAX_ARGS);
	CL_CHECK(EVP_DigestInit_ex(md, EVP_sha384(), NULL) == 1, CL_ERR_CRYPTO,
		 "SHA-384 init failed");
	CL_TRY(upd(md, measure_domain, sizeof(measure_domain))); /* NUL included */
	CL_TRY(upd_u32(md, l->flags));
	CL_TRY(upd(md, l->host_data, CL_DEVTEE_HASH_LEN));
	CL_TRY(upd_u64(md, l->program_len));
	CL_TRY(upd(md, l->program, l->program_len));
	CL_TRY(upd_u32(md, (uint32_t)l->argc));
	for (size_t i = 0; i < l->argc; i++) {
		size_t n = strlen(l->argv[i]);

		CL_CHECK(n <= UINT32_MAX, CL_ERR_ARG, "argument too long");
		CL_TRY(upd_u32(md, (uint32_t)n));
		CL_TRY(upd(md, l->argv[i], n));
	}
	CL_CHECK(EVP_DigestFinal_ex(md, out, &olen) == 1 && olen == CL_DEVTEE_HASH_LEN,
		 CL_ERR_CRYPTO, "SHA-384 final failed");
out:
	EVP_MD_CTX_free(md);
	return rc;
}

int cl_devtee_seal_key(const uint8_t *secret, size_t secret_len,
		       const uint8_t measurement[CL_DEVTEE_HASH_LEN], const uint8_t *label,
		       size_t label_len, uint8_t out[CL_DEVTEE_SEAL_KEY_LEN])
{
	uint8_t info[sizeof(seal_domain) + CL_DEVTEE_MAX_LABEL];

	CL_ENSURE_MSG(label_len >= 1 && label_len <= CL_DEVTEE_MAX_LABEL, CL_ERR_ARG,
		      "sealing-key label must be 1 to %d bytes", CL_DEVTEE_MAX_LABEL);
	CL_ENSURE_MSG(secret_len > 0, CL_ERR_ARG, "empty sealing secret");
	memcpy(info, seal_domain, sizeof(seal_domain)); /* NUL separates domain and label */
	memcpy(info + sizeof(seal_domain), label, label_len);
	return cl_hkdf_sha384(secret, secret_len, measurement, CL_DEVTEE_HASH_LEN, info,
			      sizeof(seal_domain) + label_len, out, CL_DEVTEE_SEAL_KEY_LEN);
}

int cl_devtee_resolve(const char *prog, char *out, size_t cap)
{
	const char *path = getenv("PATH");
	const char *p = NULL;

	if (strchr(prog, '/')) {
		CL_ENSURE_MSG(strlen(prog) < cap, CL_ERR_ARG, "program path too long");
		snprintf(out, cap, "%s", prog);
		return CL_OK;
	}
	p = path && *path ? path : "/usr/local/bin:/usr/bin:/bin";
	while (*p) {
		size_t n = strcspn(p, ":");
		int w = 0;

		w = snprintf(out, cap, "%.*s/%s", (int)n, n ? p : ".", prog);
		if (w > 0 && (size_t)w < cap && access(out, X_OK) == 0)
			return CL_OK;
		p += n;
		if (*p == ':')
			p++;
	}
	CL_BAIL(CL_ERR_NOT_FOUND, "%s: not found in PATH", prog);
}

int cl_devtee_host_data(const char *init_data_path, uint8_t out[CL_DEVTEE_HASH_LEN])
{
	struct cl_buf b = {0};
	int rc = CL_OK;

	memset(out, 0, CL_DEVTEE_HASH_LEN);
	if (!init_data_path)
		return CL_OK;
	CL_TRY(cl_read_file(init_data_path, CL_DEVTEE_MAX_INIT_DATA, &b));
	CL_TRY(cl_digest(CL_SHA384, b.data, b.len, out));
out:
	cl_buf_free(&b);
	return rc;
}

int cl_devtee_measure_argv(const struct cl_devtee_opts *o, char *const argv[],
			   uint8_t out[CL_DEVTEE_HASH_LEN])
{
	struct cl_devtee_launch l = {0};
	struct cl_buf prog = {0};
	char path[PATH_MAX];
	int rc = CL_OK;

	CL_CHECK(argv && argv[0], CL_ERR_ARG, "no program given");
	CL_TRY(cl_devtee_resolve(argv[0], path, sizeof(path)));
	CL_TRY(cl_read_file(path, CL_DEVTEE_MAX_PROGRAM, &prog));
	CL_TRY(cl_devtee_host_data(o->init_data_path, l.host_data));
	l.program = prog.data;
	l.program_len = prog.len;
	l.argv = argv;
	while (argv[l.argc])
		l.argc++;
	l.flags = o->debug ? CL_DEVTEE_FLAG_DEBUG : 0;
	CL_TRY(cl_devtee_measure(&l, out));
out:
	cl_buf_free(&prog);
	return rc;
}
