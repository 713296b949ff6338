#include <openssl/crypto.h>

#include "cloister/core.h"

void cl_zeroize(void *p, size_t n)
{
	if (p && n)
		OPENSSL_cleanse(p, n);
}

int cl_ct_equal(const void *a, const void *b, size_t n)
{
	return CRYPTO_memcmp(a, b, n) == 0;
}
