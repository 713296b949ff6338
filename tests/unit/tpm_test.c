/*
 * TPM 2.0 quotes: the real GCP Shielded VM (go-attestation) and trustee
 * evidence verified with their AKs pinned, and copies of them with one byte
 * flipped in the quote, the signature, the AK or the event log, or with a
 * wrong nonce or PCR value.
 */
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <tss2/tss2_mu.h>

#include "cloister/evidence.h"
#include "cloister/tpm.h"
#include "test.h"

#define GCP	"tpm/go-attestation/windows_gcp_shielded_vm.json"
#define TRUSTEE "tpm/trustee/tpm_evidence.json"

/* A base64 member of a JSON object, decoded. */
static struct cl_buf b64_of(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	struct cl_buf b = {0};

	if (!s || cl_base64_decode(s, strlen(s), &b.data, &b.len) != CL_OK) {
		fprintf(stderr, "no base64 %s\n", key);
		exit(2);
	}
	return b;
}

static void set_b64(json_t *o, const char *key, const struct cl_buf *b)
{
	char *s = cl_base64_encode(b->data, b->len);

	json_object_set_new(o, key, json_string(s));
	free(s);
}

static int verify_json(json_t *root, const struct cl_verify_opts *o, json_t **claims)
{
	char *text = json_dumps(root, 0);
	struct cl_verify_result r;
	int rc = cl_verify_evidence((const uint8_t *)text, strlen(text), o, &r);

	if (claims)
		*claims = json_incref(r.claims);
	CHECK_EQ_INT(r.format, CL_FORMAT_TPM);
	cl_verify_result_free(&r);
	free(text);
	return rc;
}

static json_t *load_json(const char *rel)
{
	struct cl_buf b = vector_read(rel);
	json_t *j = json_loadb((const char *)b.data, b.len, 0, NULL);

	cl_buf_free(&b);
	if (!j)
		exit(2);
	return j;
}

static void test_gcp(void)
{
	json_t *root = load_json(GCP), *claims = NULL, *copy = NULL;
	json_t *ak = json_object_get(root, "AK"), *q = json_object_get(root, "Quote");
	json_t *lg = json_object_get(root, "Log");
	struct cl_buf akb = b64_of(ak, "Public"), buf = {0};
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	uint8_t nonce[1] = {0};

	o.tpm.ak = akb.data;
	o.tpm.ak_len = akb.len;
	CHECK_EQ_INT(verify_json(root, &o, &claims), CL_OK);
	CHECK_STR(json_string_value(json_object_get(claims, "platform")), "tpm");
	CHECK_STR(json_string_value(json_object_get(claims, "signature_alg")), "rsassa");
	CHECK_STR(json_string_value(json_object_get(claims, "hash_alg")), "sha1");
	CHECK_STR(json_string_value(json_object_get(claims, "ak_trust")), "pinned");
	CHECK(json_is_true(json_object_get(claims, "ak_restricted")));
	CHECK(json_is_true(json_object_get(claims, "secure_boot")));
	CHECK_STR(json_string_value(json_object_get(claims, "nonce")), "");
	CHECK_EQ_INT(json_object_size(json_object_get(json_object_get(claims, "pcrs"), "sha1")),
		     24);
	CHECK_STR(json_string_value(json_object_get(
			  json_object_get(json_object_get(claims, "pcrs"), "sha1"), "0")),
		  "51c323de0c0c694f4601cdd02beb58ff13629f74");
	CHECK(json_integer_value(json_object_get(json_object_get(claims, "events"), "count")) > 10);
	CHECK_EQ_INT(
		json_integer_value(json_object_get(json_object_get(claims, "events"), "untrusted")),
		0);
	CHECK_STR(json_string_value(json_object_get(claims, "measurement")),
		  "a610f27bc687ce906243287d832706036e79f6e1");
	json_decref(claims);

	/* An empty nonce is what was quoted; anything else is not. */
	o.tpm.nonce = nonce;
	o.tpm.nonce_len = 0;
	CHECK_EQ_INT(verify_json(root, &o, NULL), CL_OK);
	o.tpm.nonce_len = 1;
	CHECK_EQ_INT(verify_json(root, &o, NULL), CL_ERR_MISMATCH);
	o.tpm.nonce = NULL;
	o.have_report_data = 1;
	CHECK_EQ_INT(verify_json(root, &o, NULL), CL_OK); /* zero-padded empty extraData */
	o.report_data[0] = 1;
	CHECK_EQ_INT(verify_json(root, &o, NULL), CL_ERR_MISMATCH);
	o.have_report_data = 0;

	/* Without a pinned AK nothing vouches for the quote. */
	{
		struct cl_verify_opts none = CL_VERIFY_OPTS_INIT;

		CHECK_EQ_INT(verify_json(root, &none, &claims), CL_ERR_POLICY);
		CHECK(json_is_null(json_object_get(claims, "ak_trust")));
		json_decref(claims);
	}

	/* One flipped byte in the quote: first, last, and in extraData/pcrDigest. */
	{
		struct cl_buf qb = b64_of(q, "Quote");
		size_t offs[] = {0, 10, qb.len / 2, qb.len - 1};

		for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
			copy = json_deep_copy(root);
			qb.data[offs[i]] ^= 0x01;
			set_b64(json_object_get(copy, "Quote"), "Quote", &qb);
			CHECK(verify_json(copy, &o, NULL) < 0);
			qb.data[offs[i]] ^= 0x01;
			json_decref(copy);
		}
		cl_buf_free(&qb);
	}
	/* ... in the signature. */
	buf = b64_of(q, "Signature");
	for (size_t off = 6; off < buf.len; off += 61) {
		copy = json_deep_copy(root);
		buf.data[off] ^= 0x80;
		set_b64(json_object_get(copy, "Quote"), "Signature", &buf);
		CHECK_EQ_INT(verify_json(copy, &o, NULL), CL_ERR_SIGNATURE);
		buf.data[off] ^= 0x80;
		json_decref(copy);
	}
	cl_buf_free(&buf);
	/* ... in the AK, in the evidence (pin unchanged) and in the pin. */
	buf = b64_of(ak, "Public");
	copy = json_deep_copy(root);
	buf.data[buf.len - 5] ^= 0x01;
	set_b64(json_object_get(copy, "AK"), "Public", &buf);
	CHECK_EQ_INT(verify_json(copy, &o, NULL), CL_ERR_MISMATCH);
	{
		struct cl_verify_opts o2 = o;

		o2.tpm.ak = buf.data;
		CHECK_EQ_INT(verify_json(root, &o2, NULL), CL_ERR_MISMATCH);
		/* Pinning the flipped key and shipping it: the signature fails. */
		CHECK_EQ_INT(verify_json(copy, &o2, NULL), CL_ERR_SIGNATURE);
	}
	json_decref(copy);
	cl_buf_free(&buf);
	/* ... in the event log: a digest, and the SecureBoot variable's data. */
	buf = b64_of(lg, "Raw");
	{
		struct cl_evlog log;
		size_t dig = 0, sbdata = 0;

		CHECK_EQ_INT(cl_evlog_parse(buf.data, buf.len, &log), CL_OK);
		for (size_t i = 1; i < log.nevents; i++) {
			const struct cl_evlog_event *e = &log.events[i];

			if (e->pcr == 7 && e->type == CL_EV_EFI_VARIABLE_DRIVER_CONFIG && !sbdata) {
				sbdata = (size_t)(e->data - buf.data) + e->data_len - 1;
				dig = (size_t)(e->digests[0].d - buf.data) + 3;
			}
		}
		cl_evlog_free(&log);
		CHECK(dig && sbdata);
		copy = json_deep_copy(root);
		buf.data[dig] ^= 0x01;
		set_b64(json_object_get(copy, "Log"), "Raw", &buf);
		CHECK_EQ_INT(verify_json(copy, &o, NULL), CL_ERR_MISMATCH);
		buf.data[dig] ^= 0x01;
		json_decref(copy);
		copy = json_deep_copy(root);
		buf.data[sbdata] ^= 0x01;
		set_b64(json_object_get(copy, "Log"), "Raw", &buf);
		CHECK_EQ_INT(verify_json(copy, &o, NULL), CL_ERR_MISMATCH);
		buf.data[sbdata] ^= 0x01;
		json_decref(copy);
		/* A truncated log drops events the quote covers. */
		copy = json_deep_copy(root);
		buf.len -= 200;
		set_b64(json_object_get(copy, "Log"), "Raw", &buf);
		CHECK(verify_json(copy, &o, NULL) < 0);
		json_decref(copy);
	}
	cl_buf_free(&buf);
	/* A PCR value that is not the quoted one. */
	copy = json_deep_copy(root);
	json_object_set_new(
		json_array_get(json_object_get(json_object_get(copy, "Log"), "PCRs"), 0), "Digest",
		json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAA="));
	CHECK_EQ_INT(verify_json(copy, &o, NULL), CL_ERR_MISMATCH);
	json_decref(copy);
	/* A quoted PCR whose value is missing. */
	copy = json_deep_copy(root);
	json_array_remove(json_object_get(json_object_get(copy, "Log"), "PCRs"), 3);
	CHECK_EQ_INT(verify_json(copy, &o, NULL), CL_ERR_MALFORMED);
	json_decref(copy);

	cl_buf_free(&akb);
	json_decref(root);
}

/* The same evidence in our envelope, through a parse/serialise round trip. */
static void test_envelope_roundtrip(void)
{
	struct cl_buf b = vector_read(GCP);
	struct cl_tpm_evidence ev;
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	json_t *j = NULL, *claims = NULL;

	CHECK(cl_tpm_detect(b.data, b.len));
	CHECK_EQ_INT(cl_tpm_evidence_parse(b.data, b.len, &ev), CL_OK);
	CHECK_EQ_INT(ev.pcrs.nbanks, 1);
	CHECK(ev.event_log_len > 1000);
	CHECK_EQ_INT(cl_tpm_evidence_to_json(&ev, &j), CL_OK);
	CHECK(json_object_get(j, "quote") && json_object_get(j, "signature") &&
	      json_object_get(j, "ak_public") && json_object_get(j, "event_log"));
	CHECK_EQ_INT(json_object_size(json_object_get(json_object_get(j, "pcrs"), "sha1")), 24);
	o.tpm.ak = ev.ak;
	o.tpm.ak_len = ev.ak_len;
	CHECK_EQ_INT(verify_json(j, &o, &claims), CL_OK);
	CHECK(json_is_true(json_object_get(claims, "secure_boot")));
	json_decref(claims);
	/* Unknown bank names and PCR indices out of range are refused. */
	json_object_set_new(json_object_get(j, "pcrs"), "md5", json_object());
	CHECK_EQ_INT(verify_json(j, &o, NULL), CL_ERR_UNSUPPORTED);
	json_object_del(json_object_get(j, "pcrs"), "md5");
	json_object_set_new(json_object_get(json_object_get(j, "pcrs"), "sha1"), "24",
			    json_string("0000000000000000000000000000000000000000"));
	CHECK_EQ_INT(verify_json(j, &o, NULL), CL_ERR_MALFORMED);
	json_decref(j);
	cl_tpm_evidence_free(&ev);
	cl_buf_free(&b);
}

static void test_trustee(void)
{
	json_t *root = load_json(TRUSTEE), *claims = NULL, *copy = NULL;
	struct cl_buf akb = b64_of(root, "ak_public");
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	EVP_PKEY *k = NULL;
	int restricted = 5;

	CHECK_EQ_INT(cl_tpm_ak_parse(akb.data, akb.len, &k, &restricted), CL_OK);
	CHECK_EQ_INT(restricted, -1);
	EVP_PKEY_free(k);
	o.tpm.ak = akb.data;
	o.tpm.ak_len = akb.len;
	CHECK_EQ_INT(verify_json(root, &o, &claims), CL_OK);
	CHECK_STR(json_string_value(json_object_get(claims, "hash_alg")), "sha256");
	CHECK_STR(json_string_value(json_object_get(claims, "measurement")),
		  "019de64c9318655e422c3d03831169896e31f02a1d74e4d8fef575bf4e0d75fa");
	CHECK(json_is_null(json_object_get(claims, "secure_boot")));
	CHECK_EQ_INT(json_object_size(json_object_get(json_object_get(claims, "pcrs"), "sha256")),
		     24);
	json_decref(claims);
	/* PEM works as well as DER for the pin. */
	{
		const unsigned char *p = akb.data;
		EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)akb.len);
		BIO *bio = BIO_new(BIO_s_mem());
		char *pem = NULL;
		long pl = 0;

		CHECK(pk && bio && PEM_write_bio_PUBKEY(bio, pk) == 1);
		pl = BIO_get_mem_data(bio, &pem);
		o.tpm.ak = (const uint8_t *)pem;
		o.tpm.ak_len = (size_t)pl;
		CHECK_EQ_INT(verify_json(root, &o, NULL), CL_OK);
		BIO_free(bio);
		EVP_PKEY_free(pk);
		o.tpm.ak = akb.data;
		o.tpm.ak_len = akb.len;
	}
	/* PCR 17 changed. */
	copy = json_deep_copy(root);
	json_array_set_new(
		json_object_get(json_object_get(copy, "tpm_quote"), "pcrs"), 17,
		json_string("0000000000000000000000000000000000000000000000000000000000000000"));
	CHECK_EQ_INT(verify_json(copy, &o, NULL), CL_ERR_MISMATCH);
	json_decref(copy);
	/* The GCP AK pinned instead: not the evidence's key. */
	{
		json_t *g = load_json(GCP);
		struct cl_buf gak = b64_of(json_object_get(g, "AK"), "Public");

		o.tpm.ak = gak.data;
		o.tpm.ak_len = gak.len;
		CHECK_EQ_INT(verify_json(root, &o, NULL), CL_ERR_MISMATCH);
		/* ...and with the evidence's own AK removed, the signature fails. */
		copy = json_deep_copy(root);
		json_object_del(copy, "ak_public");
		CHECK_EQ_INT(verify_json(copy, &o, NULL), CL_ERR_SIGNATURE);
		json_decref(copy);
		cl_buf_free(&gak);
		json_decref(g);
	}
	cl_buf_free(&akb);
	json_decref(root);
}

/* An AK certificate issued at test time by a root made at test time. */
static X509 *issue(EVP_PKEY *subject, EVP_PKEY *ca_key, X509 *ca, const char *cn)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, ca ? X509_get_subject_name(ca) : n);
	X509_set_pubkey(x, subject);
	if (!ca) {
		X509V3_CTX ctx;
		X509_EXTENSION *e = NULL;

		X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
		e = X509V3_EXT_conf_nid(NULL, &ctx, NID_basic_constraints, "critical,CA:TRUE");
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
		e = X509V3_EXT_conf_nid(NULL, &ctx, NID_key_usage, "critical,keyCertSign");
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
	X509_sign(x, ca_key, EVP_sha256());
	X509_NAME_free(n);
	return x;
}

static char *pem_of(X509 *x)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *out = NULL;
	long n = 0;

	PEM_write_bio_X509(b, x);
	n = BIO_get_mem_data(b, &p);
	out = strndup(p, (size_t)n);
	BIO_free(b);
	return out;
}

static void test_ak_certificate(void)
{
	json_t *root = load_json(TRUSTEE), *claims = NULL;
	struct cl_buf akb = b64_of(root, "ak_public");
	const unsigned char *p = akb.data;
	EVP_PKEY *ak = d2i_PUBKEY(NULL, &p, (long)akb.len);
	EVP_PKEY *ca_key = EVP_EC_gen("P-256"), *other_key = EVP_EC_gen("P-256");
	X509 *ca = issue(ca_key, ca_key, NULL, "AK root");
	X509 *other = issue(other_key, other_key, NULL, "AK root");
	X509 *cert = issue(ak, ca_key, ca, "AK");
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	unsigned char *der = NULL;
	int dl = i2d_X509(cert, &der);
	struct cl_buf certb = {der, (size_t)dl, 0, 0};
	char *ca_pem = pem_of(ca), *other_pem = pem_of(other);

	set_b64(root, "ak_cert", &certb);
	o.tpm.ak_roots = (const uint8_t *)ca_pem;
	o.tpm.ak_roots_len = strlen(ca_pem);
	CHECK_EQ_INT(verify_json(root, &o, &claims), CL_OK);
	CHECK_STR(json_string_value(json_object_get(claims, "ak_trust")), "certificate");
	json_decref(claims);
	/* The same name, another root key: the chain does not verify. */
	o.tpm.ak_roots = (const uint8_t *)other_pem;
	o.tpm.ak_roots_len = strlen(other_pem);
	CHECK_EQ_INT(verify_json(root, &o, NULL), CL_ERR_CHAIN);
	/* A certificate for another key than the evidence's AK. */
	X509_free(cert);
	OPENSSL_free(der);
	der = NULL;
	cert = issue(other_key, ca_key, ca, "AK");
	dl = i2d_X509(cert, &der);
	certb.data = der;
	certb.len = (size_t)dl;
	set_b64(root, "ak_cert", &certb);
	o.tpm.ak_roots = (const uint8_t *)ca_pem;
	o.tpm.ak_roots_len = strlen(ca_pem);
	CHECK_EQ_INT(verify_json(root, &o, NULL), CL_ERR_MISMATCH);
	/* Roots given but no certificate in the evidence: not trusted. */
	json_object_del(root, "ak_cert");
	CHECK_EQ_INT(verify_json(root, &o, NULL), CL_ERR_POLICY);
	free(ca_pem);
	free(other_pem);
	OPENSSL_free(der);
	X509_free(cert);
	X509_free(ca);
	X509_free(other);
	EVP_PKEY_free(ak);
	EVP_PKEY_free(ca_key);
	EVP_PKEY_free(other_key);
	cl_buf_free(&akb);
	json_decref(root);
}

/* Every cut of a real quote, signature and AK fails cleanly. */
static void test_truncated_structs(void)
{
	json_t *root = load_json(GCP);
	struct cl_buf q = b64_of(json_object_get(root, "Quote"), "Quote");
	struct cl_buf s = b64_of(json_object_get(root, "Quote"), "Signature");
	struct cl_buf a = b64_of(json_object_get(root, "AK"), "Public");
	TPMS_ATTEST att;
	TPMT_SIGNATURE sig;
	EVP_PKEY *k = NULL;
	int restricted = 0;

	CHECK_EQ_INT(cl_tpm_quote_parse(q.data, q.len, &att), CL_OK);
	CHECK_EQ_INT(att.attested.quote.pcrSelect.count, 1);
	CHECK_EQ_INT(att.attested.quote.pcrSelect.pcrSelections[0].hash, TPM2_ALG_SHA1);
	CHECK_EQ_INT(cl_tpm_signature_parse(s.data, s.len, &sig), CL_OK);
	CHECK_EQ_INT(sig.sigAlg, TPM2_ALG_RSASSA);
	for (size_t n = 0; n < q.len; n++)
		CHECK(cl_tpm_quote_parse(q.data, n, &att) < 0);
	for (size_t n = 0; n < s.len; n++)
		CHECK(cl_tpm_signature_parse(s.data, n, &sig) < 0);
	for (size_t n = 0; n < a.len; n += 7) {
		CHECK(cl_tpm_ak_parse(a.data, n, &k, NULL) < 0);
		CHECK(k == NULL);
	}
	/* Trailing bytes are refused. */
	CHECK_EQ_INT(cl_tpm_quote_parse(q.data, q.len, &att), CL_OK);
	{
		uint8_t *longer = calloc(1, q.len + 1);

		memcpy(longer, q.data, q.len);
		CHECK_EQ_INT(cl_tpm_quote_parse(longer, q.len + 1, &att), CL_ERR_MALFORMED);
		/* Wrong magic and wrong type. */
		longer[0] ^= 1;
		CHECK_EQ_INT(cl_tpm_quote_parse(longer, q.len, &att), CL_ERR_MALFORMED);
		longer[0] ^= 1;
		longer[5] = 0x17; /* TPM_ST_ATTEST_CERTIFY: the body no longer fits either */
		CHECK(cl_tpm_quote_parse(longer, q.len, &att) < 0);
		free(longer);
	}
	/* go-attestation stores a TPMT_PUBLIC; the TPM2B_PUBLIC around it gives the same key. */
	CHECK_EQ_INT(cl_tpm_ak_parse(a.data, a.len, &k, &restricted), CL_OK);
	CHECK_EQ_INT(restricted, 1);
	{
		EVP_PKEY *k2 = NULL;
		uint8_t *b2b = malloc(a.len + 2);

		b2b[0] = (uint8_t)(a.len >> 8);
		b2b[1] = (uint8_t)a.len;
		memcpy(b2b + 2, a.data, a.len);
		CHECK_EQ_INT(cl_tpm_ak_parse(b2b, a.len + 2, &k2, &restricted), CL_OK);
		CHECK(k2 && EVP_PKEY_eq(k, k2) == 1);
		EVP_PKEY_free(k2);
		b2b[1] ^= 1; /* size prefix off by one */
		CHECK(cl_tpm_ak_parse(b2b, a.len + 2, &k2, &restricted) < 0);
		free(b2b);
	}
	EVP_PKEY_free(k);
	cl_buf_free(&q);
	cl_buf_free(&s);
	cl_buf_free(&a);
	json_decref(root);
}

static void test_selection(void)
{
	TPML_PCR_SELECTION s;

	CHECK_EQ_INT(cl_tpm_pcr_selection_parse("sha256:0,1,7", &s), CL_OK);
	CHECK_EQ_INT(s.count, 1);
	CHECK_EQ_INT(s.pcrSelections[0].hash, TPM2_ALG_SHA256);
	CHECK_EQ_INT(s.pcrSelections[0].pcrSelect[0], 0x83);
	CHECK_EQ_INT(cl_tpm_pcr_selection_parse("sha1:0-3,16+sha384:all", &s), CL_OK);
	CHECK_EQ_INT(s.count, 2);
	CHECK_EQ_INT(s.pcrSelections[0].pcrSelect[0], 0x0f);
	CHECK_EQ_INT(s.pcrSelections[0].pcrSelect[2], 0x01);
	CHECK_EQ_INT(s.pcrSelections[1].pcrSelect[2], 0xff);
	CHECK_EQ_INT(cl_tpm_pcr_selection_parse("sha256:24", &s), CL_ERR_ARG);
	CHECK_EQ_INT(cl_tpm_pcr_selection_parse("sha256:", &s), CL_ERR_ARG);
	CHECK_EQ_INT(cl_tpm_pcr_selection_parse("sha256:1,", &s), CL_ERR_ARG);
	CHECK_EQ_INT(cl_tpm_pcr_selection_parse("sha256:5-2", &s), CL_ERR_ARG);
	CHECK_EQ_INT(cl_tpm_pcr_selection_parse("md5:1", &s), CL_ERR_ARG);
	CHECK_EQ_INT(cl_tpm_pcr_selection_parse("sha256:1+sha256:2", &s), CL_ERR_ARG);
	CHECK_EQ_INT(cl_tpm_pcr_selection_parse("sha256:1+", &s), CL_ERR_ARG);
	CHECK_EQ_INT(cl_tpm_pcr_selection_parse("0,1", &s), CL_ERR_ARG);
	CHECK_EQ_INT(cl_tpm_pcr_selection_parse("sha256:007", &s), CL_ERR_ARG);
}

/* tpm2_quote -o files for the trustee quote, in both layouts. */
static void test_tpm2_tools_pcrs(void)
{
	json_t *root = load_json(TRUSTEE);
	struct cl_buf q = b64_of(json_object_get(root, "tpm_quote"), "message");
	struct cl_tpm_evidence ev;
	struct cl_tpm_pcrs p;
	struct cl_buf raw = vector_read(TRUSTEE);
	TPMS_ATTEST att;
	uint8_t values[24 * 32], ser[136 + 3 * 532];
	uint8_t dg[64];
	size_t dl = 0, k = 0;

	CHECK_EQ_INT(cl_tpm_quote_parse(q.data, q.len, &att), CL_OK);
	CHECK_EQ_INT(cl_tpm_evidence_parse(raw.data, raw.len, &ev), CL_OK);
	for (unsigned i = 0; i < 24; i++)
		memcpy(values + 32 * i, cl_tpm_pcrs_get(&ev.pcrs, TPM2_ALG_SHA256, i), 32);
	CHECK_EQ_INT(cl_tpm_pcrs_from_tpm2_tools(&att, values, sizeof(values), &p), CL_OK);
	CHECK_EQ_INT(cl_tpm_pcr_digest(&att.attested.quote.pcrSelect, &p, TPM2_ALG_SHA256, dg, &dl),
		     CL_OK);
	CHECK(dl == 32 && memcmp(dg, att.attested.quote.pcrDigest.buffer, 32) == 0);
	CHECK(cl_tpm_pcrs_from_tpm2_tools(&att, values, sizeof(values) - 1, &p) < 0);
	/* serialized: TPML_PCR_SELECTION (132), count, three TPML_DIGESTs of 8, 8, 8. */
	memset(ser, 0, sizeof(ser));
	ser[0] = 1;
	ser[4] = 0x0b;
	ser[6] = 3;
	memset(ser + 7, 0xff, 3);
	ser[132] = 3;
	for (unsigned l = 0; l < 3; l++) {
		uint8_t *list = ser + 136 + 532 * l;

		list[0] = 8;
		for (unsigned i = 0; i < 8; i++, k++) {
			list[4 + 66 * i] = 32;
			memcpy(list + 6 + 66 * i, values + 32 * k, 32);
		}
	}
	CHECK_EQ_INT(cl_tpm_pcrs_from_tpm2_tools(&att, ser, sizeof(ser), &p), CL_OK);
	CHECK_EQ_INT(cl_tpm_pcr_digest(&att.attested.quote.pcrSelect, &p, TPM2_ALG_SHA256, dg, &dl),
		     CL_OK);
	CHECK(dl == 32 && memcmp(dg, att.attested.quote.pcrDigest.buffer, 32) == 0);
	ser[7] = 0x7f; /* a selection that differs from the quote's */
	CHECK_EQ_INT(cl_tpm_pcrs_from_tpm2_tools(&att, ser, sizeof(ser), &p), CL_ERR_MISMATCH);
	cl_tpm_evidence_free(&ev);
	cl_buf_free(&raw);
	cl_buf_free(&q);
	json_decref(root);
}

static void test_detect(void)
{
	const char *not_tpm[] = {"{}", "{\"quote\": 1}", "[1,2]", "{\"AK\": {}}", "{"};
	struct cl_buf t = vector_read(TRUSTEE);

	CHECK(cl_tpm_detect(t.data, t.len));
	CHECK_EQ_INT(cl_format_detect(t.data, t.len), CL_FORMAT_TPM);
	for (size_t i = 0; i < sizeof(not_tpm) / sizeof(not_tpm[0]); i++)
		CHECK(!cl_tpm_detect((const uint8_t *)not_tpm[i], strlen(not_tpm[i])));
	{
		struct cl_tpm_evidence ev;

		CHECK_EQ_INT(
			cl_tpm_evidence_parse((const uint8_t *)"{\"quote\":\"AAAA\"}", 16, &ev),
			CL_ERR_MALFORMED);
		CHECK_EQ_INT(cl_tpm_evidence_parse(
				     (const uint8_t *)"{\"quote\":\"!!\",\"signature\":\"AA==\"}",
				     33, &ev) < 0,
			     1);
	}
	{
		enum cl_format f = CL_FORMAT_AUTO;

		CHECK_EQ_INT(cl_format_parse("tpm", &f), CL_OK);
		CHECK_EQ_INT(f, CL_FORMAT_TPM);
		CHECK_STR(cl_format_name(CL_FORMAT_TPM), "tpm");
	}
	cl_buf_free(&t);
}

int main(void)
{
	cl_log_set_level(CL_LOG_ERROR);
	RUN(test_gcp);
	RUN(test_envelope_roundtrip);
	RUN(test_trustee);
	RUN(test_ak_certificate);
	RUN(test_truncated_structs);
	RUN(test_selection);
	RUN(test_tpm2_tools_pcrs);
	RUN(test_detect);
	return test_done("tpm_test");
}
