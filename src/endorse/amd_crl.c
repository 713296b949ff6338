/*
 * AMD's certificate revocation lists. The Key Distribution Service publishes
 * one CRL per product and key kind, signed by the product's ARK: it lists
 * revoked ASKs (the intermediates of VCEK chains) or ASVKs (of VLEK chains).
 * The CRL is fetched untrusted and only used once its issuer, signature and
 * validity check out against the pinned ARK.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/x509.h>

#include "cloister/amd.h"
#include "cloister/crypto.h"
#include "cloister/endorse.h"

static const char *kind_path(int vlek)
{
	return vlek ? "vlek" : "vcek";
}

int cl_amd_kds_crl_url(const char *base, enum cl_amd_product p, int vlek, char *out, size_t outlen)
{
	size_t bl = 0;
	int n = 0;

	CL_ENSURE((unsigned)p < CL_AMD_PRODUCT_COUNT, CL_ERR_ARG);
	if (!base || !*base)
		base = CL_AMD_KDS_DEFAULT;
	bl = strlen(base);
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	n = snprintf(out, outlen, "%.*s/%s/v1/%s/crl", (int)bl, base, kind_path(vlek),
		     cl_amd_product_name(p));
	CL_ENSURE_MSG(n > 0 && (size_t)n < outlen, CL_ERR_ARG, "KDS URL too long");
	return CL_OK;
}

int cl_amd_crl_cache_name(enum cl_amd_product p, int vlek, char *out, size_t outlen)
{
	int n = 0;

	CL_ENSURE((unsigned)p < CL_AMD_PRODUCT_COUNT, CL_ERR_ARG);
	n = snprintf(out, outlen, "crl-%s-%s.der", kind_path(vlek), cl_amd_product_name(p));
	CL_ENSURE_MSG(n > 0 && (size_t)n < outlen, CL_ERR_ARG, "cache name too long");
	return CL_OK;
}

int cl_amd_kds_fetch_crl(const char *base, enum cl_amd_product p, int vlek, struct cl_buf *out)
{
	char url[512];
	int rc = CL_OK;

	CL_GUARD(cl_amd_kds_crl_url(base, p, vlek, url, sizeof(url)));
	cl_log_info("fetching the AMD CRL from %s", url);
	rc = cl_http_get(url, CL_AMD_MAX_CRL, out, NULL);
	if (rc == CL_ERR_NOT_FOUND)
		return cl_fail(CL_ERR_NOT_FOUND, "AMD KDS has no CRL at %s (HTTP 404)", url);
	return rc;
}

int cl_amd_crl_check(const uint8_t *crl, size_t n, X509 *ark, X509 *intermediate, int64_t at)
{
	X509_CRL *c = NULL;
	X509_REVOKED *rev = NULL;
	char who[160] = "";
	int rc = CL_OK;

	CL_ENSURE_MSG(ark && intermediate, CL_ERR_ARG, "no ARK or intermediate to check");
	CL_ENSURE_MSG(n > 0 && n <= CL_AMD_MAX_CRL, CL_ERR_MALFORMED,
		      "AMD CRL is empty or larger than %d bytes", CL_AMD_MAX_CRL);
	if (cl_crl_from_any(crl, n, &c) != CL_OK)
		return cl_fail(CL_ERR_MALFORMED, "AMD CRL: not a CRL in DER or PEM");
	/* Issuer name, the ARK's signature (RSA-PSS), thisUpdate <= at <= nextUpdate. */
	rc = cl_crl_check(c, ark, at);
	if (rc == CL_OK && X509_CRL_get0_by_cert(c, &rev, intermediate) == 1) {
		X509_NAME_oneline(X509_get_subject_name(intermediate), who, sizeof(who));
		rc = cl_fail(CL_ERR_REVOKED, "AMD CRL lists %s as revoked", who);
	}
	X509_CRL_free(c);
	return rc;
}
