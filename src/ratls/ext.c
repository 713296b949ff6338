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

/* Items a claims map can hold: the map, 16 keys and values, a bare [alg, hash]. */
#define CLAIMS_ITEMS (1 + 2 * CL_RATLS_MAX_CLAIM_ENTRIES + 3)
/* Items a CMW collection can hold: the map, records of three items, "__cmwc_t". */
#define CMW_ITEMS (1 + 2 * (CL_RATLS_MAX_CMW_RECORDS + 1) + 3 * CL_RATLS_MAX_CMW_RECORDS)

static int text_is(const cbor_item_t *it, const char *s)
{
	size_t n = strlen(s);

	return cbor_string_length(it) == n && memcmp(cbor_string_handle(it), s, n) == 0;
}

/*
 * [alg, bstr hash] with a known id and the digest size that id has; the
 * array's head is at base[off].
 */
static int hash_entry(const cbor_item_t *it, const uint8_t *base, size_t n, size_t off,
		      struct cl_ratls_evidence *out)
{
	const cbor_item_t *id = NULL, *h = NULL;

	CL_ENSURE_MSG(cbor_isa_array(it) && cbor_array_is_definite(it) && cbor_array_size(it) == 2,
		      CL_ERR_MALFORMED, "pubkey-hash is not a two-item array");
	id = cbor_array_handle(it)[0];
	h = cbor_array_handle(it)[1];
	CL_ENSURE_MSG(cbor_isa_uint(id), CL_ERR_MALFORMED,
		      "pubkey-hash algorithm is not an unsigned integer");
	CL_GUARD(cl_ratls_hash_from_id(cbor_get_int(id), &out->hash));
	CL_GUARD(cl_rcb_bstr(h, CL_MAX_DIGEST, "pubkey-hash", &out->pubkey_hash_len));
	CL_ENSURE_MSG(out->pubkey_hash_len == cl_hash_len(out->hash), CL_ERR_MALFORMED,
		      "pubkey-hash is %zu bytes for a %zu-byte hash", out->pubkey_hash_len,
		      cl_hash_len(out->hash));
	return cl_rcb_locate(base, n, off + 1 + cl_cbor_encoded_len(id), h, &out->pubkey_hash);
}

/* The bare array, or (Gramine, rats-tls) a byte string holding exactly one. */
static int pubkey_hash(const cbor_item_t *v, const uint8_t *base, size_t n, size_t off,
		       struct cl_ratls_evidence *out)
{
	cbor_item_t *in = NULL;
	const uint8_t *p = NULL;
	size_t len = 0;
	int rc = CL_OK;

	if (cbor_isa_array(v))
		return hash_entry(v, base, n, off, out);
	CL_GUARD(cl_rcb_bstr(v, 2 + 9 + CL_MAX_DIGEST, "pubkey-hash", &len));
	CL_GUARD(cl_rcb_locate(base, n, off, v, &p));
	CL_GUARD(cl_rcb_load(p, len, 3, "pubkey-hash", &in));
	rc = hash_entry(in, p, len, 0, out);
	cbor_decref(&in);
	return rc;
}

static int claims_walk(const cbor_item_t *m, const uint8_t *p, size_t n,
		       struct cl_ratls_evidence *out)
{
	const struct cbor_pair *pr = NULL;
	size_t count = 0, off = 0, vl = 0;
	int have_hash = 0;

	CL_ENSURE_MSG(cbor_isa_map(m) && cbor_map_is_definite(m), CL_ERR_MALFORMED,
		      "RA-TLS claims are not a map");
	count = cbor_map_size(m);
	CL_ENSURE_MSG(count >= 1 && count <= CL_RATLS_MAX_CLAIM_ENTRIES, CL_ERR_MALFORMED,
		      "RA-TLS claims have %zu entries (1..%d)", count, CL_RATLS_MAX_CLAIM_ENTRIES);
	pr = cbor_map_handle(m);
	off = cl_cbor_head_len(count);
	for (size_t i = 0; i < count; i++) {
		const cbor_item_t *k = pr[i].key, *v = pr[i].value;
		size_t kl = 0, voff = 0;

		CL_GUARD(cl_rcb_tstr(k, CL_RATLS_MAX_KEY, "RA-TLS claim key", &kl));
		for (size_t j = 0; j < i; j++)
			CL_ENSURE_MSG(cbor_string_length(pr[j].key) != kl ||
					      memcmp(cbor_string_handle(pr[j].key),
						     cbor_string_handle(k), kl) != 0,
				      CL_ERR_MALFORMED, "RA-TLS claims repeat a key");
		voff = off + cl_cbor_encoded_len(k);
		if (text_is(k, "pubkey-hash")) {
			CL_GUARD(pubkey_hash(v, p, n, voff, out));
			have_hash = 1;
		} else if (text_is(k, "nonce")) {
			CL_GUARD(cl_rcb_bstr(v, CL_RATLS_MAX_NONCE, "RA-TLS nonce", &vl));
			CL_ENSURE_MSG(vl > 0, CL_ERR_MALFORMED, "RA-TLS nonce is empty");
			CL_GUARD(cl_rcb_locate(p, n, voff, v, &out->nonce));
			out->nonce_len = vl;
		} else {
			/* Custom claims are covered by the hash; only their shape is checked. */
			CL_GUARD(cl_rcb_bstr(v, CL_RATLS_MAX_CLAIMS, "RA-TLS custom claim", &vl));
		}
		off = voff + cl_cbor_encoded_len(v);
	}
	CL_ENSURE_MSG(have_hash, CL_ERR_MALFORMED, "RA-TLS claims have no pubkey-hash");
	return CL_OK;
}

static int claims_parse(const uint8_t *p, size_t n, struct cl_ratls_evidence *out)
{
	cbor_item_t *m = NULL;
	int rc = CL_OK;

	CL_GUARD(cl_rcb_load(p, n, CLAIMS_ITEMS, "RA-TLS claims", &m));
	rc = claims_walk(m, p, n, out);
	cbor_decref(&m);
	return rc;
}

/* tag([bstr evidence, bstr claims]), the tag's head at p[0]. */
static int evidence_walk(const cbor_item_t *t, const uint8_t *p, size_t n,
			 struct cl_ratls_evidence *out)
{
	const cbor_item_t *a = NULL, *ev = NULL, *cl = NULL;
	size_t off = 0;

	CL_ENSURE_MSG(cbor_isa_tag(t), CL_ERR_MALFORMED, "RA-TLS evidence is not tagged");
	out->tag = cbor_tag_value(t);
	a = t->metadata.tag_metadata.tagged_item; /* borrowed: cbor_tag_item would take a ref */
	CL_ENSURE_MSG(cbor_isa_array(a) && cbor_array_is_definite(a) && cbor_array_size(a) == 2,
		      CL_ERR_MALFORMED, "RA-TLS evidence is not [evidence, claims]");
	ev = cbor_array_handle(a)[0];
	cl = cbor_array_handle(a)[1];
	CL_GUARD(cl_rcb_bstr(ev, CL_MAX_EVIDENCE, "RA-TLS evidence", &out->evidence_len));
	CL_ENSURE_MSG(out->evidence_len > 0, CL_ERR_MALFORMED, "RA-TLS evidence is empty");
	CL_GUARD(cl_rcb_bstr(cl, CL_RATLS_MAX_CLAIMS, "RA-TLS claims", &out->claims_len));
	off = cl_cbor_head_len(out->tag) + 1;
	CL_GUARD(cl_rcb_locate(p, n, off, ev, &out->evidence));
	off += cl_cbor_encoded_len(ev);
	return cl_rcb_locate(p, n, off, cl, &out->claims);
}

int cl_ratls_evidence_parse(const uint8_t *p, size_t n, struct cl_ratls_evidence *out)
{
	cbor_item_t *t = NULL;
	int rc = CL_OK;

	memset(out, 0, sizeof(*out));
	CL_ENSURE_MSG(n <= CL_RATLS_MAX_EXT, CL_ERR_MALFORMED, "RA-TLS evidence of %zu bytes", n);
	CL_GUARD(cl_rcb_load(p, n, 4, "RA-TLS evidence", &t));
	rc = evidence_walk(t, p, n, out);
	cbor_decref(&t);
	CL_GUARD(rc);
	return claims_parse(out->claims, out->claims_len, out);
}

int cl_ratls_claims_encode(enum cl_hash h, const uint8_t *pubkey_hash, const uint8_t *nonce,
			   size_t nonce_len, struct cl_buf *out)
{
	struct cl_buf entry = {0};
	cbor_item_t *arr = NULL, *m = NULL;
	uint64_t id = cl_ratls_hash_id(h);
	int rc = CL_OK;

	CL_CHECK(id != 0, CL_ERR_ARG, "unsupported pubkey-hash algorithm");
	CL_CHECK(nonce_len <= CL_RATLS_MAX_NONCE && (nonce != NULL) == (nonce_len > 0), CL_ERR_ARG,
		 "the nonce must be 1..%d bytes", CL_RATLS_MAX_NONCE);
	/* Byte-string wrapped, as Gramine and rats-tls write it. */
	arr = cbor_new_definite_array(2);
	CL_TRY(cl_rcb_push(arr, cl_rcb_uint(id)));
	CL_TRY(cl_rcb_push(arr, cbor_build_bytestring(pubkey_hash, cl_hash_len(h))));
	CL_TRY(cl_rcb_serialize(&arr, &entry));
	m = cbor_new_definite_map(nonce ? 2 : 1);
	CL_TRY(cl_rcb_put(m, cbor_build_stringn("pubkey-hash", 11),
			  cbor_build_bytestring(entry.data, entry.len)));
	if (nonce)
		CL_TRY(cl_rcb_put(m, cbor_build_stringn("nonce", 5),
				  cbor_build_bytestring(nonce, nonce_len)));
	CL_TRY(cl_rcb_serialize(&m, out));
out:
	if (arr)
		cbor_decref(&arr);
	if (m)
		cbor_decref(&m);
	cl_buf_free(&entry);
	return rc;
}

int cl_ratls_evidence_encode(uint64_t tag, const uint8_t *ev, size_t ev_len, const uint8_t *claims,
			     size_t claims_len, struct cl_buf *out)
{
	cbor_item_t *arr = cbor_new_definite_array(2), *t = NULL;
	int rc = CL_OK;

	CL_TRY(cl_rcb_push(arr, cbor_build_bytestring(ev, ev_len)));
	CL_TRY(cl_rcb_push(arr, cbor_build_bytestring(claims, claims_len)));
	t = cbor_new_tag(tag);
	CL_CHECK(t, CL_ERR_NOMEM, "out of memory");
	cbor_tag_set_item(t, arr);
	CL_TRY(cl_rcb_serialize(&t, out));
out:
	if (t)
		cbor_decref(&t);
	if (arr)
		cbor_decref(&arr);
	return rc;
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

static int cmw_label(const cbor_item_t *k, struct cl_ratls_cmw_record *rec, int *ctype)
{
	const uint8_t *s = NULL;
	size_t n = 0;

	*ctype = 0;
	if (cbor_isa_uint(k) || cbor_isa_negint(k)) {
		uint64_t v = cbor_get_int(k);

		snprintf(rec->label, sizeof(rec->label), "%s%llu", cbor_isa_negint(k) ? "-" : "",
			 (unsigned long long)(cbor_isa_negint(k) ? v + 1 : v));
		return CL_OK;
	}
	CL_GUARD(cl_rcb_tstr(k, CL_RATLS_MAX_KEY, "CMW label", &n));
	s = cbor_string_handle(k);
	for (size_t i = 0; i < n; i++)
		CL_ENSURE_MSG(s[i] >= 0x20 && s[i] < 0x7f, CL_ERR_MALFORMED,
			      "CMW label is not printable ASCII");
	if (n)
		memcpy(rec->label, s, n);
	rec->label[n] = 0;
	*ctype = strcmp(rec->label, "__cmwc_t") == 0;
	return CL_OK;
}

/* The collection type: a URI or an OID, which we do not interpret. */
static int cmw_ctype(const cbor_item_t *v)
{
	size_t n = 0;

	CL_ENSURE_MSG((cbor_isa_string(v) && cbor_string_is_definite(v)) ||
			      (cbor_isa_bytestring(v) && cbor_bytestring_is_definite(v)),
		      CL_ERR_MALFORMED, "CMW collection type is not a string");
	n = cbor_isa_string(v) ? cbor_string_length(v) : cbor_bytestring_length(v);
	CL_ENSURE_MSG(n <= 256, CL_ERR_MALFORMED, "CMW collection type too long");
	return CL_OK;
}

/* [type or content-format, bstr value, ?indicator], its head at base[off]. */
static int cmw_record(const cbor_item_t *a, const uint8_t *base, size_t n, size_t off,
		      struct cl_ratls_cmw_record *rec)
{
	const cbor_item_t *ty = NULL, *val = NULL, *ind = NULL;
	const uint8_t *s = NULL;
	size_t cnt = 0, len = 0;

	CL_ENSURE_MSG(cbor_isa_array(a), CL_ERR_UNSUPPORTED,
		      "CMW %s: only records are accepted (no nested collections or tags)",
		      rec->label);
	cnt = cbor_array_size(a);
	CL_ENSURE_MSG(cbor_array_is_definite(a) && (cnt == 2 || cnt == 3), CL_ERR_MALFORMED,
		      "CMW %s: a record has 2 or 3 items", rec->label);
	ty = cbor_array_handle(a)[0];
	val = cbor_array_handle(a)[1];
	if (cbor_isa_uint(ty)) {
		rec->cf = cbor_get_int(ty);
	} else {
		CL_GUARD(cl_rcb_tstr(ty, CL_RATLS_MAX_CMW_TYPE, "CMW type", &len));
		CL_ENSURE_MSG(len > 0, CL_ERR_MALFORMED, "CMW %s: empty type", rec->label);
		s = cbor_string_handle(ty);
		for (size_t i = 0; i < len; i++)
			CL_ENSURE_MSG(s[i] > 0x20 && s[i] < 0x7f, CL_ERR_MALFORMED,
				      "CMW %s: type is not a media type", rec->label);
		memcpy(rec->type, s, len);
		rec->type[len] = 0;
	}
	CL_GUARD(cl_rcb_bstr(val, CL_MAX_EVIDENCE, "CMW value", &rec->value_len));
	CL_GUARD(cl_rcb_locate(base, n, off + 1 + cl_cbor_encoded_len(ty), val, &rec->value));
	if (cnt == 3) {
		ind = cbor_array_handle(a)[2];
		CL_ENSURE_MSG(cbor_isa_uint(ind), CL_ERR_MALFORMED,
			      "CMW %s: indicator is not an unsigned integer", rec->label);
		rec->ind = cbor_get_int(ind);
		CL_ENSURE_MSG(rec->ind > 0 && rec->ind < 16, CL_ERR_MALFORMED,
			      "CMW %s: indicator %llu", rec->label, (unsigned long long)rec->ind);
	}
	return CL_OK;
}

static int cmw_walk(const cbor_item_t *m, const uint8_t *p, size_t n, struct cl_ratls_cmw *out)
{
	const struct cbor_pair *pr = NULL;
	size_t count = 0, off = 0;

	CL_ENSURE_MSG(cbor_isa_map(m) && cbor_map_is_definite(m), CL_ERR_MALFORMED,
		      "CMW collection is not a map");
	count = cbor_map_size(m);
	CL_ENSURE_MSG(count >= 1 && count <= CL_RATLS_MAX_CMW_RECORDS + 1, CL_ERR_MALFORMED,
		      "CMW collection has %zu entries", count);
	pr = cbor_map_handle(m);
	off = cl_cbor_head_len(count);
	for (size_t i = 0; i < count; i++) {
		struct cl_ratls_cmw_record rec;
		size_t voff = off + cl_cbor_encoded_len(pr[i].key);
		int ctype = 0;

		memset(&rec, 0, sizeof(rec));
		off = voff + cl_cbor_encoded_len(pr[i].value);
		CL_GUARD(cmw_label(pr[i].key, &rec, &ctype));
		if (ctype) {
			CL_GUARD(cmw_ctype(pr[i].value));
			continue;
		}
		for (size_t j = 0; j < out->n; j++)
			CL_ENSURE_MSG(strcmp(out->rec[j].label, rec.label) != 0, CL_ERR_MALFORMED,
				      "CMW collection repeats label %s", rec.label);
		CL_ENSURE_MSG(out->n < CL_RATLS_MAX_CMW_RECORDS, CL_ERR_MALFORMED,
			      "CMW collection has more than %d records", CL_RATLS_MAX_CMW_RECORDS);
		CL_GUARD(cmw_record(pr[i].value, p, n, voff, &rec));
		out->rec[out->n++] = rec;
	}
	CL_ENSURE_MSG(out->n > 0, CL_ERR_MALFORMED, "CMW collection has no records");
	return CL_OK;
}

int cl_ratls_cmw_parse(const uint8_t *p, size_t n, struct cl_ratls_cmw *out)
{
	const uint8_t *body = NULL;
	size_t len = 0;
	cbor_item_t *m = NULL;
	int rc = CL_OK;

	memset(out, 0, sizeof(*out));
	CL_ENSURE_MSG(n <= CL_RATLS_MAX_EXT, CL_ERR_MALFORMED, "CMW extension of %zu bytes", n);
	CL_GUARD(der_octets(p, n, &body, &len));
	CL_GUARD(cl_rcb_load(body, len, CMW_ITEMS, "CMW collection", &m));
	rc = cmw_walk(m, body, len, out);
	cbor_decref(&m);
	if (rc != CL_OK)
		memset(out, 0, sizeof(*out));
	return rc;
}

int cl_ratls_cmw_encode(const struct cl_ratls_cmw *c, struct cl_buf *out)
{
	struct cl_buf cb = {0};
	cbor_item_t *m = NULL;
	ASN1_OCTET_STRING *os = NULL;
	unsigned char *der = NULL;
	int dlen = 0, rc = CL_OK;

	CL_CHECK(c->n >= 1 && c->n <= CL_RATLS_MAX_CMW_RECORDS, CL_ERR_ARG, "1..%d CMW records",
		 CL_RATLS_MAX_CMW_RECORDS);
	m = cbor_new_definite_map(c->n);
	for (size_t i = 0; i < c->n; i++) {
		const struct cl_ratls_cmw_record *rec = &c->rec[i];
		cbor_item_t *a = cbor_new_definite_array(rec->ind ? 3 : 2);
		int r = CL_OK;

		if (rec->type[0])
			r = cl_rcb_push(a, cbor_build_stringn(rec->type, strlen(rec->type)));
		else
			r = cl_rcb_push(a, cl_rcb_uint(rec->cf));
		if (r == CL_OK)
			r = cl_rcb_push(a, cbor_build_bytestring(rec->value, rec->value_len));
		if (r == CL_OK && rec->ind)
			r = cl_rcb_push(a, cl_rcb_uint(rec->ind));
		if (r == CL_OK)
			r = cl_rcb_put(m, cbor_build_stringn(rec->label, strlen(rec->label)), a);
		else if (a)
			cbor_decref(&a);
		CL_TRY(r);
	}
	CL_TRY(cl_rcb_serialize(&m, &cb));
	os = ASN1_OCTET_STRING_new();
	CL_CHECK(os && cb.len <= INT32_MAX && ASN1_OCTET_STRING_set(os, cb.data, (int)cb.len) == 1,
		 CL_ERR_NOMEM, "out of memory");
	dlen = i2d_ASN1_OCTET_STRING(os, &der);
	CL_CHECK(dlen > 0, CL_ERR_CRYPTO, "cannot encode the CMW extension");
	CL_TRY(cl_buf_append(out, der, (size_t)dlen));
out:
	if (m)
		cbor_decref(&m);
	OPENSSL_free(der);
	ASN1_OCTET_STRING_free(os);
	cl_buf_free(&cb);
	return rc;
}
