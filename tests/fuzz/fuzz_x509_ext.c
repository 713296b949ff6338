/*
 * The X.509 extension decoders of vendor certificates: AMD's VCEK/VLEK
 * extensions (product, SPLs, hwID, CSP id) and the SGX extensions of Intel
 * PCK certificates. Input that starts like DER (0x30) is a whole
 * certificate; otherwise its first byte picks an extension and the rest is
 * that extension's value in an otherwise empty certificate.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "cloister/amd.h"
#include "cloister/crypto.h"
#include "cloister/endorse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const oids[] = {
	"1.2.840.113741.1.13.1", /* Intel SGX extensions */
	"1.3.6.1.4.1.3704.1.1",	  "1.3.6.1.4.1.3704.1.2",   "1.3.6.1.4.1.3704.1.3.1",
	"1.3.6.1.4.1.3704.1.3.2", "1.3.6.1.4.1.3704.1.3.3", "1.3.6.1.4.1.3704.1.3.8",
	"1.3.6.1.4.1.3704.1.3.9", "1.3.6.1.4.1.3704.1.4",   "1.3.6.1.4.1.3704.1.5",
};

static void decode(X509 *x)
{
	struct cl_amd_cert_ext amd;
	struct cl_intel_pck_info pck;

	(void)cl_amd_cert_ext_parse(x, &amd);
	(void)cl_intel_pck_info(x, &pck);
}

static X509 *with_ext(const char *oid, const uint8_t *val, size_t n)
{
	X509 *x = X509_new();
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
	X509_EXTENSION *ext = NULL;

	if (x && obj && os && ASN1_OCTET_STRING_set(os, val, (int)n) == 1 &&
	    (ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os)) != NULL)
		X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	ASN1_OCTET_STRING_free(os);
	ASN1_OBJECT_free(obj);
	return x;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	X509 *x = NULL;

	if (size < 1 || size > 65536)
		return 0;
	if (data[0] == 0x30) {
		if (cl_x509_from_der(data, size, &x) == CL_OK)
			decode(x);
	} else {
		x = with_ext(oids[data[0] % (sizeof(oids) / sizeof(oids[0]))], data + 1, size - 1);
		if (x)
			decode(x);
	}
	X509_free(x);
	return 0;
}
