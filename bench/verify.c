/*
 * Verification throughput on the real vectors, each beside the floor measured
 * in the same run: the bare OpenSSL signature checks that verification cannot
 * avoid. Single-threaded, so every figure is per core.
 *
 *   build/bench/verify [SECONDS_PER_CASE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cbor.h>
#include <jose/openssl.h>

#include "cloister/crypto.h"
#include "cloister/evidence.h"
#include "bench.h"

/* The floor: n ECDSA verifications with parsed keys and DER signatures. */
struct floor {
	int n;
	EVP_PKEY *key[2];
	const EVP_MD *md;
	const uint8_t *msg[2];
	size_t msglen[2];
	uint8_t sig[2][160];
	size_t siglen[2];
};

static int run_floor(void *arg)
{
	struct floor *f = arg;

	for (int i = 0; i < f->n; i++) {
		EVP_MD_CTX *ctx = EVP_MD_CTX_new();
		int ok = EVP_DigestVerifyInit(ctx, NULL, f->md, NULL, f->key[i]) == 1 &&
			 EVP_DigestVerify(ctx, f->sig[i], f->siglen[i], f->msg[i], f->msglen[i]) ==
				 1;

		EVP_MD_CTX_free(ctx);
		if (!ok)
			return 1;
	}
	return 0;
}

static size_t raw_to_der(const uint8_t *r, const uint8_t *s, size_t n, uint8_t *out)
{
	ECDSA_SIG *sig = ECDSA_SIG_new();
	unsigned char *p = out;
	int len = 0;

	ECDSA_SIG_set0(sig, BN_bin2bn(r, (int)n, NULL), BN_bin2bn(s, (int)n, NULL));
	len = i2d_ECDSA_SIG(sig, &p);
	ECDSA_SIG_free(sig);
	return len > 0 ? (size_t)len : 0;
}

static void report(const char *name, double ours, double floor_rate, const char *floor_what)
{
	printf("%-34s %9.0f /s   floor %9.0f /s (%s)   ratio %.2f\n", name, ours, floor_rate,
	       floor_what, ours / floor_rate);
}

static void bench_snp(void)
{
	struct bench_vcase c = {bench_load("sev-snp/trustee/test-report.bin"), CL_VERIFY_OPTS_INIT};
	struct cl_buf vcek = bench_load("sev-snp/trustee/test-vcek.der");
	struct floor f = {.n = 1, .md = EVP_sha384()};
	X509 *x = NULL;
	uint8_t r[72], s[72];

	c.o.format = CL_FORMAT_SNP;
	c.o.snp.vcek = vcek.data;
	c.o.snp.vcek_len = vcek.len;
	c.o.offline = 1;
	if (cl_time_parse("2025-06-01T00:00:00Z", &c.o.at) != CL_OK ||
	    cl_x509_from_der(vcek.data, vcek.len, &x) != CL_OK)
		exit(2);
	/* Floor: one P-384 verify of bytes 0..0x29f with the VCEK key. */
	f.key[0] = X509_get_pubkey(x);
	f.msg[0] = c.ev.data;
	f.msglen[0] = 0x2a0;
	memcpy(r, c.ev.data + 0x2a0, 72);
	memcpy(s, c.ev.data + 0x2e8, 72);
	cl_reverse(r, 72);
	cl_reverse(s, 72);
	f.siglen[0] = raw_to_der(r + 24, s + 24, 48, f.sig[0]);
	report("snp (VCEK chain cached)", bench_rate("snp", bench_run_verify, &c),
	       bench_rate("floor", run_floor, &f), "1x P-384 verify");
	c.o.no_cache = 1;
	report("snp (chain verified every time)", bench_rate("snp", bench_run_verify, &c),
	       bench_rate("floor", run_floor, &f), "1x P-384 verify");
	EVP_PKEY_free(f.key[0]);
	X509_free(x);
	cl_buf_free(&vcek);
	cl_buf_free(&c.ev);
}

/*
 * The DCAP floor: the QE report signature (PCK key over the 384-byte QE
 * report) and the quote signature (attestation key over header+body). The
 * offsets are found the simple way for the bench: the PCK leaf is the first
 * PEM certificate in the quote, the QE report sits right after the
 * signature, key and cert-data header.
 */
static void dcap_floor(const struct cl_buf *q, size_t body_end, size_t sigdata_off, struct floor *f)
{
	const uint8_t *sd = q->data + sigdata_off;
	const char *pem = memmem(q->data, q->len, "-----BEGIN CERTIFICATE-----", 27);
	BIO *bio = BIO_new_mem_buf(pem, (int)(q->len - (size_t)((const uint8_t *)pem - q->data)));
	X509 *pck = PEM_read_bio_X509(bio, NULL, NULL, NULL);
	size_t qe_off = (q->data[0] == 3) ? 128 : 128 + 6;

	f->n = 2;
	f->md = EVP_sha256();
	if (cl_ec_key_from_xy("prime256v1", sd + 64, sd + 96, 32, &f->key[0]) != CL_OK || !pck)
		exit(2);
	f->msg[0] = q->data;
	f->msglen[0] = body_end;
	f->siglen[0] = raw_to_der(sd, sd + 32, 32, f->sig[0]);
	f->key[1] = X509_get_pubkey(pck);
	f->msg[1] = sd + qe_off;
	f->msglen[1] = 384;
	f->siglen[1] = raw_to_der(sd + qe_off + 384, sd + qe_off + 416, 32, f->sig[1]);
	X509_free(pck);
	BIO_free(bio);
}

static void bench_dcap(const char *name, const char *quote, const char *coll, size_t body_end)
{
	struct bench_vcase c = {bench_load(quote), CL_VERIFY_OPTS_INIT};
	struct floor f = {0};
	char vpath[4096], label[64];
	const char *base = getenv("CLOISTER_VECTORS");

	snprintf(vpath, sizeof(vpath), "%s/%s", base && *base ? base : "../shared/vectors", coll);
	c.o.dcap.collateral = vpath;
	c.o.offline = 1;
	if (cl_time_parse("2025-07-01T00:00:00Z", &c.o.at) != CL_OK)
		exit(2);
	dcap_floor(&c.ev, body_end, body_end + 4, &f);
	double fl = bench_rate("floor", run_floor, &f);

	snprintf(label, sizeof(label), "%s (collateral cached)", name);
	report(label, bench_rate(name, bench_run_verify, &c), fl, "2x P-256 verify");
	c.o.no_cache = 1;
	snprintf(label, sizeof(label), "%s (all collateral checked)", name);
	report(label, bench_rate(name, bench_run_verify, &c), fl, "2x P-256 verify");
	EVP_PKEY_free(f.key[0]);
	EVP_PKEY_free(f.key[1]);
	cl_buf_free(&c.ev);
}

/*
 * Nitro: the floor is the one P-384 verification of the COSE Sig_structure
 * (built here by hand from the untagged document) under the certificate's key.
 */
static void bench_nitro(void)
{
	struct cl_buf t = bench_load("nitro/blocky-nitrite/nitro_attestation.b64");
	struct bench_vcase c = {{0}, CL_VERIFY_OPTS_INIT};
	struct floor f = {.n = 1, .md = EVP_sha384()};
	struct cl_buf tbs = {0};
	struct cbor_load_result lr;
	cbor_item_t *doc = NULL;
	const uint8_t *payload = NULL;
	size_t plen = 0;
	X509 *x = NULL;
	uint8_t *raw = NULL;
	size_t rawlen = 0;

	/* 84 | 44 a1013822 | a0 | 59 hhhh payload | 58 60 r||s */
	if (cl_base64_decode((const char *)t.data, t.len, &raw, &rawlen) != CL_OK || rawlen < 106 ||
	    raw[7] != 0x59)
		exit(2);
	plen = (size_t)raw[8] << 8 | raw[9];
	payload = raw + 10;
	if (cl_buf_append(&tbs, "\x84\x6aSignature1\x44\xa1\x01\x38\x22\x40\x59", 19) != CL_OK ||
	    cl_buf_append(&tbs, raw + 8, 2) != CL_OK || cl_buf_append(&tbs, payload, plen) != CL_OK)
		exit(2);
	doc = cbor_load(payload, plen, &lr);
	for (size_t i = 0; doc && i < cbor_map_size(doc); i++) {
		struct cbor_pair pr = cbor_map_handle(doc)[i];

		if (cbor_isa_string(pr.key) && cbor_string_length(pr.key) == 11 &&
		    memcmp(cbor_string_handle(pr.key), "certificate", 11) == 0 &&
		    cl_x509_from_der(cbor_bytestring_handle(pr.value),
				     cbor_bytestring_length(pr.value), &x) != CL_OK)
			exit(2);
	}
	if (!x)
		exit(2);
	f.key[0] = X509_get_pubkey(x);
	f.msg[0] = tbs.data;
	f.msglen[0] = tbs.len;
	f.siglen[0] = raw_to_der(raw + rawlen - 96, raw + rawlen - 48, 48, f.sig[0]);
	if (cl_buf_append(&c.ev, raw, rawlen) != CL_OK ||
	    cl_time_parse("2024-09-07T14:37:39.545Z", &c.o.at) != CL_OK)
		exit(2);
	c.o.format = CL_FORMAT_NITRO;
	report("nitro (chain cached)", bench_rate("nitro", bench_run_verify, &c),
	       bench_rate("floor", run_floor, &f), "1x P-384 verify");
	c.o.no_cache = 1;
	report("nitro (chain verified every time)", bench_rate("nitro", bench_run_verify, &c),
	       bench_rate("floor", run_floor, &f), "1x P-384 verify");
	EVP_PKEY_free(f.key[0]);
	X509_free(x);
	cbor_decref(&doc);
	free(raw);
	cl_buf_free(&tbs);
	cl_buf_free(&c.ev);
	cl_buf_free(&t);
}

/*
 * PSA: one ES256 verification, the floor beside it being one bare P-256
 * verification of the same Sig_structure (built here by hand from the
 * tagged token) under the IAK, parsed once.
 */
static void bench_psa(void)
{
	struct bench_vcase c = {bench_load("psa/veraison-psatoken/tfm-p2-token.cbor"),
				CL_VERIFY_OPTS_INIT};
	struct cl_buf iak = bench_load("psa/veraison-psatoken/tfm-iak-pub.jwk.json");
	struct floor f = {.n = 1, .md = EVP_sha256()};
	struct cl_buf tbs = {0};
	json_t *jwk = json_loadb((const char *)iak.data, iak.len, 0, NULL);
	const uint8_t *t = c.ev.data;
	size_t plen = 0;

	/* d2 84 | 43 a10126 | a0 | 59 hhhh payload | 58 40 r||s */
	if (c.ev.len < 12 + 66 || t[0] != 0xd2 || t[7] != 0x59)
		exit(2);
	plen = (size_t)t[8] << 8 | t[9];
	if (10 + plen + 66 != c.ev.len ||
	    cl_buf_append(&tbs, "\x84\x6aSignature1\x43\xa1\x01\x26\x40\x59", 18) != CL_OK ||
	    cl_buf_append(&tbs, t + 8, 2 + plen) != CL_OK)
		exit(2);
	f.key[0] = jwk ? jose_openssl_jwk_to_EVP_PKEY(NULL, jwk) : NULL;
	if (!f.key[0])
		exit(2);
	f.msg[0] = tbs.data;
	f.msglen[0] = tbs.len;
	f.siglen[0] = raw_to_der(t + c.ev.len - 64, t + c.ev.len - 32, 32, f.sig[0]);
	c.o.format = CL_FORMAT_PSA;
	c.o.psa.iak = iak.data;
	c.o.psa.iak_len = iak.len;
	report("psa (IAK as JWK)", bench_rate("psa", bench_run_verify, &c),
	       bench_rate("floor", run_floor, &f), "1x P-256 verify");
	EVP_PKEY_free(f.key[0]);
	json_decref(jwk);
	cl_buf_free(&tbs);
	cl_buf_free(&iak);
	cl_buf_free(&c.ev);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		bench_seconds = atof(argv[1]);
	if (bench_seconds <= 0)
		bench_seconds = 1.0;
	printf("cloister verify benchmark: single thread, %.1fs per case, real vectors\n",
	       bench_seconds);
	bench_snp();
	/* TDX v4: header 48 + TD report 584; SGX v3: header 48 + enclave report 384. */
	bench_dcap("tdx", "tdx/dcap-qvl/tdx_quote", "tdx/dcap-qvl/tdx_quote_collateral.json", 632);
	bench_dcap("sgx", "sgx/dcap-qvl/sgx_quote", "sgx/dcap-qvl/sgx_quote_collateral.json", 432);
	bench_nitro();
	bench_psa();
	return 0;
}
