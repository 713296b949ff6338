#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloister/amd.h"
#include "verifier_opts.h"

int verifier_path_check(const char *opt, const char *path, enum verifier_path_kind kind)
{
	struct stat st;
	DIR *d = NULL;
	int fd = -1;

	if (!path)
		return CL_OK;
	if (kind == VPATH_FILE && strcmp(path, "-") == 0)
		return CL_OK;
	if (stat(path, &st) != 0) {
		if (kind == VPATH_CACHE_DIR && errno == ENOENT)
			return CL_OK;
		return cl_fail(CL_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
	}
	if (S_ISDIR(st.st_mode)) {
		if (kind == VPATH_FILE)
			return cl_fail(CL_ERR_IO, "%s %s: is a directory, not a file", opt, path);
		d = opendir(path);
		if (!d)
			return cl_fail(CL_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
		closedir(d);
		return CL_OK;
	}
	if (kind == VPATH_CACHE_DIR)
		return cl_fail(CL_ERR_IO, "%s %s: not a directory", opt, path);
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return cl_fail(CL_ERR_IO, "%s %s: %s", opt, path, strerror(errno));
	close(fd);
	return CL_OK;
}

int verifier_opts_handle(struct verifier_opts *v, int c, const char *arg)
{
	switch (c) {
	case VOPT_POLICY:
		v->policy_path = arg;
		return 1;
	case VOPT_REFERENCE_VALUES:
		v->rv_path = arg;
		return 1;
	case VOPT_COLLATERAL:
		v->verify.dcap.collateral = arg;
		return 1;
	case VOPT_VCEK:
		v->vcek_path = arg;
		return 1;
	case VOPT_AT:
		CL_GUARD(cl_time_parse(arg, &v->verify.at));
		return 1;
	case VOPT_ALLOW_DEBUG:
		v->verify.allow_debug = 1;
		return 1;
	case VOPT_CORIM_KEY:
		v->corim_key_path = arg;
		return 1;
	case VOPT_DEVTEE_ROOT:
		v->devtee_root_path = arg;
		return 1;
	case VOPT_CERTS:
		v->certs_path = arg;
		return 1;
	case VOPT_AK:
		v->ak_path = arg;
		return 1;
	case VOPT_AK_ROOTS:
		v->ak_roots_path = arg;
		return 1;
	case VOPT_OFFLINE:
		v->verify.offline = 1;
		return 1;
	case VOPT_CACHE_DIR:
		v->verify.cache_dir = arg;
		return 1;
	case VOPT_KDS_URL:
		v->verify.snp.kds_url = arg;
		return 1;
	case VOPT_PCS_URL:
		v->verify.dcap.pcs_url = arg;
		return 1;
	case VOPT_CRL:
		v->crl_path = arg;
		return 1;
	case VOPT_PSA_IAK:
		v->psa_iak_path = arg;
		return 1;
	default:
		return 0;
	}
}

int verifier_opts_load(struct verifier_opts *v)
{
	CL_GUARD(verifier_path_check("--vcek", v->vcek_path, VPATH_FILE));
	CL_GUARD(verifier_path_check("--devtee-root", v->devtee_root_path, VPATH_FILE));
	CL_GUARD(verifier_path_check("--policy", v->policy_path, VPATH_FILE));
	CL_GUARD(verifier_path_check("--corim-key", v->corim_key_path, VPATH_FILE));
	CL_GUARD(verifier_path_check("--reference-values", v->rv_path, VPATH_FILE));
	CL_GUARD(verifier_path_check("--collateral", v->verify.dcap.collateral, VPATH_FILE_OR_DIR));
	CL_GUARD(verifier_path_check("--certs", v->certs_path, VPATH_FILE));
	CL_GUARD(verifier_path_check("--ak", v->ak_path, VPATH_FILE));
	CL_GUARD(verifier_path_check("--ak-roots", v->ak_roots_path, VPATH_FILE));
	CL_GUARD(verifier_path_check("--cache-dir", v->verify.cache_dir, VPATH_CACHE_DIR));
	CL_GUARD(verifier_path_check("--crl", v->crl_path, VPATH_FILE));
	CL_GUARD(verifier_path_check("--psa-iak", v->psa_iak_path, VPATH_FILE));
	if (v->vcek_path) {
		CL_GUARD(cl_read_file(v->vcek_path, 64 * 1024, &v->vcek));
		v->verify.snp.vcek = v->vcek.data;
		v->verify.snp.vcek_len = v->vcek.len;
	}
	if (v->certs_path) {
		/* One chain file: SNP's intermediates or a DCAP PCK chain, whichever applies. */
		CL_GUARD(cl_read_file(v->certs_path, 256 * 1024, &v->certs));
		v->verify.snp.certs = v->certs.data;
		v->verify.snp.certs_len = v->certs.len;
		v->verify.dcap.pck_chain = v->certs.data;
		v->verify.dcap.pck_chain_len = v->certs.len;
	}
	if (v->crl_path) {
		CL_GUARD(cl_read_file(v->crl_path, CL_AMD_MAX_CRL, &v->crl));
		v->verify.snp.crl = v->crl.data;
		v->verify.snp.crl_len = v->crl.len;
	}
	if (v->ak_path) {
		CL_GUARD(cl_read_file(v->ak_path, 16 * 1024, &v->ak));
		v->verify.tpm.ak = v->ak.data;
		v->verify.tpm.ak_len = v->ak.len;
	}
	if (v->ak_roots_path) {
		CL_GUARD(cl_read_file(v->ak_roots_path, 256 * 1024, &v->ak_roots));
		v->verify.tpm.ak_roots = v->ak_roots.data;
		v->verify.tpm.ak_roots_len = v->ak_roots.len;
	}
	if (v->devtee_root_path) {
		CL_GUARD(cl_read_file(v->devtee_root_path, 64 * 1024, &v->devtee_root));
		v->verify.devtee.root = (const char *)v->devtee_root.data;
	}
	if (v->psa_iak_path) {
		CL_GUARD(cl_read_file(v->psa_iak_path, 64 * 1024, &v->psa_iak));
		v->verify.psa.iak = v->psa_iak.data;
		v->verify.psa.iak_len = v->psa_iak.len;
	}
	if (v->policy_path)
		CL_GUARD(cl_policy_load_file(v->policy_path, &v->policy));
	if (v->corim_key_path) {
		CL_ENSURE_MSG(v->rv_path, CL_ERR_ARG, "--corim-key needs --reference-values");
		CL_GUARD(cl_read_file(v->corim_key_path, CL_MAX_CORIM_KEY, &v->corim_key));
	}
	if (v->rv_path) {
		struct cl_corim_opts co = {v->corim_key.data, v->corim_key.len, v->verify.at};

		CL_GUARD(cl_refvalues_load_any(v->rv_path, &co, &v->rv));
	}
	return CL_OK;
}

void verifier_opts_free(struct verifier_opts *v)
{
	cl_policy_free(v->policy);
	cl_refvalues_free(v->rv);
	cl_buf_free(&v->vcek);
	cl_buf_free(&v->corim_key);
	cl_buf_free(&v->devtee_root);
	cl_buf_free(&v->certs);
	cl_buf_free(&v->ak);
	cl_buf_free(&v->ak_roots);
	cl_buf_free(&v->crl);
	cl_buf_free(&v->psa_iak);
	memset(v, 0, sizeof(*v));
}
