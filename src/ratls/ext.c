/*
 * The two certificate extensions: the CCC interoperable RA-TLS structure and
 * the CMW collection. Bytes in, struct out, no I/O, so the fuzzer and the
 * tests call them directly.
 */
#include <stdio.h>
#include <string.h>

#include <openssl/x509.h>

#include "internal.h"

int cl_ratls_tag_of(enum cl_format f, uint64_t *tag)
{
	switch (f) {
	case CL_FORMAT_SGX:
	case CL_FORMAT_TDX:
		*tag = CL_RATLS_TAG_INTEL_QUOTE;
		return CL_OK;
	case CL_FORMAT_SNP:
		*tag = CL_RATLS_TAG_SNP;
		return CL_OK;
	case CL_FORMAT_DEVTEE:
		*tag = CL_RATLS_TAG_DEVTEE;
		return CL_OK;
	default:
		CL_BAIL(CL_ERR_UNSUPPORTED, "no RA-TLS evidence tag for %s evidence",
			cl_format_name(f));
	}
}

int cl_ratls_format_of(uint64_t tag, enum cl_format *f)
{
	switch (tag) {
	case CL_RATLS_TAG_INTEL_QUOTE:
		*f = CL_FORMAT_AUTO; /* SGX or TDX: the quote header says which */
		return CL_OK;
	case CL_RATLS_TAG_SNP:
		*f = CL_FORMAT_SNP;
		return CL_OK;
	case CL_RATLS_TAG_DEVTEE:
		*f = CL_FORMAT_DEVTEE;
		return CL_OK;
	default:
		CL_BAIL(CL_ERR_UNSUPPORTED, "RA-TLS evidence tag %llu is not supported",
			(unsigned long long)tag);
	}
}

const char *cl_ratls_cmw_type(enum cl_format f)
{
	switch (f) {
	case CL_FORMAT_SNP:
		return "application/vnd.cloister.sev-snp-report";
	case CL_FORMAT_SGX:
	case CL_FORMAT_TDX:
		return "application/vnd.cloister.dcap-quote";
	case CL_FORMAT_DEVTEE:
		return "application/vnd.cloister.devtee-report";
	default:
		return NULL;
	}
}

/* [alg, bstr hash] with a known id and the digest size that id has. */
static int hash_entry(struct cl_reader *r, struct cl_ratls_evidence *out)
{
	uint64_t n = 0, id = 0;

	CL_GUARD(cl_cb_expect(r, CB_ARRAY, &n));
	CL_ENSURE_MSG(n == 2, CL_ERR_MALFORMED, "pubkey-hash is not a two-item array");
	CL_GUARD(cl_cb_expect(r, CB_UINT, &id));
	CL_GUARD(cl_ratls_hash_from_id(id, &out->hash));
	CL_GUARD(cl_cb_string(r, CB_BSTR, CL_MAX_DIGEST, &out->pubkey_hash, &out->pubkey_hash_len));
	CL_ENSURE_MSG(out->pubkey_hash_len == cl_hash_len(out->hash), CL_ERR_MALFORMED,
		      "pubkey-hash is %zu bytes for a %zu-byte hash", out->pubkey_hash_len,
		      cl_hash_len(out->hash));
	return CL_OK;
}

static int pubkey_hash(struct cl_reader *r, struct cl_ratls_evidence *out)
{
	struct cl_reader t = *r, in;
	const uint8_t *p = NULL;
	size_t n = 0;
	uint8_t major = 0;
	uint64_t arg = 0;

	CL_GUARD(cl_cb_head(&t, &major, &arg));
	if (major == CB_ARRAY)
		return hash_entry(r, out);
	CL_GUARD(cl_cb_string(r, CB_BSTR, 2 + 9 + CL_MAX_DIGEST, &p, &n));
	in = cl_reader_make(p, n);
	CL_GUARD(hash_entry(&in, out));
	CL_ENSURE_MSG(in.left == 0, CL_ERR_MALFORMED, "bytes after the pubkey-hash entry");
	return CL_OK;
}

static int claims_parse(const uint8_t *p, size_t n, struct cl_ratls_evidence *out)
{
	struct cl_reader r = cl_reader_make(p, n);
	const uint8_t *keys[CL_RATLS_MAX_CLAIM_ENTRIES];
	size_t klens[CL_RATLS_MAX_CLAIM_ENTRIES];
	uint64_t count = 0;
	int have_hash = 0;

	CL_GUARD(cl_cb_expect(&r, CB_MAP, &count));
	CL_ENSURE_MSG(count >= 1 && count <= CL_RATLS_MAX_CLAIM_ENTRIES, CL_ERR_MALFORMED,
		      "RA-TLS claims have %llu entries (1..%d)", (unsigned long long)count,
		      CL_RATLS_MAX_CLAIM_ENTRIES);
	for (size_t i = 0; i < count; i++) {
		const uint8_t *k = NULL, *v = NULL;
		size_t kl = 0, vl = 0;

		CL_GUARD(cl_cb_string(&r, CB_TSTR, CL_RATLS_MAX_KEY, &k, &kl));
		for (size_t j = 0; j < i; j++)
			CL_ENSURE_MSG(klens[j] != kl || memcmp(keys[j], k, kl) != 0, CL_ERR_MALFORMED,
				      "RA-TLS claims repeat a key");
		keys[i] = k;
		klens[i] = kl;
		if (kl == 11 && memcmp(k, "pubkey-hash", 11) == 0) {
			CL_GUARD(pubkey_hash(&r, out));
			have_hash = 1;
		} else if (kl == 5 && memcmp(k, "nonce", 5) == 0) {
			CL_GUARD(cl_cb_string(&r, CB_BSTR, CL_RATLS_MAX_NONCE, &v, &vl));
			CL_ENSURE_MSG(vl > 0, CL_ERR_MALFORMED, "RA-TLS nonce is empty");
			out->nonce = v;
			out->nonce_len = vl;
		} else {
			/* Custom claims are covered by the hash; only their shape is checked. */
			CL_GUARD(cl_cb_string(&r, CB_BSTR, CL_RATLS_MAX_CLAIMS, &v, &vl));
		}
	}
	CL_ENSURE_MSG(r.left == 0, CL_ERR_MALFORMED, "bytes after the RA-TLS claims map");
	CL_ENSURE_MSG(have_hash, CL_ERR_MALFORMED, "RA-TLS claims have no pubkey-hash");
	return CL_OK;
}

int cl_ratls_evidence_parse(const uint8_t *p, size_t n, struct cl_ratls_evidence *out)
{
	struct cl_reader r = cl_reader_make(p, n);
	uint64_t count = 0;

	memset(out, 0, sizeof(*out));
	CL_ENSURE_MSG(n <= CL_RATLS_MAX_EXT, CL_ERR_MALFORMED, "RA-TLS evidence of %zu bytes", n);
	CL_GUARD(cl_cb_expect(&r, CB_TAG, &out->tag));
	CL_GUARD(cl_cb_expect(&r, CB_ARRAY, &count));
	CL_ENSURE_MSG(count == 2, CL_ERR_MALFORMED, "RA-TLS evidence is not [evidence, claims]");
	CL_GUARD(cl_cb_string(&r, CB_BSTR, CL_MAX_EVIDENCE, &out->evidence, &out->evidence_len));
	CL_ENSURE_MSG(out->evidence_len > 0, CL_ERR_MALFORMED, "RA-TLS evidence is empty");
	CL_GUARD(cl_cb_string(&r, CB_BSTR, CL_RATLS_MAX_CLAIMS, &out->claims, &out->claims_len));
	CL_ENSURE_MSG(r.left == 0, CL_ERR_MALFORMED, "bytes after the RA-TLS evidence");
	return claims_parse(out->claims, out->claims_len, out);
}

int cl_ratls_claims_encode(enum cl_hash h, const uint8_t *pubkey_hash, const uint8_t *nonce,
			   size_t nonce_len, struct cl_buf *out)
{
	struct cl_buf entry = { 0 };
	uint64_t id = cl_ratls_hash_id(h);
	int rc = CL_OK;

	CL_CHECK(id != 0, CL_ERR_ARG, "unsupported pubkey-hash algorithm");
	CL_CHECK(nonce_len <= CL_RATLS_MAX_NONCE && (nonce != NULL) == (nonce_len > 0), CL_ERR_ARG,
		 "the nonce must be 1..%d bytes", CL_RATLS_MAX_NONCE);
	CL_TRY(cl_cb_put_head(&entry, CB_ARRAY, 2));
	CL_TRY(cl_cb_put_head(&entry, CB_UINT, id));
	CL_TRY(cl_cb_put_string(&entry, CB_BSTR, pubkey_hash, cl_hash_len(h)));
	CL_TRY(cl_cb_put_head(out, CB_MAP, nonce ? 2 : 1));
	CL_TRY(cl_cb_put_string(out, CB_TSTR, "pubkey-hash", 11));
	CL_TRY(cl_cb_put_string(out, CB_BSTR, entry.data, entry.len));
	if (nonce) {
		CL_TRY(cl_cb_put_string(out, CB_TSTR, "nonce", 5));
		CL_TRY(cl_cb_put_string(out, CB_BSTR, nonce, nonce_len));
	}
out:
	cl_buf_free(&entry);
	return rc;
}

int cl_ratls_evidence_encode(uint64_t tag, const uint8_t *ev, size_t ev_len, const uint8_t *claims,
			     size_t claims_len, struct cl_buf *out)
{
	CL_GUARD(cl_cb_put_head(out, CB_TAG, tag));
	CL_GUARD(cl_cb_put_head(out, CB_ARRAY, 2));
	CL_GUARD(cl_cb_put_string(out, CB_BSTR, ev, ev_len));
	return cl_cb_put_string(out, CB_BSTR, claims, claims_len);
}

int cl_ratls_report_data(enum cl_hash h, const uint8_t *claims, size_t len,
			 uint8_t out[CL_REPORT_DATA_LEN])
{
	memset(out, 0, CL_REPORT_DATA_LEN);
	return cl_digest(h, claims, len, out);
}

int cl_ratls_spki_hash(EVP_PKEY *key, enum cl_hash h, uint8_t *out, size_t *len)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(key, &der);
	int rc = CL_OK;

	CL_CHECK(n > 0, CL_ERR_CRYPTO, "cannot encode the public key");
	CL_TRY(cl_digest(h, der, (size_t)n, out));
	*len = cl_hash_len(h);
out:
	OPENSSL_free(der);
	return rc;
}

/* ------------------------------------------------------------------ CMW */

/* DER OCTET STRING header + contents filling the input exactly. */
static int der_octets(const uint8_t *p, size_t n, const uint8_t **body, size_t *len)
{
	struct cl_reader r = cl_reader_make(p, n);
	uint8_t tag = 0, l0 = 0, b = 0;
	size_t l = 0;

	CL_ENSURE_MSG(cl_read_u8(&r, &tag) == CL_OK && cl_read_u8(&r, &l0) == CL_OK,
		      CL_ERR_TRUNCATED, "CMW extension truncated");
	CL_ENSURE_MSG(tag == 0x04, tag == 0x0c ? CL_ERR_UNSUPPORTED : CL_ERR_MALFORMED,
		      tag == 0x0c ? "JSON CMW in a certificate is not supported"
				  : "CMW extension is not an OCTET STRING");
	if (l0 < 0x80) {
		l = l0;
	} else {
		size_t k = l0 & 0x7f;

		CL_ENSURE_MSG(k >= 1 && k <= 3, CL_ERR_MALFORMED, "CMW extension length form");
		for (size_t i = 0; i < k; i++) {
			CL_ENSURE_MSG(cl_read_u8(&r, &b) == CL_OK, CL_ERR_TRUNCATED,
				      "CMW extension truncated");
			CL_ENSURE_MSG(i > 0 || b != 0, CL_ERR_MALFORMED, "CMW length not minimal");
			l = (l << 8) | b;
		}
		CL_ENSURE_MSG(l >= 0x80, CL_ERR_MALFORMED, "CMW length not minimal");
	}
	CL_ENSURE_MSG(l == r.left, l > r.left ? CL_ERR_TRUNCATED : CL_ERR_MALFORMED,
		      "CMW extension length %zu, %zu bytes follow", l, r.left);
	*body = r.p;
	*len = l;
	return CL_OK;
}

static int cmw_label(struct cl_reader *r, struct cl_ratls_cmw_record *rec, int *skip)
{
	struct cl_reader t = *r;
	uint8_t major = 0;
	uint64_t arg = 0;
	const uint8_t *s = NULL;
	size_t n = 0;

	*skip = 0;
	CL_GUARD(cl_cb_head(&t, &major, &arg));
	if (major == CB_UINT || major == CB_NINT) {
		*r = t;
		snprintf(rec->label, sizeof(rec->label), "%s%llu", major == CB_NINT ? "-" : "",
			 (unsigned long long)(major == CB_NINT ? arg + 1 : arg));
		return CL_OK;
	}
	CL_GUARD(cl_cb_string(r, CB_TSTR, CL_RATLS_MAX_KEY, &s, &n));
	for (size_t i = 0; i < n; i++)
		CL_ENSURE_MSG(s[i] >= 0x20 && s[i] < 0x7f, CL_ERR_MALFORMED,
			      "CMW label is not printable ASCII");
	memcpy(rec->label, s, n);
	rec->label[n] = 0;
	if (strcmp(rec->label, "__cmwc_t") == 0) {
		/* The collection type: a URI or an OID, which we do not interpret. */
		CL_GUARD(cl_cb_head(r, &major, &arg));
		CL_ENSURE_MSG(major == CB_TSTR || major == CB_BSTR, CL_ERR_MALFORMED,
			      "CMW collection type is not a string");
		CL_ENSURE_MSG(arg <= r->left && arg <= 256, CL_ERR_MALFORMED,
			      "CMW collection type too long");
		CL_GUARD(cl_read_skip(r, (size_t)arg));
		*skip = 1;
	}
	return CL_OK;
}

static int cmw_record(struct cl_reader *r, struct cl_ratls_cmw_record *rec)
{
	struct cl_reader t;
	uint8_t major = 0;
	uint64_t n = 0, arg = 0;
	const uint8_t *s = NULL;
	size_t len = 0;

	t = *r;
	CL_GUARD(cl_cb_head(&t, &major, &arg));
	CL_ENSURE_MSG(major == CB_ARRAY, CL_ERR_UNSUPPORTED,
		      "CMW %s: only records are accepted (no nested collections or tags)",
		      rec->label);
	CL_GUARD(cl_cb_expect(r, CB_ARRAY, &n));
	CL_ENSURE_MSG(n == 2 || n == 3, CL_ERR_MALFORMED, "CMW %s: a record has 2 or 3 items",
		      rec->label);
	t = *r;
	CL_GUARD(cl_cb_head(&t, &major, &arg));
	if (major == CB_UINT) {
		*r = t;
		rec->cf = arg;
	} else {
		CL_GUARD(cl_cb_string(r, CB_TSTR, CL_RATLS_MAX_CMW_TYPE, &s, &len));
		CL_ENSURE_MSG(len > 0, CL_ERR_MALFORMED, "CMW %s: empty type", rec->label);
		for (size_t i = 0; i < len; i++)
			CL_ENSURE_MSG(s[i] > 0x20 && s[i] < 0x7f, CL_ERR_MALFORMED,
				      "CMW %s: type is not a media type", rec->label);
		memcpy(rec->type, s, len);
		rec->type[len] = 0;
	}
	CL_GUARD(cl_cb_string(r, CB_BSTR, CL_MAX_EVIDENCE, &rec->value, &rec->value_len));
	if (n == 3) {
		CL_GUARD(cl_cb_expect(r, CB_UINT, &rec->ind));
		CL_ENSURE_MSG(rec->ind > 0 && rec->ind < 16, CL_ERR_MALFORMED,
			      "CMW %s: indicator %llu", rec->label, (unsigned long long)rec->ind);
	}
	return CL_OK;
}

int cl_ratls_cmw_parse(const uint8_t *p, size_t n, struct cl_ratls_cmw *out)
{
	const uint8_t *body = NULL;
	size_t len = 0;
	struct cl_reader r;
	uint64_t count = 0;

	memset(out, 0, sizeof(*out));
	CL_ENSURE_MSG(n <= CL_RATLS_MAX_EXT, CL_ERR_MALFORMED, "CMW extension of %zu bytes", n);
	CL_GUARD(der_octets(p, n, &body, &len));
	r = cl_reader_make(body, len);
	CL_GUARD(cl_cb_expect(&r, CB_MAP, &count));
	CL_ENSURE_MSG(count >= 1 && count <= CL_RATLS_MAX_CMW_RECORDS + 1, CL_ERR_MALFORMED,
		      "CMW collection has %llu entries", (unsigned long long)count);
	for (size_t i = 0; i < count; i++) {
		struct cl_ratls_cmw_record rec;
		int skip = 0;

		memset(&rec, 0, sizeof(rec));
		CL_GUARD(cmw_label(&r, &rec, &skip));
		if (skip)
			continue;
		for (size_t j = 0; j < out->n; j++)
			CL_ENSURE_MSG(strcmp(out->rec[j].label, rec.label) != 0, CL_ERR_MALFORMED,
				      "CMW collection repeats label %s", rec.label);
		CL_ENSURE_MSG(out->n < CL_RATLS_MAX_CMW_RECORDS, CL_ERR_MALFORMED,
			      "CMW collection has more than %d records", CL_RATLS_MAX_CMW_RECORDS);
		CL_GUARD(cmw_record(&r, &rec));
		out->rec[out->n++] = rec;
	}
	CL_ENSURE_MSG(out->n > 0, CL_ERR_MALFORMED, "CMW collection has no records");
	CL_ENSURE_MSG(r.left == 0, CL_ERR_MALFORMED, "bytes after the CMW collection");
	return CL_OK;
}

int cl_ratls_cmw_encode(const struct cl_ratls_cmw *c, struct cl_buf *out)
{
	struct cl_buf cb = { 0 };
	ASN1_OCTET_STRING *os = NULL;
	unsigned char *der = NULL;
	int dlen = 0, rc = CL_OK;

	CL_CHECK(c->n >= 1 && c->n <= CL_RATLS_MAX_CMW_RECORDS, CL_ERR_ARG, "1..%d CMW records",
		 CL_RATLS_MAX_CMW_RECORDS);
	CL_TRY(cl_cb_put_head(&cb, CB_MAP, c->n));
	for (size_t i = 0; i < c->n; i++) {
		const struct cl_ratls_cmw_record *rec = &c->rec[i];

		CL_TRY(cl_cb_put_string(&cb, CB_TSTR, rec->label, strlen(rec->label)));
		CL_TRY(cl_cb_put_head(&cb, CB_ARRAY, rec->ind ? 3 : 2));
		if (rec->type[0])
			CL_TRY(cl_cb_put_string(&cb, CB_TSTR, rec->type, strlen(rec->type)));
		else
			CL_TRY(cl_cb_put_head(&cb, CB_UINT, rec->cf));
		CL_TRY(cl_cb_put_string(&cb, CB_BSTR, rec->value, rec->value_len));
		if (rec->ind)
			CL_TRY(cl_cb_put_head(&cb, CB_UINT, rec->ind));
	}
	os = ASN1_OCTET_STRING_new();
	CL_CHECK(os && cb.len <= INT32_MAX && ASN1_OCTET_STRING_set(os, cb.data, (int)cb.len) == 1,
		 CL_ERR_NOMEM, "out of memory");
	dlen = i2d_ASN1_OCTET_STRING(os, &der);
	CL_CHECK(dlen > 0, CL_ERR_CRYPTO, "cannot encode the CMW extension");
	CL_TRY(cl_buf_append(out, der, (size_t)dlen));
out:
	OPENSSL_free(der);
	ASN1_OCTET_STRING_free(os);
	cl_buf_free(&cb);
	return rc;
}
