/*
 * Dev-TEE report generation per second beside the floor it cannot beat: one
 * bare ECDSA P-384 signature over the same 416 bytes with the same key.
 * Single-threaded, so every figure is per core.
 *
 *   build/bench/devtee [SECONDS_PER_CASE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cloister/devtee.h"

static double seconds = 1.0;
static EVP_PKEY *key;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double rate(const char *what, int (*fn)(void))
{
	double t0 = now(), t = 0;
	long n = 0;

	do {
		for (int i = 0; i < 16; i++)
			if (fn() != 0) {
				fprintf(stderr, "bench: %s failed: %s\n", what, cl_error_detail());
				exit(1);
			}
		n += 16;
		t = now() - t0;
	} while (t < seconds);
	return (double)n / t;
}

static int report(void)
{
	struct cl_devtee_report r = {0};
	uint8_t out[CL_DEVTEE_REPORT_LEN];

	r.version = CL_DEVTEE_VERSION;
	memset(r.measurement, 1, sizeof(r.measurement));
	memset(r.report_data, 2, sizeof(r.report_data));
	return cl_devtee_report_sign(&r, key, out);
}

static int floor_sign(void)
{
	static uint8_t msg[CL_DEVTEE_SIGNED_LEN];
	unsigned char sig[160];
	size_t len = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, key) == 1 &&
		 EVP_DigestSign(md, sig, &len, msg, sizeof(msg)) == 1;

	EVP_MD_CTX_free(md);
	return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
	double r = 0, f = 0;

	if (argc > 1)
		seconds = atof(argv[1]);
	key = EVP_EC_gen("P-384");
	if (!key) {
		fprintf(stderr, "bench: no P-384 key\n");
		return 1;
	}
	f = rate("P-384 sign", floor_sign);
	r = rate("dev-TEE report", report);
	printf("%-34s %10.0f /s\n", "floor: ECDSA P-384 sign", f);
	printf("%-34s %10.0f /s  (%.0f%% of floor)\n", "dev-TEE report (sign + encode)", r,
	       100.0 * r / f);
	EVP_PKEY_free(key);
	return 0;
}
