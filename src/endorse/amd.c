#include <stdio.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "cloister/amd.h"
#include "cloister/crypto.h"

#define OID_STRUCT_VERSION "1.3.6.1.4.1.3704.1.1"
#define OID_PRODUCT_NAME   "1.3.6.1.4.1.3704.1.2"
#define OID_BL_SPL	   "1.3.6.1.4.1.3704.1.3.1"
#define OID_TEE_SPL	   "1.3.6.1.4.1.3704.1.3.2"
#define OID_SNP_SPL	   "1.3.6.1.4.1.3704.1.3.3"
#define OID_UCODE_SPL	   "1.3.6.1.4.1.3704.1.3.8"
#define OID_FMC_SPL	   "1.3.6.1.4.1.3704.1.3.9"
#define OID_HWID	   "1.3.6.1.4.1.3704.1.4"
#define OID_CSP_ID	   "1.3.6.1.4.1.3704.1.5"

void cl_amd_tcb_decode(enum cl_amd_product p, uint64_t raw, struct cl_amd_tcb *out)
{
	uint8_t b[8];

	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(raw >> (8 * i));
	memset(out, 0, sizeof(*out));
	switch (p) {
	case CL_AMD_TURIN:
		out->fmc = b[0];
		out->bootloader = b[1];
		out->tee = b[2];
		out->snp = b[3];
		out->microcode = b[7];
		break;
	case CL_AMD_MILAN:
	case CL_AMD_GENOA:
	default:
		out->bootloader = b[0];
		out->tee = b[1];
		out->snp = b[6];
		out->microcode = b[7];
		break;
	}
}

int cl_amd_product_from_cpuid(uint8_t family, uint8_t model, enum cl_amd_product *out)
{
	if (family == 0x19 && model <= 0x0f)
		*out = CL_AMD_MILAN;
	/* Bergamo and Siena (0xA0-0xAF) are Genoa parts as far as KDS is concerned. */
	else if (family == 0x19 &&
		 ((model >= 0x10 && model <= 0x1f) || (model >= 0xa0 && model <= 0xaf)))
		*out = CL_AMD_GENOA;
	else if (family == 0x1a && model <= 0x1f)
		*out = CL_AMD_TURIN;
	else
		return cl_fail(CL_ERR_UNSUPPORTED, "unsupported AMD CPU family 0x%02x model 0x%02x",
			       family, model);
	return CL_OK;
}

int cl_amd_product_from_name(const char *name, enum cl_amd_product *out)
{
	for (int p = 0; p < CL_AMD_PRODUCT_COUNT; p++) {
		const char *pn = cl_amd_product_name((enum cl_amd_product)p);
		size_t n = strlen(pn);

		/* "Milan", or "Milan-B0" with a stepping suffix. */
		if (strncmp(name, pn, n) == 0 && (name[n] == '\0' || name[n] == '-')) {
			*out = (enum cl_amd_product)p;
			return CL_OK;
		}
	}
	return cl_fail(CL_ERR_UNSUPPORTED, "unknown AMD product name '%s'", name);
}

/* The extension's value, or NULL; duplicates of one OID are malformed. */
static int ext_value(X509 *cert, const char *oid, const uint8_t **val, size_t *len)
{
	ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
	int idx = -1, dup = -1;
	ASN1_OCTET_STRING *os = NULL;

	*val = NULL;
	*len = 0;
	if (!obj)
		return cl_fail(CL_ERR_CRYPTO, "bad OID %s", oid);
	idx = X509_get_ext_by_OBJ(cert, obj, -1);
	if (idx >= 0)
		dup = X509_get_ext_by_OBJ(cert, obj, idx);
	ASN1_OBJECT_free(obj);
	if (idx < 0)
		return CL_OK;
	if (dup >= 0)
		return cl_fail(CL_ERR_MALFORMED, "certificate repeats extension %s", oid);
	os = X509_EXTENSION_get_data(X509_get_ext(cert, idx));
	if (!os)
		return cl_fail(CL_ERR_MALFORMED, "extension %s has no value", oid);
	*val = ASN1_STRING_get0_data(os);
	*len = (size_t)ASN1_STRING_length(os);
	return CL_OK;
}

/* An SPL: a DER INTEGER 0..255 filling the whole value. */
static int ext_u8(X509 *cert, const char *oid, int *present, uint8_t *out)
{
	const uint8_t *v = NULL, *p = NULL;
	size_t n = 0;
	ASN1_INTEGER *ai = NULL;
	uint64_t u = 0;
	int ok = 0;

	*present = 0;
	CL_GUARD(ext_value(cert, oid, &v, &n));
	if (!v)
		return CL_OK;
	p = v;
	if (n <= 16)
		ai = d2i_ASN1_INTEGER(NULL, &p, (long)n);
	ok = ai && p == v + n && ASN1_INTEGER_get_uint64(&u, ai) == 1 && u <= 255;
	ASN1_INTEGER_free(ai);
	ERR_clear_error();
	if (!ok)
		return cl_fail(CL_ERR_MALFORMED, "extension %s is not an integer 0..255", oid);
	*out = (uint8_t)u;
	*present = 1;
	return CL_OK;
}

/* An IA5String filling the whole value, copied NUL-terminated into out. */
static int ext_ia5(X509 *cert, const char *oid, int *present, char *out, size_t cap)
{
	const uint8_t *v = NULL, *p = NULL;
	size_t n = 0, sl = 0;
	ASN1_IA5STRING *s = NULL;
	const uint8_t *sd = NULL;
	int rc = CL_OK;

	*present = 0;
	CL_GUARD(ext_value(cert, oid, &v, &n));
	if (!v)
		return CL_OK;
	p = v;
	if (n > 0 && v[0] == V_ASN1_IA5STRING && n <= cap + 8)
		s = d2i_ASN1_IA5STRING(NULL, &p, (long)n);
	ERR_clear_error();
	CL_CHECK(s && p == v + n, CL_ERR_MALFORMED, "extension %s is not an IA5String", oid);
	sd = ASN1_STRING_get0_data(s);
	sl = (size_t)ASN1_STRING_length(s);
	CL_CHECK(sl < cap, CL_ERR_MALFORMED, "extension %s is too long", oid);
	for (size_t i = 0; i < sl; i++)
		CL_CHECK(sd[i] >= 0x20 && sd[i] < 0x7f, CL_ERR_MALFORMED,
			 "extension %s has non-printable characters", oid);
	memcpy(out, sd, sl);
	out[sl] = '\0';
	*present = 1;
out:
	ASN1_IA5STRING_free(s);
	return rc;
}

/* KDS writes the hwID as raw bytes; some certificates wrap it in an OCTET STRING. */
static int ext_hwid(X509 *cert, struct cl_amd_cert_ext *out)
{
	const uint8_t *v = NULL, *p = NULL;
	size_t n = 0;
	ASN1_OCTET_STRING *os = NULL;
	int rc = CL_OK;

	CL_GUARD(ext_value(cert, OID_HWID, &v, &n));
	if (!v)
		return CL_OK;
	if (n == CL_AMD_CHIP_ID_LEN || n == CL_AMD_TURIN_HWID_LEN) {
		memcpy(out->hwid, v, n);
		out->hwid_len = n;
		out->has_hwid = 1;
		return CL_OK;
	}
	p = v;
	if (n > 2 && v[0] == V_ASN1_OCTET_STRING && n <= CL_AMD_CHIP_ID_LEN + 4)
		os = d2i_ASN1_OCTET_STRING(NULL, &p, (long)n);
	ERR_clear_error();
	CL_CHECK(os && p == v + n &&
			 (ASN1_STRING_length(os) == CL_AMD_CHIP_ID_LEN ||
			  ASN1_STRING_length(os) == CL_AMD_TURIN_HWID_LEN),
		 CL_ERR_MALFORMED, "VCEK hwID extension is neither 64 nor 8 bytes");
	out->hwid_len = (size_t)ASN1_STRING_length(os);
	memcpy(out->hwid, ASN1_STRING_get0_data(os), out->hwid_len);
	out->has_hwid = 1;
out:
	ASN1_OCTET_STRING_free(os);
	return rc;
}

int cl_amd_cert_ext_parse(X509 *cert, struct cl_amd_cert_ext *out)
{
	int bl = 0, tee = 0, snp = 0, ucode = 0;

	memset(out, 0, sizeof(*out));
	CL_ENSURE(cert != NULL, CL_ERR_ARG);
	CL_GUARD(ext_u8(cert, OID_STRUCT_VERSION, &out->has_struct_version, &out->struct_version));
	CL_GUARD(ext_ia5(cert, OID_PRODUCT_NAME, &out->has_product, out->product,
			 sizeof(out->product)));
	CL_GUARD(ext_u8(cert, OID_BL_SPL, &bl, &out->tcb.bootloader));
	CL_GUARD(ext_u8(cert, OID_TEE_SPL, &tee, &out->tcb.tee));
	CL_GUARD(ext_u8(cert, OID_SNP_SPL, &snp, &out->tcb.snp));
	CL_GUARD(ext_u8(cert, OID_UCODE_SPL, &ucode, &out->tcb.microcode));
	CL_GUARD(ext_u8(cert, OID_FMC_SPL, &out->has_fmc, &out->tcb.fmc));
	out->has_tcb = bl && tee && snp && ucode;
	CL_GUARD(ext_hwid(cert, out));
	CL_GUARD(ext_ia5(cert, OID_CSP_ID, &out->has_csp_id, out->csp_id, sizeof(out->csp_id)));
	return CL_OK;
}

size_t cl_amd_hwid_len(enum cl_amd_product p)
{
	return p == CL_AMD_TURIN ? CL_AMD_TURIN_HWID_LEN : CL_AMD_CHIP_ID_LEN;
}

int cl_amd_kds_vcek_url(const char *base, enum cl_amd_product p,
			const uint8_t chip_id[CL_AMD_CHIP_ID_LEN], const struct cl_amd_tcb *tcb,
			char *out, size_t outlen)
{
	char hwid[2 * CL_AMD_CHIP_ID_LEN + 1], fmc[24] = "";
	size_t bl = 0;
	int n = 0;

	CL_ENSURE((unsigned)p < CL_AMD_PRODUCT_COUNT, CL_ERR_ARG);
	if (!base || !*base)
		base = CL_AMD_KDS_DEFAULT;
	bl = strlen(base);
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	cl_hex_encode(chip_id, cl_amd_hwid_len(p), hwid);
	if (p == CL_AMD_TURIN)
		snprintf(fmc, sizeof(fmc), "fmcSPL=%u&", tcb->fmc);
	n = snprintf(out, outlen, "%.*s/vcek/v1/%s/%s?%sblSPL=%u&teeSPL=%u&snpSPL=%u&ucodeSPL=%u",
		     (int)bl, base, cl_amd_product_name(p), hwid, fmc, tcb->bootloader, tcb->tee,
		     tcb->snp, tcb->microcode);
	if (n < 0 || (size_t)n >= outlen)
		return cl_fail(CL_ERR_ARG, "KDS URL too long");
	return CL_OK;
}

int cl_amd_vcek_cache_name(enum cl_amd_product p, const uint8_t chip_id[CL_AMD_CHIP_ID_LEN],
			   uint64_t tcb, char *out, size_t outlen)
{
	char hwid[2 * CL_AMD_CHIP_ID_LEN + 1];
	int n = 0;

	CL_ENSURE((unsigned)p < CL_AMD_PRODUCT_COUNT, CL_ERR_ARG);
	cl_hex_encode(chip_id, cl_amd_hwid_len(p), hwid);
	n = snprintf(out, outlen, "vcek-%s-%s-%016llx.der", cl_amd_product_name(p), hwid,
		     (unsigned long long)tcb);
	if (n < 0 || (size_t)n >= outlen)
		return cl_fail(CL_ERR_ARG, "cache name too long");
	return CL_OK;
}

int cl_amd_kds_fetch_vcek(const char *base, enum cl_amd_product p,
			  const uint8_t chip_id[CL_AMD_CHIP_ID_LEN], uint64_t tcb,
			  struct cl_buf *out)
{
	char url[1024];
	struct cl_amd_tcb t;
	int rc = CL_OK;

	cl_amd_tcb_decode(p, tcb, &t);
	CL_GUARD(cl_amd_kds_vcek_url(base, p, chip_id, &t, url, sizeof(url)));
	cl_log_info("fetching VCEK from %s", url);
	rc = cl_http_get(url, CL_MAX_CERT_DER, out, NULL);
	if (rc == CL_ERR_NOT_FOUND)
		return cl_fail(CL_ERR_NOT_FOUND,
			       "AMD KDS has no VCEK for this chip and TCB (HTTP 404 for %s)", url);
	return rc;
}
