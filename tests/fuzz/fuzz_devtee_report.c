/*
 * The dev-TEE wire formats on arbitrary bytes: the report (parser and the
 * whole verifier against a fixed development root), the platform's request
 * parser and the event-log replay. Inputs whose fields parse are also
 * re-signed with the root's key, so the checks past the signature run too.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/devtee.h"
#include "cloister/evidence.h"

static EVP_PKEY *key;
static char *root;
static char dir[] = "/tmp/cloister-fuzz-devtee.XXXXXX";

static void cleanup(void)
{
	static const char *const files[] = {"root.pem", "root.key", "seal.key", ".lock"};
	char p[64];

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		remove(p);
	}
	remove(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char path[64];
	struct cl_buf pem = {0};

	(void)argc;
	(void)argv;
	cl_log_set_level(CL_LOG_ERROR);
	if (!mkdtemp(dir))
		abort();
	atexit(cleanup);
	if (cl_devtee_root_load(dir, &key, NULL) != CL_OK)
		abort();
	snprintf(path, sizeof(path), "%s/root.pem", dir);
	if (cl_read_file(path, 0, &pem) != CL_OK)
		abort();
	root = (char *)pem.data;
	return 0;
}

static void verify(const uint8_t *p, size_t n, int allow_debug)
{
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result res = {0};

	o.devtee.root = root;
	o.allow_debug = allow_debug;
	(void)cl_verify_evidence(p, n, &o, &res);
	cl_verify_result_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cl_devtee_report r;
	struct cl_devtee_req q;
	uint8_t rtmr[CL_DEVTEE_RTMRS][CL_DEVTEE_HASH_LEN], buf[CL_DEVTEE_REPORT_LEN];

	verify(data, size, size & 1);
	(void)cl_devtee_req_parse(data, size, &q);
	(void)cl_devtee_eventlog_replay(data, size, rtmr, NULL);
	if (size >= CL_DEVTEE_SIGNED_LEN) {
		memset(buf, 0, sizeof(buf));
		memcpy(buf, data, CL_DEVTEE_SIGNED_LEN);
		if (cl_devtee_report_parse(buf, sizeof(buf), &r) == CL_OK &&
		    cl_devtee_report_sign(&r, key, buf) == CL_OK)
			verify(buf, sizeof(buf), data[0] & 1);
	}
	return 0;
}
