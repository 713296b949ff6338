/*
 * Cost of loading CoRIM reference values: an unsigned CoRIM, the same
 * values as a JSON file, and a COSE_Sign1 (ES256) CoRIM beside the floor of
 * one bare P-256 signature check measured in the same run.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "cloister/appraise.h"

#define MEAS                                                                                       \
	"a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f90" \
	"50d3d38c"

/* The CoRIM tests/e2e/make_corim.py writes for MEAS with --min-svn 4 (139 bytes). */
static const char corim_hex[] =
	"d901f5a20072636c6f69737465722d6532652d636f72696d0181d901fa586ca201a10072636c6f6973746572"
	"2d6532652d636f6d696404a1008182a100a20163414d4402675345562d534e5081a101a2028182075830" MEAS
	"01d9022904";
/* {1: -7, 3: "application/rim+cbor"} */
static const char prot_hex[] = "a2012603746170706c69636174696f6e2f72696d2b63626f72";

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void put(uint8_t *buf, size_t *n, const void *p, size_t len)
{
	memcpy(buf + *n, p, len);
	*n += len;
}

int main(void)
{
	static const char json[] =
		"{\"snp\": {\"measurement\": [\"" MEAS "\"], \"guest_svn\": {\"min\": 4}}}";
	uint8_t corim[139], prot[25], tbs[256], der[80], sig[64], signed_corim[512];
	size_t tn = 0, dl = sizeof(der), sn = 0, pl = 0, kl = 0;
	EVP_PKEY *pk = EVP_EC_gen("P-256");
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	BIO *b = BIO_new(BIO_s_mem());
	const uint8_t *dp = der;
	ECDSA_SIG *es = NULL;
	char *pem = NULL;
	struct cl_corim_opts plain = {NULL, 0, 1748736000}, keyed = {NULL, 0, 1748736000};
	struct cl_refvalues *rv = NULL;
	double t0 = 0, us[4];
	int iters = 0;

	if (!pk || !md || !b || cl_hex_decode_exact(corim_hex, corim, sizeof(corim)) != CL_OK ||
	    cl_hex_decode_exact(prot_hex, prot, sizeof(prot)) != CL_OK)
		return 1;
	pl = sizeof(prot);
	put(tbs, &tn, "\x84\x6aSignature1\x58\x19", 14);
	put(tbs, &tn, prot, pl);
	put(tbs, &tn, "\x40\x58\x8b", 3);
	put(tbs, &tn, corim, sizeof(corim));
	if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, pk) != 1 ||
	    EVP_DigestSign(md, der, &dl, tbs, tn) != 1 ||
	    !(es = d2i_ECDSA_SIG(NULL, &dp, (long)dl)) ||
	    BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) != 32 ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) != 32)
		return 1;
	put(signed_corim, &sn, "\xd2\x84\x58\x19", 4);
	put(signed_corim, &sn, prot, pl);
	put(signed_corim, &sn, "\xa0\x58\x8b", 3);
	put(signed_corim, &sn, corim, sizeof(corim));
	put(signed_corim, &sn, "\x58\x40", 2);
	put(signed_corim, &sn, sig, sizeof(sig));
	PEM_write_bio_PUBKEY(b, pk);
	kl = (size_t)BIO_get_mem_data(b, &pem);
	keyed.key = (const uint8_t *)pem;
	keyed.key_len = kl;

	for (int k = 0; k < 4; k++) {
		t0 = now();
		for (iters = 0; now() - t0 < 1.0; iters++) {
			int rc = CL_OK;

			if (k == 0) {
				EVP_MD_CTX_reset(md);
				rc = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, pk) == 1 &&
						     EVP_DigestVerify(md, der, dl, tbs, tn) == 1
					     ? CL_OK
					     : CL_ERR_SIGNATURE;
			} else if (k == 1) {
				rc = cl_refvalues_parse(json, sizeof(json) - 1, &rv);
			} else {
				rc = cl_corim_parse(k == 2 ? corim : signed_corim,
						    k == 2 ? sizeof(corim) : sn,
						    k == 2 ? &plain : &keyed, &rv);
			}
			cl_refvalues_free(rv);
			rv = NULL;
			if (rc != CL_OK) {
				fprintf(stderr, "bench corim: step %d failed: %s\n", k,
					cl_error_detail());
				return 1;
			}
		}
		us[k] = (now() - t0) * 1e6 / iters;
	}
	printf("P-256 verify (floor for a signed CoRIM):  %8.1f us  (%.0f/s)\n", us[0],
	       1e6 / us[0]);
	printf("JSON reference values, same content:      %8.1f us  (%.0f/s)\n", us[1],
	       1e6 / us[1]);
	printf("unsigned CoRIM (139 bytes):               %8.1f us  (%.0f/s)\n", us[2],
	       1e6 / us[2]);
	printf("signed CoRIM, ES256 (key load + verify):  %8.1f us  (%.1fx the floor)\n", us[3],
	       us[3] / us[0]);
	ECDSA_SIG_free(es);
	BIO_free(b);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	return 0;
}
