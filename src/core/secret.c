#include <stdatomic.h>

#include <openssl/crypto.h>

#include "cloister/core.h"

void cl_zeroize(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

static _Atomic uint64_t epochs;
static _Thread_local uint64_t epoch;

void cl_cache_bypass(int on)
{
	epoch = on ? atomic_fetch_add(&epochs, 1) + 1 : 0;
}

int cl_cache_bypassed(void)
{
	return epoch != 0;
}

uint64_t cl_cache_epoch(void)
{
	return epoch;
}

int cl_ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}
