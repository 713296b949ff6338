/*
 * Arm PSA tokens on arbitrary bytes: the whole verifier under an IAK made
 * here, with the format forced or detected, debug allowed or not and report
 * data demanded or not (from the last input byte). Inputs that parse as a
 * COSE_Sign1 have their payload re-signed with that key, so the claim
 * parser and the checks past the signature run on every mutation.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cloister/cose.h"
#include "cloister/evidence.h"

static EVP_PKEY *key;
static char *pem;
static size_t pem_len;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	BIO *b = NULL;
	char *p = NULL;
	long n = 0;

	(void)argc;
	(void)argv;
	cl_log_set_level(CL_LOG_ERROR);
	key = EVP_EC_gen("P-256");
	b = BIO_new(BIO_s_mem());
	if (!key || !b || PEM_write_bio_PUBKEY(b, key) != 1)
		abort();
	n = BIO_get_mem_data(b, &p);
	pem = malloc((size_t)n);
	if (!pem)
		abort();
	memcpy(pem, p, (size_t)n);
	pem_len = (size_t)n;
	BIO_free(b);
	return 0;
}

static void verify(const uint8_t *p, size_t n, int flags)
{
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result res = {0};

	o.format = (flags & 1) ? CL_FORMAT_PSA : CL_FORMAT_AUTO;
	o.allow_debug = (flags >> 1) & 1;
	o.have_report_data = (flags >> 2) & 1;
	o.psa.iak = (const uint8_t *)pem;
	o.psa.iak_len = pem_len;
	(void)cl_verify_evidence(p, n, &o, &res);
	cl_verify_result_free(&res);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cl_cose_sign1 s;
	uint8_t *tok = NULL;
	size_t tok_len = 0;
	int flags = size ? data[size - 1] : 0;

	verify(data, size, flags);
	if (cl_cose_sign1_parse(data, size, &s) == CL_OK &&
	    cl_cose_sign1_sign(key, s.payload, s.payload_len, 1, &tok, &tok_len) == CL_OK) {
		verify(tok, tok_len, flags);
		free(tok);
	}
	cl_cose_sign1_free(&s);
	return 0;
}
