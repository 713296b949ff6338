/*
 * Fetch Intel DCAP collateral from Intel PCS v4 (or a PCCS serving the same
 * API) into the cache directory, in the directory layout the loader reads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/crypto.h"
#include "intel.h"

#define PCS_HOST     "api.trustedservices.intel.com"
#define ROOT_CRL_URL "https://certificates.trustedservices.intel.com/IntelSGXRootCA.der"

/* GET url; with hdrs, the first present header (URL-decoded) goes to *chain. */
static int get(const char *url, const char *const *hdrs, struct cl_buf *body, char **chain)
{
	struct cl_buf h = {0};
	char *raw = NULL;
	int rc = CL_OK;

	CL_GUARD(cl_http_get(url, CL_MAX_FETCH, body, hdrs ? &h : NULL));
	if (!hdrs)
		return CL_OK;
	rc = CL_ERR_NOT_FOUND;
	for (int i = 0; hdrs[i] && rc == CL_ERR_NOT_FOUND; i++)
		rc = cl_http_header(&h, hdrs[i], &raw);
	if (rc == CL_OK) {
		rc = cl_url_decode(raw, chain);
		if (rc == CL_OK && strlen(*chain) > CL_MAX_PEM_CHAIN)
			rc = cl_fail(CL_ERR_MALFORMED, "issuer chain header too large");
	} else {
		rc = cl_fail(CL_ERR_COLLATERAL, "GET %s: no %s header", url, hdrs[0]);
	}
	free(raw);
	cl_buf_free(&h);
	return rc;
}

static int put(const char *intel_dir, const char *key, const char *name, const void *p, size_t n)
{
	return cl_cache_put(intel_dir, key, name, p, n);
}

static int fetch_all(const char *base, const char *tee, const char *fmspc_hex, const char *ca,
		     const char *intel_dir, const char *key)
{
	static const char *const tcb_hdrs[] = {"TCB-Info-Issuer-Chain", "SGX-TCB-Info-Issuer-Chain",
					       NULL};
	static const char *const qe_hdrs[] = {"SGX-Enclave-Identity-Issuer-Chain",
					      "Enclave-Identity-Issuer-Chain", NULL};
	static const char *const crl_hdrs[] = {"SGX-PCK-CRL-Issuer-Chain", NULL};
	struct cl_buf tcb = {0}, qe = {0}, pck = {0}, root = {0};
	char *tcb_chain = NULL, *qe_chain = NULL, *crl_chain = NULL;
	char url[2048];
	int rc = CL_OK;

#define URL(...)                                                                                   \
	do {                                                                                       \
		int n_ = snprintf(url, sizeof(url), __VA_ARGS__);                                  \
		CL_CHECK(n_ > 0 && (size_t)n_ < sizeof(url), CL_ERR_ARG, "PCS URL too long");      \
	} while (0)
	URL("%s/%s/certification/v4/tcb?fmspc=%s", base, tee, fmspc_hex);
	CL_TRY(get(url, tcb_hdrs, &tcb, &tcb_chain));
	URL("%s/%s/certification/v4/qe/identity", base, tee);
	CL_TRY(get(url, qe_hdrs, &qe, &qe_chain));
	URL("%s/sgx/certification/v4/pckcrl?ca=%s&encoding=der", base, ca);
	CL_TRY(get(url, crl_hdrs, &pck, &crl_chain));
	/* Intel PCS does not serve the root CA CRL; a PCCS does. */
	if (strstr(base, "://" PCS_HOST) != NULL)
		URL("%s", ROOT_CRL_URL);
	else
		URL("%s/sgx/certification/v4/rootcacrl", base);
	CL_TRY(get(url, NULL, &root, NULL));
#undef URL
	CL_TRY(put(intel_dir, key, "tcbinfo.json", tcb.data, tcb.len));
	CL_TRY(put(intel_dir, key, "tcbinfo-issuer-chain.pem", tcb_chain, strlen(tcb_chain)));
	CL_TRY(put(intel_dir, key, "qeidentity.json", qe.data, qe.len));
	CL_TRY(put(intel_dir, key, "qeidentity-issuer-chain.pem", qe_chain, strlen(qe_chain)));
	CL_TRY(put(intel_dir, key, "pckcrl.der", pck.data, pck.len));
	CL_TRY(put(intel_dir, key, "pckcrl-issuer-chain.pem", crl_chain, strlen(crl_chain)));
	CL_TRY(put(intel_dir, key, "rootcacrl.der", root.data, root.len));
out:
	free(tcb_chain);
	free(qe_chain);
	free(crl_chain);
	cl_buf_free(&tcb);
	cl_buf_free(&qe);
	cl_buf_free(&pck);
	cl_buf_free(&root);
	return rc;
}

int cl_intel_collateral_fetch_at(const char *pcs_url, const char *cache_dir, int is_tdx,
				 const uint8_t fmspc[6], const char *ca, int64_t at,
				 struct cl_intel_collateral **out)
{
	char fmspc_hex[13], key[64], dir[4096], base[1024];
	char *slash = NULL;
	const char *tee = is_tdx ? "tdx" : "sgx";
	struct cl_intel_collateral *c = NULL;
	size_t bl = 0;

	*out = NULL;
	CL_ENSURE_MSG(pcs_url && fmspc && ca, CL_ERR_ARG, "missing PCS URL, FMSPC or CA");
	CL_ENSURE_MSG(strcmp(ca, "platform") == 0 || strcmp(ca, "processor") == 0, CL_ERR_ARG,
		      "PCK CA must be \"platform\" or \"processor\"");
	bl = strlen(pcs_url);
	CL_ENSURE_MSG(bl > 0 && bl < sizeof(base), CL_ERR_ARG, "PCS URL too long");
	memcpy(base, pcs_url, bl + 1);
	while (bl > 0 && base[bl - 1] == '/')
		base[--bl] = '\0';
	for (int i = 0; i < 6; i++)
		snprintf(fmspc_hex + 2 * i, 3, "%02X", fmspc[i]);
	snprintf(key, sizeof(key), "%s-%s-%s", tee, fmspc_hex, ca);
	CL_GUARD(cl_cache_path(cache_dir, "intel", key, dir, sizeof(dir)));

	if (cl_intel_collateral_load_dir(dir, &c) == CL_OK &&
	    cl_intel_collateral_verify(c, at) == CL_OK) {
		cl_log_debug("Intel collateral %s from cache", key);
		*out = c;
		return CL_OK;
	}
	cl_intel_collateral_free(c);
	c = NULL;
	cl_error_clear();

	slash = strrchr(dir, '/');
	CL_ENSURE_MSG(slash != NULL, CL_ERR_INTERNAL, "bad cache path");
	*slash = '\0'; /* dir is now <cache>/intel */
	CL_GUARD(fetch_all(base, tee, fmspc_hex, ca, dir, key));
	*slash = '/';
	return cl_intel_collateral_load_dir(dir, out);
}

int cl_intel_collateral_fetch(const char *pcs_url, const char *cache_dir, int is_tdx,
			      const uint8_t fmspc[6], const char *ca,
			      struct cl_intel_collateral **out)
{
	return cl_intel_collateral_fetch_at(pcs_url, cache_dir, is_tdx, fmspc, ca, 0, out);
}
