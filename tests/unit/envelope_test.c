/*
 * The agent's JSON envelope: strict parsing, the SNP certificate table, the
 * format cross-check, and the dev-TEE event log replay. SNP cases wrap the
 * real trustee report and VCEK/VLEK; dev-TEE reports are signed by a root
 * made in a temporary state directory.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cloister/crypto.h"
#include "cloister/devtee.h"
#include "cloister/evidence.h"
#include "cloister/snp.h"
#include "evidence/envelope.h"
#include "test.h"

#define TRU "sev-snp/trustee/"
#define AT  "2025-06-01T00:00:00Z"

static char tmpdir[] = "/tmp/cloister-envelope-test.XXXXXX";
static char cache_dir[4200];
static struct cl_buf report, vcek, vlek_report, vlek;

static const uint8_t guid_ask[16] = {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4,
				     0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82};

/* An envelope as the agent writes it; any member may be NULL (left out). */
static char *envelope(const char *format, const char *provider, const uint8_t *ev, size_t n,
		      const char *aux_key, const uint8_t *aux, size_t aux_len)
{
	json_t *j = json_object();
	char *b = NULL, *text = NULL;

	if (format)
		json_object_set_new(j, "format", json_string(format));
	if (provider)
		json_object_set_new(j, "provider", json_string(provider));
	if (ev) {
		b = cl_base64_encode(ev, n);
		json_object_set_new(j, "evidence", json_string(b));
		free(b);
	}
	if (aux_key) {
		b = cl_base64_encode(aux, aux_len);
		json_object_set_new(j, aux_key, json_string(b));
		free(b);
	}
	text = json_dumps(j, JSON_PRESERVE_ORDER);
	json_decref(j);
	return text;
}

/* GHCB certificate table: entries, terminator, then the certificates. */
static size_t certtable(uint8_t *out, size_t cap, const uint8_t (*guids)[16],
			const struct cl_buf *certs, size_t k)
{
	size_t off = 24 * (k + 1), pos = 0;

	memset(out, 0, cap);
	for (size_t i = 0; i < k; i++) {
		uint32_t o = (uint32_t)off, l = (uint32_t)certs[i].len;

		memcpy(out + pos, guids[i], 16);
		memcpy(out + pos + 16, &o, 4); /* little-endian host */
		memcpy(out + pos + 20, &l, 4);
		memcpy(out + off, certs[i].data, certs[i].len);
		pos += 24;
		off += certs[i].len;
	}
	return off;
}

static struct cl_verify_opts snp_opts(void)
{
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;

	CHECK_EQ_INT(cl_time_parse(AT, &o.at), CL_OK);
	o.offline = 1;
	o.cache_dir = cache_dir;
	return o;
}

static int verify_text(const char *text, const struct cl_verify_opts *o, struct cl_verify_result *r)
{
	return cl_verify_evidence((const uint8_t *)text, strlen(text), o, r);
}

static void test_snp(void)
{
	static uint8_t tab[16384];
	uint8_t g[3][16];
	struct cl_buf certs[3];
	struct cl_verify_opts o = snp_opts();
	struct cl_verify_result r = {0};
	size_t n = 0;
	char *t = NULL;

	memcpy(g[0], guid_ask, 16);
	memcpy(g[1], cl_snp_guid_vcek, 16);
	certs[0] = vlek; /* any certificate: ASK entries are not used */
	certs[1] = vcek;
	n = certtable(tab, sizeof(tab), (const uint8_t(*)[16])g, certs, 2);

	/* The VCEK from the table verifies the report. */
	t = envelope("snp", "tsm/sev_guest", report.data, report.len, "certs", tab, n);
	CHECK_EQ_INT(verify_text(t, &o, &r), CL_OK);
	CHECK_EQ_INT(r.format, CL_FORMAT_SNP);
	CHECK_STR(json_string_value(json_object_get(r.claims, "platform")), "snp");
	cl_verify_result_free(&r);
	free(t);

	/* Without the table there is nothing to verify with (offline). */
	t = envelope("snp", "tsm/sev_guest", report.data, report.len, NULL, NULL, 0);
	CHECK(verify_text(t, &o, &r) != CL_OK);
	cl_verify_result_free(&r);
	/* --vcek wins over the table; a wrong one rejects. */
	free(t);
	t = envelope("snp", "tsm/sev_guest", report.data, report.len, "certs", tab, n);
	o.snp.vcek = vlek.data;
	o.snp.vcek_len = vlek.len;
	CHECK(verify_text(t, &o, &r) != CL_OK);
	cl_verify_result_free(&r);
	o = snp_opts();

	/* The named format must be the evidence's, and --format must agree. */
	free(t);
	t = envelope("tdx", "tsm/sev_guest", report.data, report.len, "certs", tab, n);
	CHECK_EQ_INT(verify_text(t, &o, &r), CL_ERR_MISMATCH);
	CHECK(strstr(r.reason, "envelope says tdx but the evidence is snp") != NULL);
	cl_verify_result_free(&r);
	free(t);
	t = envelope("snp", "tsm/sev_guest", report.data, report.len, "certs", tab, n);
	o.format = CL_FORMAT_TDX;
	CHECK_EQ_INT(verify_text(t, &o, &r), CL_ERR_MISMATCH);
	cl_verify_result_free(&r);
	o.format = CL_FORMAT_SNP;
	CHECK_EQ_INT(verify_text(t, &o, &r), CL_OK);
	cl_verify_result_free(&r);
	o = snp_opts();
	free(t);

	/* A table without the VCEK leaves it unknown; a flipped report byte rejects. */
	n = certtable(tab, sizeof(tab), (const uint8_t(*)[16])g, certs, 1);
	t = envelope("snp", "x", report.data, report.len, "certs", tab, n);
	CHECK(verify_text(t, &o, &r) != CL_OK);
	cl_verify_result_free(&r);
	free(t);
	{
		uint8_t m[CL_SNP_REPORT_SIZE];

		memcpy(m, report.data, sizeof(m));
		m[42] ^= 1;
		n = certtable(tab, sizeof(tab), (const uint8_t(*)[16])g, certs, 2);
		t = envelope("snp", "x", m, sizeof(m), "certs", tab, n);
		CHECK_EQ_INT(verify_text(t, &o, &r), CL_ERR_SIGNATURE);
		cl_verify_result_free(&r);
		free(t);
	}

	/* A VLEK-signed report takes the VLEK entry. */
	memcpy(g[0], cl_snp_guid_vcek, 16);
	memcpy(g[1], cl_snp_guid_vlek, 16);
	certs[0] = vcek;
	certs[1] = vlek;
	n = certtable(tab, sizeof(tab), (const uint8_t(*)[16])g, certs, 2);
	t = envelope("snp", "x", vlek_report.data, vlek_report.len, "certs", tab, n);
	CHECK_EQ_INT(verify_text(t, &o, &r), CL_OK);
	cl_verify_result_free(&r);
	free(t);
}

static void test_certtable(void)
{
	static uint8_t tab[8192];
	uint8_t g[CL_MAX_SNP_CERT_ENTRIES + 1][16];
	struct cl_buf certs[CL_MAX_SNP_CERT_ENTRIES + 1];
	const uint8_t *c = NULL;
	size_t n = 0, len = 0;
	uint32_t v = 0;

	memcpy(g[0], cl_snp_guid_vcek, 16);
	certs[0] = vcek;
	n = certtable(tab, sizeof(tab), (const uint8_t(*)[16])g, certs, 1);
	CHECK_EQ_INT(cl_snp_certtable_find(tab, n, cl_snp_guid_vcek, &c, &len), CL_OK);
	CHECK(c == tab + 48 && len == vcek.len && memcmp(c, vcek.data, len) == 0);
	CHECK_EQ_INT(cl_snp_certtable_find(tab, n, cl_snp_guid_vlek, &c, &len), CL_OK);
	CHECK(c == NULL && len == 0);
	/* Every truncation inside the entries: no terminator. */
	for (size_t k = 0; k < 48; k++)
		CHECK(cl_snp_certtable_find(tab, k, cl_snp_guid_vcek, &c, &len) < 0);
	/* The certificate cut short: the entry points outside. */
	CHECK_EQ_INT(cl_snp_certtable_find(tab, n - 1, cl_snp_guid_vcek, &c, &len),
		     CL_ERR_MALFORMED);
	/* Offset + length overflowing 32 bits. */
	v = 0xffffffffu;
	memcpy(tab + 20, &v, 4);
	CHECK_EQ_INT(cl_snp_certtable_find(tab, n, cl_snp_guid_vcek, &c, &len), CL_ERR_MALFORMED);
	v = (uint32_t)vcek.len;
	memcpy(tab + 20, &v, 4);
	/* Zero length. */
	v = 0;
	memcpy(tab + 20, &v, 4);
	CHECK_EQ_INT(cl_snp_certtable_find(tab, n, cl_snp_guid_vcek, &c, &len), CL_ERR_MALFORMED);
	v = (uint32_t)vcek.len;
	memcpy(tab + 20, &v, 4);
	/* A terminator that is not all zero. */
	tab[24 + 17] = 1;
	CHECK_EQ_INT(cl_snp_certtable_find(tab, n, cl_snp_guid_vcek, &c, &len), CL_ERR_MALFORMED);
	tab[24 + 17] = 0;
	/* The same GUID twice. */
	memcpy(g[1], cl_snp_guid_vcek, 16);
	certs[1] = vcek;
	n = certtable(tab, sizeof(tab), (const uint8_t(*)[16])g, certs, 2);
	CHECK_EQ_INT(cl_snp_certtable_find(tab, n, cl_snp_guid_vcek, &c, &len), CL_ERR_MALFORMED);
	/* Too many entries. */
	for (int i = 0; i <= CL_MAX_SNP_CERT_ENTRIES; i++) {
		memcpy(g[i], guid_ask, 16);
		g[i][15] = (uint8_t)i;
		certs[i] = (struct cl_buf){.data = (uint8_t *)"x", .len = 1};
	}
	n = certtable(tab, sizeof(tab), (const uint8_t(*)[16])g, certs, CL_MAX_SNP_CERT_ENTRIES);
	CHECK_EQ_INT(cl_snp_certtable_find(tab, n, cl_snp_guid_vcek, &c, &len), CL_OK);
	n = certtable(tab, sizeof(tab), (const uint8_t(*)[16])g, certs,
		      CL_MAX_SNP_CERT_ENTRIES + 1);
	CHECK_EQ_INT(cl_snp_certtable_find(tab, n, cl_snp_guid_vcek, &c, &len), CL_ERR_MALFORMED);
}

static int parse(const char *s)
{
	struct cl_envelope e;
	int rc = cl_envelope_parse((const uint8_t *)s, strlen(s), &e);

	cl_envelope_free(&e);
	return rc;
}

static void test_parse(void)
{
	struct cl_envelope e;
	char *t = envelope("snp", "tsm/sev_guest", report.data, report.len, NULL, NULL, 0);
	size_t n = strlen(t);
	char *big = NULL;

	CHECK_EQ_INT(cl_envelope_parse((const uint8_t *)t, n, &e), CL_OK);
	CHECK_EQ_INT(e.format, CL_FORMAT_SNP);
	CHECK_STR(e.provider, "tsm/sev_guest");
	CHECK(e.evidence_len == report.len && memcmp(e.evidence, report.data, report.len) == 0);
	CHECK(!e.certs && !e.have_eventlog);
	cl_envelope_free(&e);
	cl_envelope_free(NULL);
	/* Every truncation. */
	for (size_t k = 0; k < n; k++)
		CHECK(cl_envelope_parse((const uint8_t *)t, k, &e) < 0);
	free(t);

	CHECK_EQ_INT(parse("{\"format\":\"devtee\",\"provider\":\"devtee\",\"evidence\":\"QUJD\","
			   "\"format\":\"devtee\"}"),
		     CL_ERR_MALFORMED);
	CHECK_EQ_INT(parse("{\"format\":\"devtee\",\"provider\":\"devtee\",\"evidence\":\"QUJD\"}"),
		     CL_OK);
	CHECK_EQ_INT(parse("{\"format\":\"devtee\",\"provider\":\"devtee\",\"evidence\":\"QUJD\","
			   "\"eventlog\":\"\"}"),
		     CL_OK);
	CHECK_EQ_INT(parse("{\"format\":\"devtee\",\"provider\":\"devtee\",\"evidence\":\"QUJD\","
			   "\"extra\":1}"),
		     CL_ERR_MALFORMED);
	CHECK_EQ_INT(parse("{\"format\":\"devtee\",\"provider\":\"devtee\"}"), CL_ERR_MALFORMED);
	CHECK_EQ_INT(parse("{\"format\":\"devtee\",\"evidence\":\"QUJD\"}"), CL_ERR_MALFORMED);
	CHECK_EQ_INT(parse("{\"provider\":\"devtee\",\"evidence\":\"QUJD\"}"), CL_ERR_MALFORMED);
	CHECK_EQ_INT(parse("{\"format\":\"devtee\",\"provider\":\"devtee\",\"evidence\":\"\"}"),
		     CL_ERR_MALFORMED);
	CHECK_EQ_INT(parse("{\"format\":\"devtee\",\"provider\":\"devtee\",\"evidence\":\"QU!D\"}"),
		     CL_ERR_MALFORMED);
	CHECK_EQ_INT(parse("{\"format\":\"devtee\",\"provider\":\"devtee\",\"evidence\":7}"),
		     CL_ERR_MALFORMED);
	CHECK_EQ_INT(parse("{\"format\":5,\"provider\":\"devtee\",\"evidence\":\"QUJD\"}"),
		     CL_ERR_MALFORMED);
	CHECK_EQ_INT(parse("{\"format\":\"auto\",\"provider\":\"devtee\",\"evidence\":\"QUJD\"}"),
		     CL_ERR_UNSUPPORTED);
	CHECK_EQ_INT(parse("{\"format\":\"tpm\",\"provider\":\"devtee\",\"evidence\":\"QUJD\"}"),
		     CL_ERR_UNSUPPORTED);
	CHECK_EQ_INT(parse("{\"format\":\"unknown\",\"provider\":\"x\",\"evidence\":\"QUJD\"}"),
		     CL_ERR_UNSUPPORTED);
	CHECK_EQ_INT(parse("{\"format\":\"snp\",\"provider\":\"\",\"evidence\":\"QUJD\"}"),
		     CL_ERR_MALFORMED);
	CHECK_EQ_INT(parse("{\"format\":\"snp\",\"provider\":\"a\\u0000b\",\"evidence\":\"QUJD\"}"),
		     CL_ERR_MALFORMED);
	CHECK_EQ_INT(
		parse("{\"format\":\"snp\",\"provider\":\"0123456789012345678901234567890123\","
		      "\"evidence\":\"QUJD\"}"),
		CL_ERR_MALFORMED);
	CHECK_EQ_INT(parse("[\"snp\"]"), CL_ERR_MALFORMED);
	CHECK_EQ_INT(parse("{\"format\":\"snp\"} trailing"), CL_ERR_MALFORMED);

	/* Oversized: evidence beyond CL_MAX_EVIDENCE, certs beyond their cap, the whole text. */
	{
		size_t ev_len = CL_MAX_EVIDENCE + 3;
		uint8_t *ev = calloc(1, ev_len);

		t = envelope("snp", "x", ev, ev_len, NULL, NULL, 0);
		CHECK(strlen(t) <= CL_MAX_ENVELOPE);
		CHECK_EQ_INT(parse(t), CL_ERR_MALFORMED);
		free(t);
		t = envelope("snp", "x", ev, 10, "certs", ev, CL_MAX_ENVELOPE_CERTS + 1);
		CHECK_EQ_INT(parse(t), CL_ERR_MALFORMED);
		free(t);
		t = envelope("snp", "x", ev, 10, "certs", ev, CL_MAX_ENVELOPE_CERTS);
		CHECK_EQ_INT(parse(t), CL_OK);
		free(t);
		free(ev);
		big = malloc(CL_MAX_ENVELOPE + 2);
		memset(big, ' ', CL_MAX_ENVELOPE + 1);
		big[0] = '{';
		big[CL_MAX_ENVELOPE] = '}';
		big[CL_MAX_ENVELOPE + 1] = 0;
		CHECK_EQ_INT(parse(big), CL_ERR_MALFORMED);
		CHECK(cl_envelope_detect((const uint8_t *)big, strlen(big)));
		free(big);
	}

	/* Detection: raw evidence is not an envelope, a JSON object is. */
	CHECK(!cl_envelope_detect(report.data, report.len));
	CHECK(cl_envelope_detect((const uint8_t *)" \n{", 3));
	CHECK(!cl_envelope_detect((const uint8_t *)"  ", 2));
	CHECK(!cl_envelope_detect((const uint8_t *)"", 0));
}

static size_t starts[8], nstarts;

static void put_event(struct cl_buf *log, uint8_t rtmr[CL_DEVTEE_RTMRS][CL_DEVTEE_HASH_LEN],
		      uint32_t idx, const char *data)
{
	uint8_t d[CL_DEVTEE_HASH_LEN];
	uint16_t l = (uint16_t)strlen(data);

	CHECK_EQ_INT(cl_digest(CL_SHA384, data, l, d), CL_OK);
	starts[nstarts++] = log->len;
	CHECK_EQ_INT(cl_buf_append(log, &idx, 4), CL_OK);
	CHECK_EQ_INT(cl_buf_append(log, d, sizeof(d)), CL_OK);
	CHECK_EQ_INT(cl_buf_append(log, &l, 2), CL_OK);
	CHECK_EQ_INT(cl_buf_append(log, data, l), CL_OK);
	CHECK_EQ_INT(cl_devtee_extend(rtmr[idx], d), CL_OK);
}

static void test_devtee(void)
{
	char dir[4200], p[4300];
	EVP_PKEY *key = NULL;
	struct cl_buf root = {0}, log = {0};
	struct cl_devtee_report rep = {0};
	uint8_t out[CL_DEVTEE_REPORT_LEN];
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result r = {0};
	char *t = NULL;

	snprintf(dir, sizeof(dir), "%s/devtee", tmpdir);
	CHECK_EQ_INT(cl_devtee_root_load(dir, &key, NULL), CL_OK);
	snprintf(p, sizeof(p), "%s/root.pem", dir);
	CHECK_EQ_INT(cl_read_file(p, 0, &root), CL_OK);
	o.devtee.root = (const char *)root.data;

	rep.version = CL_DEVTEE_VERSION;
	memset(rep.measurement, 0x11, sizeof(rep.measurement));
	put_event(&log, rep.rtmr, 2, "app config v1");
	put_event(&log, rep.rtmr, 3, "model weights");
	put_event(&log, rep.rtmr, 2, "");
	CHECK_EQ_INT(cl_devtee_report_sign(&rep, key, out), CL_OK);

	t = envelope("devtee", "devtee", out, sizeof(out), "eventlog", log.data, log.len);
	CHECK_EQ_INT(verify_text(t, &o, &r), CL_OK);
	CHECK_EQ_INT(r.format, CL_FORMAT_DEVTEE);
	CHECK_EQ_INT((int)json_array_size(json_object_get(r.claims, "eventlog")), 3);
	CHECK_STR(json_string_value(json_object_get(
			  json_array_get(json_object_get(r.claims, "eventlog"), 1), "data")),
		  "6d6f64656c2077656967687473");
	cl_verify_result_free(&r);
	free(t);

	/* Without a log the report still verifies; its registers are simply unexplained. */
	t = envelope("devtee", "devtee", out, sizeof(out), NULL, NULL, 0);
	CHECK_EQ_INT(verify_text(t, &o, &r), CL_OK);
	CHECK(json_object_get(r.claims, "eventlog") == NULL);
	cl_verify_result_free(&r);
	free(t);

	/* A flipped bit in any index or digest: rejected. Event data is not
	 * hashed into the registers, so only its length field matters here. */
	for (size_t ev = 0; ev < nstarts; ev++) {
		for (size_t i = starts[ev]; i < starts[ev] + 4 + CL_DEVTEE_HASH_LEN; i++) {
			log.data[i] ^= 0x01;
			t = envelope("devtee", "devtee", out, sizeof(out), "eventlog", log.data,
				     log.len);
			CHECK(verify_text(t, &o, &r) < 0);
			cl_verify_result_free(&r);
			free(t);
			log.data[i] ^= 0x01;
		}
	}
	/* Every shortening. */
	for (size_t k = 0; k < log.len; k++) {
		t = envelope("devtee", "devtee", out, sizeof(out), "eventlog", log.data, k);
		CHECK(verify_text(t, &o, &r) < 0);
		cl_verify_result_free(&r);
		free(t);
	}
	/* An empty log claims registers that are all zero. */
	t = envelope("devtee", "devtee", out, sizeof(out), "eventlog", log.data, 0);
	CHECK_EQ_INT(verify_text(t, &o, &r), CL_ERR_MISMATCH);
	CHECK(strstr(r.reason, "event log replay does not match") != NULL);
	cl_verify_result_free(&r);
	free(t);
	/* The wrong root still rejects before the log is looked at. */
	o.devtee.root = NULL;
	t = envelope("devtee", "devtee", out, sizeof(out), "eventlog", log.data, log.len);
	CHECK(verify_text(t, &o, &r) < 0);
	cl_verify_result_free(&r);
	o.devtee.root = (const char *)root.data;
	free(t);
	/* A log or certificates beside the wrong kind of evidence. */
	t = envelope("devtee", "devtee", out, sizeof(out), "certs", log.data, log.len);
	CHECK_EQ_INT(verify_text(t, &o, &r), CL_ERR_MALFORMED);
	cl_verify_result_free(&r);
	free(t);
	t = envelope("snp", "x", report.data, report.len, "eventlog", log.data, log.len);
	CHECK_EQ_INT(verify_text(t, &o, &r), CL_ERR_MALFORMED);
	cl_verify_result_free(&r);
	free(t);

	EVP_PKEY_free(key);
	cl_buf_free(&root);
	cl_buf_free(&log);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

int main(void)
{
	if (!mkdtemp(tmpdir))
		return 2;
	snprintf(cache_dir, sizeof(cache_dir), "%s/cache", tmpdir);
	report = vector_read(TRU "test-report.bin");
	vcek = vector_read(TRU "test-vcek.der");
	vlek_report = vector_read(TRU "test-vlek-report.bin");
	vlek = vector_read(TRU "test-vlek.der");

	RUN(test_parse);
	RUN(test_certtable);
	RUN(test_snp);
	RUN(test_devtee);

	cl_buf_free(&report);
	cl_buf_free(&vcek);
	cl_buf_free(&vlek_report);
	cl_buf_free(&vlek);
	nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
	return test_done("envelope");
}
