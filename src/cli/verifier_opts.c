#include <string.h>

#include "verifier_opts.h"

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
		v->verify.collateral = arg;
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
	default:
		return 0;
	}
}

int verifier_opts_load(struct verifier_opts *v)
{
	if (v->vcek_path) {
		CL_GUARD(cl_read_file(v->vcek_path, 64 * 1024, &v->vcek));
		v->verify.vcek = v->vcek.data;
		v->verify.vcek_len = v->vcek.len;
	}
	if (v->devtee_root_path) {
		CL_GUARD(cl_read_file(v->devtee_root_path, 64 * 1024, &v->devtee_root));
		v->verify.devtee_root = (const char *)v->devtee_root.data;
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
	memset(v, 0, sizeof(*v));
}
