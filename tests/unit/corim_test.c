/*
 * CoRIM reference values: an unsigned CoRIM written by python3-cbor2 (an
 * encoder that is not ours), CoRIMs built here with a small CBOR writer so
 * that every field can be varied, COSE_Sign1 signatures made with OpenSSL at
 * test time, and malformed inputs: truncation at every length, every byte
 * flipped, wrong tags and types, indefinite lengths, deep nesting, oversize.
 */
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <time.h>
#include <unistd.h>

#include "appraise/internal.h"
#include "cloister/appraise.h"
#include "test.h"

#define TRUSTEE_MEAS                                                                               \
	"a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f90" \
	"50d3d38c"
#define GOSEV_MEAS                                                                                 \
	"b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2" \
	"e4872b01"

/*
 * tests/e2e/make_corim.py unsigned OUT --digest TRUSTEE_MEAS --min-svn 4:
 * 501({0: "cloister-e2e-corim", 1: [506(<<{1: {0: "cloister-e2e-comid"},
 *   4: {0: [[{0: {1: "AMD", 2: "SEV-SNP"}}, [{1: {2: [[7, h'a1f3...']], 1: 553(4)}}]]]}}>>)]})
 */
static const char cbor2_corim_hex[] =
	"d901f5a20072636c6f69737465722d6532652d636f72696d0181d901fa586ca201a10072636c6f6973746572"
	"2d6532652d636f6d696404a1008182a100a20163414d4402675345562d534e5081a101a202818207583"
	"0" TRUSTEE_MEAS "01d9022904";

static int64_t T2025; /* 2025-06-01T00:00:00Z */

/* ------------------------------------------------------ a CBOR writer */

static void put(struct cl_buf *b, const void *p, size_t n)
{
	if (cl_buf_append(b, p, n) != CL_OK)
		abort();
}

static void head(struct cl_buf *b, int major, uint64_t v)
{
	uint8_t h[9];
	size_t n = 1;

	if (v < 24) {
		h[0] = (uint8_t)(major << 5 | (int)v);
	} else if (v <= 0xff) {
		h[0] = (uint8_t)(major << 5 | 24);
		h[1] = (uint8_t)v;
		n = 2;
	} else if (v <= 0xffff) {
		h[0] = (uint8_t)(major << 5 | 25);
		h[1] = (uint8_t)(v >> 8);
		h[2] = (uint8_t)v;
		n = 3;
	} else {
		h[0] = (uint8_t)(major << 5 | 27);
		for (int i = 0; i < 8; i++)
			h[1 + i] = (uint8_t)(v >> (56 - 8 * i));
		n = 9;
	}
	put(b, h, n);
}

static void w_int(struct cl_buf *b, int64_t v)
{
	if (v >= 0)
		head(b, 0, (uint64_t)v);
	else
		head(b, 1, (uint64_t)(-1 - v));
}

static void w_bytes(struct cl_buf *b, const void *p, size_t n)
{
	head(b, 2, n);
	put(b, p, n);
}

static void w_text(struct cl_buf *b, const char *s)
{
	head(b, 3, strlen(s));
	put(b, s, strlen(s));
}

#define w_array(b, n) head((b), 4, (n))
#define w_map(b, n)   head((b), 5, (n))
#define w_tag(b, t)   head((b), 6, (t))

/* ------------------------------------------------------ CoRIM builder */

struct spec {
	const char *vendor, *model;
	int64_t alg;
	size_t dlen;
	const char *digest_hex; /* NULL: no digests */
	uint64_t svn_tag;	/* 552, 553 or 0 */
	uint64_t svn;
	const char *mkey; /* text mkey or NULL */
	int validity;	  /* 1: not-before nb, not-after na; 2: not-after only */
	int64_t nb, na;
	int extra_corim_key; /* add key 9 to corim-map */
	int dup_corim_key;   /* repeat key 0 in corim-map */
	int indef_tags;	     /* encode the tags array with indefinite length */
	int flags;	     /* add a flags map to the measurement */
};

static struct spec snp_spec(void)
{
	struct spec s = {"AMD", "SEV-SNP", 7, 48, TRUSTEE_MEAS, 553, 4, NULL, 0, 0, 0, 0, 0, 0, 0};
	return s;
}

static void build_comid(struct cl_buf *b, const struct spec *s)
{
	uint8_t d[64] = {0};
	size_t nvals = (s->digest_hex ? 1u : 0u) + (s->svn_tag ? 1u : 0u) + (s->flags ? 1u : 0u);

	if (s->digest_hex && cl_hex_decode_exact(s->digest_hex, d, s->dlen) != CL_OK)
		memset(d, 0x5a, sizeof(d));
	w_map(b, 2);
	w_int(b, 1);
	w_map(b, 1);
	w_int(b, 0);
	w_text(b, "unit-comid");
	w_int(b, 4);
	w_map(b, 1);
	w_int(b, 0);
	w_array(b, 1);
	w_array(b, 2);
	w_map(b, 1); /* environment-map */
	w_int(b, 0);
	w_map(b, 2);
	w_int(b, 1);
	w_text(b, s->vendor);
	w_int(b, 2);
	w_text(b, s->model);
	w_array(b, 1);
	w_map(b, s->mkey ? 2 : 1); /* measurement-map */
	if (s->mkey) {
		w_int(b, 0);
		w_text(b, s->mkey);
	}
	w_int(b, 1);
	w_map(b, nvals);
	if (s->digest_hex) {
		w_int(b, 2);
		w_array(b, 1);
		w_array(b, 2);
		w_int(b, s->alg);
		w_bytes(b, d, s->dlen);
	}
	if (s->svn_tag) {
		w_int(b, 1);
		w_tag(b, s->svn_tag);
		w_int(b, (int64_t)s->svn);
	}
	if (s->flags) {
		w_int(b, 3);
		w_map(b, 1);
		w_int(b, 3);
		put(b, "\xf4", 1); /* debug: false */
	}
}

static struct cl_buf build_corim(const struct spec *s)
{
	struct cl_buf b = {0}, comid = {0};
	size_t n = 2u + (s->validity ? 1u : 0u) + (s->extra_corim_key ? 1u : 0u) +
		   (s->dup_corim_key ? 1u : 0u);

	build_comid(&comid, s);
	w_tag(&b, 501);
	w_map(&b, n);
	w_int(&b, 0);
	w_text(&b, "unit-corim");
	if (s->dup_corim_key) {
		w_int(&b, 0);
		w_text(&b, "again");
	}
	w_int(&b, 1);
	if (s->indef_tags)
		put(&b, "\x9f", 1);
	else
		w_array(&b, 1);
	w_tag(&b, 506);
	w_bytes(&b, comid.data, comid.len);
	if (s->indef_tags)
		put(&b, "\xff", 1);
	if (s->validity) {
		w_int(&b, 4);
		w_map(&b, s->validity == 1 ? 2 : 1);
		if (s->validity == 1) {
			w_int(&b, 0);
			w_tag(&b, 1);
			w_int(&b, s->nb);
		}
		w_int(&b, 1);
		w_tag(&b, 1);
		w_int(&b, s->na);
	}
	if (s->extra_corim_key) {
		w_int(&b, 9);
		w_text(&b, "x");
	}
	cl_buf_free(&comid);
	return b;
}

/* ------------------------------------------------------ COSE_Sign1 */

static EVP_PKEY *gen_key(const char *curve)
{
	EVP_PKEY *k = EVP_EC_gen(curve);

	if (!k)
		abort();
	return k;
}

/* PEM of the public key, NUL-terminated; caller frees. */
static char *pub_pem(EVP_PKEY *k, size_t *len)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *p = NULL, *out = NULL;
	long n = 0;

	if (!b || PEM_write_bio_PUBKEY(b, k) != 1)
		abort();
	n = BIO_get_mem_data(b, &p);
	out = calloc(1, (size_t)n + 1);
	if (!out)
		abort();
	memcpy(out, p, (size_t)n);
	*len = (size_t)n;
	BIO_free(b);
	return out;
}

static struct cl_buf sign_corim(const struct cl_buf *payload, EVP_PKEY *k, int64_t alg,
				const char *ctype)
{
	struct cl_buf prot = {0}, tbs = {0}, out = {0};
	size_t half = alg == -35 ? 48 : 32, dl = 0;
	uint8_t der[160], raw[96];
	const uint8_t *dp = der;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ECDSA_SIG *sig = NULL;

	w_map(&prot, ctype ? 2 : 1);
	w_int(&prot, 1);
	w_int(&prot, alg);
	if (ctype) {
		w_int(&prot, 3);
		w_text(&prot, ctype);
	}
	w_array(&tbs, 4);
	w_text(&tbs, "Signature1");
	w_bytes(&tbs, prot.data, prot.len);
	w_bytes(&tbs, "", 0);
	w_bytes(&tbs, payload->data, payload->len);
	dl = sizeof(der);
	if (!md ||
	    EVP_DigestSignInit(md, NULL, half == 48 ? EVP_sha384() : EVP_sha256(), NULL, k) != 1 ||
	    EVP_DigestSign(md, der, &dl, tbs.data, tbs.len) != 1)
		abort();
	sig = d2i_ECDSA_SIG(NULL, &dp, (long)dl);
	if (!sig || BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, (int)half) != (int)half ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + half, (int)half) != (int)half)
		abort();
	w_tag(&out, 18);
	w_array(&out, 4);
	w_bytes(&out, prot.data, prot.len);
	w_map(&out, 0);
	w_bytes(&out, payload->data, payload->len);
	w_bytes(&out, raw, 2 * half);
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
	cl_buf_free(&prot);
	cl_buf_free(&tbs);
	return out;
}

/* ------------------------------------------------------ helpers */

static int parse(const struct cl_buf *b, const char *key, size_t key_len, int64_t at,
		 struct cl_refvalues **rv)
{
	struct cl_corim_opts o = {(const uint8_t *)key, key_len, at};

	return cl_corim_parse(b->data, b->len, &o, rv);
}

static int matches(const struct cl_refvalues *rv, const char *plat, const char *claim,
		   const char *hex, int64_t at)
{
	json_t *v = json_string(hex);
	int r = cl_refvalues_match(rv, plat, claim, v, at);

	json_decref(v);
	return r;
}

static json_t *snp_claims(const char *meas)
{
	return json_pack("{s:s, s:s, s:s, s:b, s:s, s:[], s:{s:i, s:i, s:i, s:i}, s:i}", "platform",
			 "snp", "measurement", meas, "report_data", "ec6c", "debug", 0,
			 "tcb_status", "UpToDate", "advisory_ids", "reported_tcb", "bootloader", 3,
			 "tee", 0, "snp", 8, "microcode", 115, "guest_svn", 4);
}

static enum cl_tier appraise(const struct cl_refvalues *rv, const char *meas)
{
	struct cl_appraise_ctx ctx = {NULL, 0, NULL, T2025};
	struct cl_appraisal a = {0};
	json_t *c = snp_claims(meas);
	enum cl_tier t = CL_TIER_NONE;

	if (cl_policy_appraise(NULL, c, rv, &ctx, &a) == CL_OK)
		t = a.status;
	cl_appraisal_free(&a);
	json_decref(c);
	return t;
}

/* ------------------------------------------------------ tests */

static void test_cbor2_known_answer(void)
{
	struct cl_buf b = {0};
	struct cl_refvalues *rv = NULL;
	json_t *four = json_integer(4), *three = json_integer(3);
	uint8_t *bytes = NULL;
	size_t n = 0;

	CHECK_EQ_INT(cl_hex_decode(cbor2_corim_hex, strlen(cbor2_corim_hex), &bytes, &n), CL_OK);
	put(&b, bytes, n);
	CHECK(cl_corim_detect(b.data, b.len));
	CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), CL_OK);
	CHECK_EQ_INT(matches(rv, "snp", "measurement", TRUSTEE_MEAS, T2025), 1);
	CHECK_EQ_INT(matches(rv, "snp", "measurement", GOSEV_MEAS, T2025), 0);
	CHECK_EQ_INT(cl_refvalues_meets_min(rv, "snp", "guest_svn", four, T2025), 1);
	CHECK_EQ_INT(cl_refvalues_meets_min(rv, "snp", "guest_svn", three, T2025), 0);
	CHECK_EQ_INT(cl_refvalues_has(rv, "tdx", "measurement"), 0);
	/* The default policy treats it as it treats the same JSON file. */
	CHECK_EQ_INT(appraise(rv, TRUSTEE_MEAS), CL_TIER_AFFIRMING);
	CHECK_EQ_INT(appraise(rv, GOSEV_MEAS), CL_TIER_CONTRAINDICATED);
	cl_refvalues_free(rv);
	json_decref(four);
	json_decref(three);
	free(bytes);
	cl_buf_free(&b);
}

static void test_mapping(void)
{
	struct spec s = snp_spec();
	struct cl_buf b = {0};
	struct cl_refvalues *rv = NULL;
	json_t *v = NULL;

	/* TDX: sha-512 digest, no svn claim to map an svn to. */
	s.vendor = "Intel";
	s.model = "TDX";
	s.alg = 8;
	s.dlen = 64;
	s.digest_hex = TRUSTEE_MEAS TRUSTEE_MEAS; /* 96 bytes of hex: first 64 bytes used */
	b = build_corim(&s);
	CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), CL_OK);
	CHECK_EQ_INT(cl_refvalues_has(rv, "tdx", "measurement"), 1);
	CHECK_EQ_INT(cl_refvalues_has(rv, "tdx", "guest_svn"), 0);
	CHECK_EQ_INT(cl_refvalues_has(rv, "snp", "measurement"), 0);
	cl_refvalues_free(rv);
	cl_buf_free(&b);

	/* SGX: a text mkey names the claim; an exact svn is an accepted value. */
	s = snp_spec();
	s.vendor = "Intel";
	s.model = "SGX";
	s.alg = 1;
	s.dlen = 32;
	s.digest_hex = "815f42f11cf64430c30bab7816ba596a1da0130c3b028b673133a66cf9a3e0e6";
	s.mkey = "mr_signer";
	s.svn_tag = 553;
	s.svn = 7;
	b = build_corim(&s);
	/* mr_signer would get accepted values and a minimum. */
	CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), CL_ERR_MALFORMED);
	cl_buf_free(&b);
	s.svn_tag = 0;
	b = build_corim(&s);
	CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), CL_OK);
	CHECK_EQ_INT(matches(rv, "sgx", "mr_signer", s.digest_hex, T2025), 1);
	CHECK_EQ_INT(cl_refvalues_has(rv, "sgx", "measurement"), 0);
	cl_refvalues_free(rv);
	cl_buf_free(&b);
	s.mkey = NULL;
	s.digest_hex = NULL;
	s.svn_tag = 552;
	s.svn = 7;
	b = build_corim(&s);
	CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), CL_OK);
	v = json_integer(7);
	CHECK_EQ_INT(cl_refvalues_match(rv, "sgx", "isv_svn", v, T2025), 1);
	json_decref(v);
	v = json_integer(8);
	CHECK_EQ_INT(cl_refvalues_match(rv, "sgx", "isv_svn", v, T2025), 0);
	json_decref(v);
	cl_refvalues_free(rv);
	cl_buf_free(&b);

	/* An environment cloister does not verify gives nothing to accept. */
	s = snp_spec();
	s.vendor = "ACME";
	b = build_corim(&s);
	CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), CL_ERR_NOT_FOUND);
	CHECK(rv == NULL);
	cl_buf_free(&b);

	/* Flags are a constraint cloister does not compare: the measurement is dropped. */
	s = snp_spec();
	s.flags = 1;
	b = build_corim(&s);
	CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), CL_ERR_NOT_FOUND);
	cl_buf_free(&b);

	/* A bad mkey is malformed, not skipped. */
	s = snp_spec();
	s.mkey = "Measurement!";
	b = build_corim(&s);
	CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), CL_ERR_MALFORMED);
	cl_buf_free(&b);
}

static void test_digest_algorithms(void)
{
	static const struct {
		int64_t alg;
		size_t len;
		int rc;
	} cases[] = {
		{7, 48, CL_OK},
		{1, 32, CL_OK},
		{8, 64, CL_OK},
		{1, 48, CL_ERR_MALFORMED},
		{7, 32, CL_ERR_MALFORMED},
		{2, 16, CL_ERR_UNSUPPORTED},
		{-7, 48, CL_ERR_UNSUPPORTED},
		{0, 48, CL_ERR_UNSUPPORTED},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct spec s = snp_spec();
		struct cl_buf b = {0};
		struct cl_refvalues *rv = NULL;

		s.alg = cases[i].alg;
		s.dlen = cases[i].len;
		s.digest_hex = TRUSTEE_MEAS TRUSTEE_MEAS;
		b = build_corim(&s);
		CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), cases[i].rc);
		CHECK((rv != NULL) == (cases[i].rc == CL_OK));
		cl_refvalues_free(rv);
		cl_buf_free(&b);
	}
}

static void test_validity(void)
{
	struct spec s = snp_spec();
	struct cl_buf b = {0};
	struct cl_refvalues *rv = NULL;

	s.validity = 1;
	s.nb = T2025 - 86400;
	s.na = T2025 + 86400;
	b = build_corim(&s);
	CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), CL_OK);
	CHECK_EQ_INT(matches(rv, "snp", "measurement", TRUSTEE_MEAS, T2025), 1);
	/* not-after travels with each value: appraisals after it no longer match. */
	CHECK_EQ_INT(matches(rv, "snp", "measurement", TRUSTEE_MEAS, s.na), 0);
	CHECK(cl_refvalues_min(rv, "snp", "guest_svn", s.na) == NULL);
	cl_refvalues_free(rv);
	rv = NULL;
	CHECK_EQ_INT(parse(&b, NULL, 0, s.nb - 1, &rv), CL_ERR_EXPIRED);
	CHECK(strstr(cl_error_detail(), "not valid before") != NULL);
	CHECK_EQ_INT(parse(&b, NULL, 0, s.na, &rv), CL_ERR_EXPIRED);
	CHECK(strstr(cl_error_detail(), "expired") != NULL);
	CHECK(rv == NULL);
	cl_buf_free(&b);

	s.validity = 2;
	s.na = -5;
	b = build_corim(&s);
	CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), CL_ERR_MALFORMED);
	cl_buf_free(&b);
}

static void test_signed(void)
{
	struct spec s = snp_spec();
	struct cl_buf u = build_corim(&s), sg = {0}, p384 = {0}, noct = {0};
	EVP_PKEY *k = gen_key("P-256"), *other = gen_key("P-256"), *k384 = gen_key("P-384");
	struct cl_refvalues *rv = NULL;
	size_t kl = 0, ol = 0, l384 = 0;
	char *kp = pub_pem(k, &kl), *op = pub_pem(other, &ol), *p384pem = pub_pem(k384, &l384);
	int bad = 0;

	sg = sign_corim(&u, k, -7, "application/rim+cbor");
	CHECK(cl_corim_detect(sg.data, sg.len));
	CHECK_EQ_INT(parse(&sg, kp, kl, T2025, &rv), CL_OK);
	CHECK_EQ_INT(matches(rv, "snp", "measurement", TRUSTEE_MEAS, T2025), 1);
	cl_refvalues_free(rv);
	rv = NULL;
	CHECK_EQ_INT(parse(&sg, NULL, 0, T2025, &rv), CL_ERR_SIGNATURE);
	CHECK_EQ_INT(parse(&sg, op, ol, T2025, &rv), CL_ERR_SIGNATURE);
	CHECK_EQ_INT(parse(&sg, p384pem, l384, T2025, &rv), CL_ERR_SIGNATURE);
	CHECK_EQ_INT(parse(&sg, "not a key", 9, T2025, &rv), CL_ERR_ARG);
	/* A key demands a signature. */
	CHECK_EQ_INT(parse(&u, kp, kl, T2025, &rv), CL_ERR_SIGNATURE);
	CHECK(rv == NULL);

	/* Any single flipped bit makes it fail, never crash. */
	for (size_t i = 0; i < sg.len; i++) {
		sg.data[i] ^= 0x01;
		if (parse(&sg, kp, kl, T2025, &rv) == CL_OK) {
			bad++;
			cl_refvalues_free(rv);
			rv = NULL;
		}
		sg.data[i] ^= 0x01;
	}
	CHECK_EQ_INT(bad, 0);
	for (size_t n = 0; n < sg.len; n++) {
		struct cl_buf t = {sg.data, n, n, 0};

		CHECK(parse(&t, kp, kl, T2025, &rv) != CL_OK);
	}

	p384 = sign_corim(&u, k384, -35, "application/corim-unsigned+cbor");
	CHECK_EQ_INT(parse(&p384, p384pem, l384, T2025, &rv), CL_OK);
	cl_refvalues_free(rv);
	rv = NULL;
	noct = sign_corim(&u, k, -7, NULL);
	CHECK_EQ_INT(parse(&noct, kp, kl, T2025, &rv), CL_ERR_MALFORMED);
	cl_buf_free(&noct);
	noct = sign_corim(&u, k, -7, "application/json");
	CHECK_EQ_INT(parse(&noct, kp, kl, T2025, &rv), CL_ERR_MALFORMED);
	cl_buf_free(&noct);
	noct = sign_corim(&u, k, -36, "application/rim+cbor");
	CHECK_EQ_INT(parse(&noct, kp, kl, T2025, &rv), CL_ERR_UNSUPPORTED);

	cl_buf_free(&noct);
	cl_buf_free(&p384);
	cl_buf_free(&sg);
	cl_buf_free(&u);
	free(kp);
	free(op);
	free(p384pem);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
	EVP_PKEY_free(k384);
}

static int parse_hex(const char *hex)
{
	struct cl_refvalues *rv = NULL;
	uint8_t *p = NULL;
	size_t n = 0;
	int rc = cl_hex_decode(hex, strlen(hex), &p, &n);

	if (rc == CL_OK) {
		struct cl_corim_opts o = {NULL, 0, T2025};

		rc = cl_corim_parse(p, n, &o, &rv);
	}
	cl_refvalues_free(rv);
	free(p);
	return rc;
}

static void test_malformed(void)
{
	struct spec s = snp_spec();
	struct cl_buf b = build_corim(&s), big = {0};
	struct cl_refvalues *rv = NULL;
	int ok = 0;

	/* Truncated at every length. */
	for (size_t n = 0; n < b.len; n++) {
		struct cl_buf t = {b.data, n, n, 0};

		ok += parse(&t, NULL, 0, T2025, &rv) == CL_OK;
	}
	CHECK_EQ_INT(ok, 0);
	/* One trailing byte. */
	put(&b, "\x00", 1);
	CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), CL_ERR_MALFORMED);
	cl_buf_free(&b);

	s.indef_tags = 1;
	b = build_corim(&s);
	CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), CL_ERR_MALFORMED);
	CHECK(strstr(cl_error_detail(), "indefinite") != NULL);
	cl_buf_free(&b);
	s = snp_spec();
	s.extra_corim_key = 1;
	b = build_corim(&s);
	CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), CL_ERR_MALFORMED);
	cl_buf_free(&b);
	s = snp_spec();
	s.dup_corim_key = 1;
	b = build_corim(&s);
	CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), CL_ERR_MALFORMED);
	CHECK(strstr(cl_error_detail(), "repeats") != NULL);
	cl_buf_free(&b);
	s = snp_spec();
	s.svn_tag = 554; /* neither svn nor min-svn */
	b = build_corim(&s);
	CHECK_EQ_INT(parse(&b, NULL, 0, T2025, &rv), CL_ERR_MALFORMED);
	cl_buf_free(&b);

	CHECK_EQ_INT(parse_hex(""), CL_ERR_MALFORMED);
	/* 502 is not 501. */
	CHECK_EQ_INT(parse_hex("d901f6a0"), CL_ERR_MALFORMED);
	/* 501({}) lacks id and tags. */
	CHECK_EQ_INT(parse_hex("d901f5a0"), CL_ERR_MALFORMED);
	/* 501({0: 1, 1: []}): id of the wrong type. */
	CHECK_EQ_INT(parse_hex("d901f5a200010180"), CL_ERR_MALFORMED);
	/* 501({0: "a", 1: []}): no tags. */
	CHECK_EQ_INT(parse_hex("d901f5a20061610180"), CL_ERR_MALFORMED);
	/* 501({0: "a", 1: [506(1)]}): a CoMID that is not a byte string. */
	CHECK_EQ_INT(parse_hex("d901f5a20061610181d901fa01"), CL_ERR_MALFORMED);
	/* 501({0: "a", 1: [506(h'a0')]}): an empty CoMID. */
	CHECK_EQ_INT(parse_hex("d901f5a20061610181d901fa41a0"), CL_ERR_MALFORMED);
	/* A map that says 2^64-1 pairs, an array 2^32 entries: bounded before allocation. */
	CHECK_EQ_INT(parse_hex("d901f5bbffffffffffffffff"), CL_ERR_TRUNCATED);
	CHECK_EQ_INT(parse_hex("d901f59b0000000100000000"), CL_ERR_TRUNCATED);
	/* A byte string longer than the input. */
	CHECK_EQ_INT(parse_hex("d901f55a7fffffff00"), CL_ERR_TRUNCATED);
	/* COSE_Sign1 of the wrong shape, and with a nil (detached) payload. */
	CHECK_EQ_INT(parse_hex("d28340a0f6"), CL_ERR_MALFORMED);
	CHECK_EQ_INT(
		parse_hex("d28443a10126a0f65840"
			  "00000000000000000000000000000000000000000000000000000000000000000000"
			  "000000000000000000000000000000000000000000000000000000000000"),
		CL_ERR_MALFORMED);
	/* Not well-formed: a reserved additional-info value. */
	CHECK_EQ_INT(parse_hex("d901f5bc"), CL_ERR_MALFORMED);

	/* Nested deeper than the cap. */
	put(&big, "\xd9\x01\xf5", 3);
	for (int i = 0; i < CL_MAX_CORIM_DEPTH + 5; i++)
		put(&big, "\x81", 1);
	put(&big, "\x00", 1);
	CHECK_EQ_INT(parse(&big, NULL, 0, T2025, &rv), CL_ERR_MALFORMED);
	CHECK(strstr(cl_error_detail(), "nested") != NULL);
	cl_buf_free(&big);

	/* Larger than CL_MAX_CORIM. */
	big.max = CL_MAX_CORIM + 16;
	w_tag(&big, 501);
	head(&big, 2, CL_MAX_CORIM);
	for (size_t i = 0; i < CL_MAX_CORIM; i += 4096) {
		static const uint8_t zero[4096];

		put(&big, zero, sizeof(zero));
	}
	CHECK_EQ_INT(parse(&big, NULL, 0, T2025, &rv), CL_ERR_MALFORMED);
	CHECK(strstr(cl_error_detail(), "larger") != NULL);
	cl_buf_free(&big);
	CHECK(rv == NULL);
}

static void test_load_any(void)
{
	char dir[] = "/tmp/cloister-corim-XXXXXX", path[128], jpath[128];
	struct spec s = snp_spec();
	struct cl_buf b = build_corim(&s);
	struct cl_corim_opts with_key = {(const uint8_t *)"x", 1, T2025}, none = {NULL, 0, T2025};
	struct cl_refvalues *rv = NULL;
	FILE *f = NULL;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/rv.corim", dir);
	snprintf(jpath, sizeof(jpath), "%s/rv.json", dir);
	f = fopen(path, "wb");
	CHECK(f && fwrite(b.data, 1, b.len, f) == b.len);
	if (f)
		fclose(f);
	f = fopen(jpath, "w");
	CHECK(f && fputs("{\"snp\": {\"measurement\": [\"" TRUSTEE_MEAS "\"]}}", f) >= 0);
	if (f)
		fclose(f);
	CHECK_EQ_INT(cl_refvalues_load_any(path, &none, &rv), CL_OK);
	CHECK_EQ_INT(matches(rv, "snp", "measurement", TRUSTEE_MEAS, T2025), 1);
	cl_refvalues_free(rv);
	rv = NULL;
	CHECK_EQ_INT(cl_refvalues_load_any(jpath, &none, &rv), CL_OK);
	CHECK_EQ_INT(matches(rv, "snp", "measurement", TRUSTEE_MEAS, T2025), 1);
	cl_refvalues_free(rv);
	rv = NULL;
	CHECK_EQ_INT(cl_refvalues_load_any(jpath, &with_key, &rv), CL_ERR_ARG);
	CHECK(!cl_corim_detect((const uint8_t *)"{", 1));
	CHECK(!cl_corim_detect(NULL, 0));
	unlink(path);
	unlink(jpath);
	rmdir(dir);
	cl_buf_free(&b);
}

int main(void)
{
	CHECK_EQ_INT(cl_time_parse("2025-06-01T00:00:00Z", &T2025), CL_OK);
	RUN(test_cbor2_known_answer);
	RUN(test_mapping);
	RUN(test_digest_algorithms);
	RUN(test_validity);
	RUN(test_signed);
	RUN(test_malformed);
	RUN(test_load_any);
	cl_policy_thread_release();
	return test_done("corim_test");
}
