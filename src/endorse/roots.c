#include <pthread.h>
#include <string.h>

#include <openssl/pem.h>

#include "cloister/endorse.h"
#include "roots.h"

static X509 *amd_certs[CL_AMD_PRODUCT_COUNT][3];
static X509 *intel_root;
static X509 *aws_nitro_root;
static pthread_once_t roots_once = PTHREAD_ONCE_INIT;

static X509 *parse_pem(const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509 *x = bio ? PEM_read_bio_X509(bio, NULL, NULL, NULL) : NULL;

	BIO_free(bio);
	return x;
}

static void load_roots(void)
{
	static const char *const pems[CL_AMD_PRODUCT_COUNT][3] = {
		{cl_amd_milan_ark_pem, cl_amd_milan_ask_pem, cl_amd_milan_asvk_pem},
		{cl_amd_genoa_ark_pem, cl_amd_genoa_ask_pem, cl_amd_genoa_asvk_pem},
		{cl_amd_turin_ark_pem, cl_amd_turin_ask_pem, cl_amd_turin_asvk_pem},
	};

	for (int p = 0; p < CL_AMD_PRODUCT_COUNT; p++)
		for (int i = 0; i < 3; i++)
			amd_certs[p][i] = parse_pem(pems[p][i]);
	intel_root = parse_pem(cl_intel_sgx_root_pem);
	aws_nitro_root = parse_pem(cl_aws_nitro_root_pem);
}

const char *cl_amd_product_name(enum cl_amd_product p)
{
	static const char *const names[] = {"Milan", "Genoa", "Turin"};

	return (unsigned)p < CL_AMD_PRODUCT_COUNT ? names[p] : "unknown";
}

static X509 *amd_cert(enum cl_amd_product p, int which)
{
	if ((unsigned)p >= CL_AMD_PRODUCT_COUNT)
		return NULL;
	pthread_once(&roots_once, load_roots);
	return amd_certs[p][which];
}

X509 *cl_amd_ark(enum cl_amd_product p)
{
	return amd_cert(p, 0);
}

X509 *cl_amd_ask(enum cl_amd_product p)
{
	return amd_cert(p, 1);
}

X509 *cl_amd_asvk(enum cl_amd_product p)
{
	return amd_cert(p, 2);
}

X509 *cl_intel_root(void)
{
	pthread_once(&roots_once, load_roots);
	return intel_root;
}

X509 *cl_aws_nitro_root(void)
{
	pthread_once(&roots_once, load_roots);
	return aws_nitro_root;
}
