/*
 * Cost of appraisal beside the signature check it follows: default-policy
 * evaluations per second and EAR signatures per second (ES256, ES384),
 * next to one ECDSA P-384 verification (what an SNP report costs) measured
 * in the same run.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cloister/appraise.h"

#define MEAS                                                                                       \
	"a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f90" \
	"50d3d38c"

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double p384_verify_us(void)
{
	static const unsigned char msg[1184] = {2};
	EVP_PKEY *pk = EVP_EC_gen("P-384");
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	unsigned char sig[128];
	size_t sl = sizeof(sig);
	int n = 0;
	double t0 = 0;

	EVP_DigestSignInit(c, NULL, EVP_sha384(), NULL, pk);
	EVP_DigestSign(c, sig, &sl, msg, sizeof(msg));
	t0 = now();
	for (n = 0; now() - t0 < 1.0; n++) {
		EVP_MD_CTX_reset(c);
		if (EVP_DigestVerifyInit(c, NULL, EVP_sha384(), NULL, pk) != 1 ||
		    EVP_DigestVerify(c, sig, sl, msg, sizeof(msg)) != 1)
			return -1;
	}
	EVP_MD_CTX_free(c);
	EVP_PKEY_free(pk);
	return (now() - t0) * 1e6 / n;
}

static struct cl_ear_key *key(const char *curve)
{
	EVP_PKEY *pk = EVP_EC_gen(curve);
	BIO *b = BIO_new(BIO_s_mem());
	struct cl_ear_key *k = NULL;
	char *pem = NULL;
	long n = 0;

	PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL);
	n = BIO_get_mem_data(b, &pem);
	if (cl_ear_key_from_pem((const uint8_t *)pem, (size_t)n, &k) != CL_OK)
		k = NULL;
	BIO_free(b);
	EVP_PKEY_free(pk);
	return k;
}

int main(void)
{
	static const char rvtext[] = "{\"snp\": {\"measurement\": [\"" MEAS "\"],"
				     " \"reported_tcb\": {\"min\": {\"snp\": 8}}}}";
	json_t *claims =
		json_pack("{s:s, s:s, s:s, s:b, s:s, s:[], s:{s:i, s:i, s:i, s:i}, s:i}",
			  "platform", "snp", "measurement", MEAS, "report_data", "ec6c", "debug", 0,
			  "tcb_status", "Unknown", "advisory_ids", "reported_tcb", "bootloader", 3,
			  "tee", 0, "snp", 8, "microcode", 115, "guest_svn", 4);
	struct cl_refvalues *rv = NULL;
	struct cl_appraisal a = {0};
	struct cl_appraise_ctx ctx = {0};
	const char *curves[2] = {"P-256", "P-384"};
	double verify = p384_verify_us(), t0 = 0, eval = 0;
	int n = 0;

	if (cl_refvalues_parse(rvtext, sizeof(rvtext) - 1, &rv) != CL_OK || verify < 0)
		return 1;
	ctx.at = 1748736000;
	printf("P-384 verify (one SNP report signature): %8.1f us  (%.0f/s)\n", verify,
	       1e6 / verify);
	t0 = now();
	for (n = 0; now() - t0 < 1.0; n++) {
		if (cl_policy_appraise(NULL, claims, rv, &ctx, &a) != CL_OK ||
		    a.status != CL_TIER_AFFIRMING)
			return 1;
		if (n + 1 < 1 << 30)
			cl_appraisal_free(&a);
	}
	eval = (now() - t0) * 1e6 / n;
	printf("default policy evaluation:               %8.1f us  (%.0f/s)  %.1f%% of a verify\n",
	       eval, 1e6 / eval, 100 * eval / verify);
	if (cl_policy_appraise(NULL, claims, rv, &ctx, &a) != CL_OK)
		return 1;
	for (int c = 0; c < 2; c++) {
		struct cl_ear_key *k = key(curves[c]);
		struct cl_ear_submod sm = {"cpu0", &a, claims};
		double us = 0;

		if (!k)
			return 1;
		t0 = now();
		for (n = 0; now() - t0 < 1.0; n++) {
			char *jwt = NULL;

			if (cl_ear_sign(k, &sm, 1, NULL, &jwt) != CL_OK)
				return 1;
			free(jwt);
		}
		us = (now() - t0) * 1e6 / n;
		printf("EAR sign %s:                          %8.1f us  (%.0f/s)  policy+sign "
		       "%.1f%% of a verify\n",
		       cl_ear_key_alg(k), us, 1e6 / us, 100 * (us + eval) / verify);
		cl_ear_key_free(k);
	}
	cl_appraisal_free(&a);
	cl_refvalues_free(rv);
	json_decref(claims);
	cl_policy_thread_release();
	return 0;
}
