/*
 * The SGX extensions of a PCK certificate (OID 1.2.840.113741.1.13.1): a
 * SEQUENCE OF { OID, value } pairs, the TCB entry itself a SEQUENCE OF such
 * pairs. Decoded with OpenSSL's DER parser (d2i_ASN1_SEQUENCE_ANY), each
 * level consumed exactly, every value's type and size checked.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "cloister/crypto.h"
#include "cloister/memo.h"
#include "intel.h"

#define SGX_EXT_OID	"1.2.840.113741.1.13.1"
#define SGX_MAX_ENTRIES 32

/* Decode DER that must be exactly one SEQUENCE of at most max elements. */
static int seq_any(const unsigned char *p, long n, int max, STACK_OF(ASN1_TYPE) * *out)
{
	const unsigned char *q = p;
	STACK_OF(ASN1_TYPE) *sk = d2i_ASN1_SEQUENCE_ANY(NULL, &q, n);

	ERR_clear_error();
	if (!sk || q != p + n || sk_ASN1_TYPE_num(sk) > max) {
		sk_ASN1_TYPE_pop_free(sk, ASN1_TYPE_free);
		return cl_fail(CL_ERR_MALFORMED, "PCK SGX extension: malformed sequence");
	}
	*out = sk;
	return CL_OK;
}

/* One { OID, value } pair: the OID's last arc below base, and the value. */
static int pair(ASN1_TYPE *t, const char *base, long *arc, ASN1_TYPE **val,
		STACK_OF(ASN1_TYPE) * *hold)
{
	char oid[80];
	size_t bl = strlen(base);
	char *end = NULL;
	int len = 0;

	CL_ENSURE_MSG(t->type == V_ASN1_SEQUENCE, CL_ERR_MALFORMED,
		      "PCK SGX extension: entry not a sequence");
	len = ASN1_STRING_length(t->value.sequence);
	CL_GUARD(seq_any(ASN1_STRING_get0_data(t->value.sequence), len, 2, hold));
	CL_ENSURE_MSG(sk_ASN1_TYPE_num(*hold) == 2 &&
			      sk_ASN1_TYPE_value(*hold, 0)->type == V_ASN1_OBJECT,
		      CL_ERR_MALFORMED, "PCK SGX extension: entry is not { OID, value }");
	len = OBJ_obj2txt(oid, sizeof(oid), sk_ASN1_TYPE_value(*hold, 0)->value.object, 1);
	CL_ENSURE_MSG(len > 0 && (size_t)len < sizeof(oid) && strncmp(oid, base, bl) == 0 &&
			      oid[bl] == '.' && oid[bl + 1] >= '1' && oid[bl + 1] <= '9',
		      CL_ERR_MALFORMED, "PCK SGX extension: unexpected OID");
	*arc = strtol(oid + bl + 1, &end, 10);
	CL_ENSURE_MSG(*end == '\0' && *arc > 0 && *arc < 64, CL_ERR_MALFORMED,
		      "PCK SGX extension: unexpected OID");
	*val = sk_ASN1_TYPE_value(*hold, 1);
	return CL_OK;
}

static int octets(const ASN1_TYPE *v, uint8_t *out, size_t n, const char *what)
{
	CL_ENSURE_MSG(v->type == V_ASN1_OCTET_STRING &&
			      (size_t)ASN1_STRING_length(v->value.octet_string) == n,
		      CL_ERR_MALFORMED, "PCK SGX extension: %s is not %zu octets", what, n);
	memcpy(out, ASN1_STRING_get0_data(v->value.octet_string), n);
	return CL_OK;
}

static int integer(const ASN1_TYPE *v, int64_t max, int64_t *out)
{
	CL_ENSURE_MSG(v->type == V_ASN1_INTEGER &&
			      ASN1_INTEGER_get_int64(out, v->value.integer) == 1 && *out >= 0 &&
			      *out <= max,
		      CL_ERR_MALFORMED, "PCK SGX extension: TCB value not an integer in range");
	return CL_OK;
}

static int parse_tcb(const ASN1_TYPE *v, struct cl_intel_pck_info *out)
{
	STACK_OF(ASN1_TYPE) *sk = NULL;
	uint32_t seen = 0;
	int rc = CL_OK;

	CL_ENSURE_MSG(v->type == V_ASN1_SEQUENCE, CL_ERR_MALFORMED,
		      "PCK SGX extension: TCB not a sequence");
	CL_GUARD(seq_any(ASN1_STRING_get0_data(v->value.sequence),
			 ASN1_STRING_length(v->value.sequence), SGX_MAX_ENTRIES, &sk));
	for (int i = 0; i < sk_ASN1_TYPE_num(sk); i++) {
		STACK_OF(ASN1_TYPE) *hold = NULL;
		ASN1_TYPE *val = NULL;
		long arc = 0;
		int64_t x = 0;

		rc = pair(sk_ASN1_TYPE_value(sk, i), SGX_EXT_OID ".2", &arc, &val, &hold);
		if (rc == CL_OK && arc <= 18 && (seen & (1u << arc)))
			rc = cl_fail(CL_ERR_MALFORMED, "PCK SGX extension: TCB entry %ld repeated",
				     arc);
		if (rc == CL_OK && arc >= 1 && arc <= 16) {
			rc = integer(val, 255, &x);
			out->cpusvn[arc - 1] = (uint8_t)x;
		} else if (rc == CL_OK && arc == 17) {
			rc = integer(val, 65535, &x);
			out->pcesvn = (uint16_t)x;
		} else if (rc == CL_OK && arc == 18) {
			uint8_t cpusvn[16];

			rc = octets(val, cpusvn, 16, "CPUSVN");
		}
		if (rc == CL_OK && arc <= 18)
			seen |= 1u << arc;
		sk_ASN1_TYPE_pop_free(hold, ASN1_TYPE_free);
		if (rc < 0)
			break;
	}
	sk_ASN1_TYPE_pop_free(sk, ASN1_TYPE_free);
	CL_GUARD(rc);
	CL_ENSURE_MSG((seen & 0x3fffeu) == 0x3fffeu, CL_ERR_MALFORMED,
		      "PCK SGX extension: TCB entries missing");
	return CL_OK;
}

static int pck_info_decode(const uint8_t *der, size_t len, struct cl_intel_pck_info *out)
{
	STACK_OF(ASN1_TYPE) *sk = NULL;
	uint32_t seen = 0;
	int rc = CL_OK;

	CL_GUARD(seq_any(der, (long)len, SGX_MAX_ENTRIES, &sk));
	for (int i = 0; i < sk_ASN1_TYPE_num(sk); i++) {
		STACK_OF(ASN1_TYPE) *hold = NULL;
		ASN1_TYPE *val = NULL;
		long arc = 0;

		rc = pair(sk_ASN1_TYPE_value(sk, i), SGX_EXT_OID, &arc, &val, &hold);
		if (rc == CL_OK && arc <= 7 && (seen & (1u << arc)))
			rc = cl_fail(CL_ERR_MALFORMED, "PCK SGX extension: entry %ld repeated",
				     arc);
		if (rc == CL_OK) {
			switch (arc) {
			case 1:
				rc = octets(val, out->ppid, 16, "PPID");
				break;
			case 2:
				rc = parse_tcb(val, out);
				break;
			case 3:
				rc = octets(val, out->pceid, 2, "PCE-ID");
				break;
			case 4:
				rc = octets(val, out->fmspc, 6, "FMSPC");
				break;
			case 5:
				if (val->type != V_ASN1_ENUMERATED)
					rc = cl_fail(CL_ERR_MALFORMED,
						     "PCK SGX extension: SGX type not enumerated");
				break;
			default: /* platform instance id, configuration: not used here */
				break;
			}
		}
		if (rc == CL_OK && arc <= 7)
			seen |= 1u << arc;
		sk_ASN1_TYPE_pop_free(hold, ASN1_TYPE_free);
		if (rc < 0)
			break;
	}
	sk_ASN1_TYPE_pop_free(sk, ASN1_TYPE_free);
	CL_GUARD(rc);
	CL_ENSURE_MSG((seen & 0x1eu) == 0x1eu, CL_ERR_MALFORMED,
		      "PCK SGX extension: PPID, TCB, PCE-ID or FMSPC missing");
	return CL_OK;
}

/*
 * Decoded extensions by SHA-256 of their bytes: decoding walks some thirty
 * DER items with OpenSSL's generic parser, more than the hash costs, and a
 * platform presents the same PCK certificate with every quote.
 */
static int info_ref(void *value, void *out)
{
	memcpy(out, value, sizeof(struct cl_intel_pck_info));
	return 1;
}

static struct cl_memo infos = CL_MEMO_INIT("pck info", 32, CL_MEMO_DECODED, info_ref, free);

int cl_intel_pck_info(X509 *pck, struct cl_intel_pck_info *out)
{
	const uint8_t *der = NULL;
	size_t len = 0;
	struct cl_memo_key k;
	struct cl_intel_pck_info *copy = NULL;
	int rc = CL_OK;

	memset(out, 0, sizeof(*out));
	CL_ENSURE_MSG(pck != NULL, CL_ERR_ARG, "no PCK certificate");
	rc = cl_x509_ext_by_oid(pck, SGX_EXT_OID, &der, &len);
	CL_ENSURE_MSG(rc == CL_OK, CL_ERR_COLLATERAL, "PCK certificate has no SGX extension");
	CL_ENSURE_MSG(len <= 4096, CL_ERR_MALFORMED, "PCK SGX extension too large");
	CL_GUARD(cl_memo_key(&k, "pck sgx extension", der, len));
	if (cl_memo_get(&infos, &k, 0, out))
		return CL_OK;
	rc = pck_info_decode(der, len, out);
	if (rc < 0) {
		memset(out, 0, sizeof(*out));
		return rc;
	}
	copy = malloc(sizeof(*copy));
	if (copy) {
		*copy = *out;
		cl_memo_put(&infos, &k, copy, CL_MEMO_ALWAYS_FROM, CL_MEMO_ALWAYS_UNTIL);
	}
	return CL_OK;
}
