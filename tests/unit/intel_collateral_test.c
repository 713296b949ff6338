/*
 * Intel DCAP collateral: verification of the real dcap-qvl collateral at the
 * times its windows allow, tampering, PCK extensions, TCB status of the real
 * quotes, and the PCS directory layout built from the same collateral.
 */
#include <openssl/pem.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cloister/crypto.h"
#include "cloister/endorse.h"
#include "endorse/intel.h"
#include "test.h"

#define TDX_COLL     "tdx/dcap-qvl/tdx_quote_collateral.json"
#define TDX_OLD_COLL "tdx/dcap-qvl/tdx_quote_outdated_collateral.json"
#define SGX_COLL     "sgx/dcap-qvl/sgx_quote_collateral.json"

static int64_t T(const char *s)
{
	int64_t t = 0;

	if (cl_time_parse(s, &t) != CL_OK)
		abort();
	return t;
}

/* ------------------------------------------------- minimal quote reading */

/*
 * Only what TCB evaluation needs, read with the bounded reader: the report
 * body fields, the QE report and the PCK leaf (first PEM block of the
 * certification data).
 */
static int quote_input(const char *rel, struct cl_intel_tcb_input *in, X509 **pck)
{
	struct cl_buf b = vector_read(rel);
	struct cl_reader r = cl_reader_make(b.data, b.len), body, qe;
	uint16_t version = 0, u16 = 0;
	uint32_t tee = 0, u32 = 0;
	const uint8_t *pem = NULL;
	int rc = -1;

	memset(in, 0, sizeof(*in));
	if (cl_read_u16le(&r, &version) || cl_read_skip(&r, 2) || cl_read_u32le(&r, &tee) ||
	    cl_read_skip(&r, 40))
		goto out;
	in->is_tdx = tee == 0x81;
	if (version == 5 && (cl_read_u16le(&r, &u16) || cl_read_u32le(&r, &u32)))
		goto out;
	if (cl_read_sub(&r, in->is_tdx ? (version == 5 ? u32 : 584) : 384, &body))
		goto out;
	if (in->is_tdx) {
		if (cl_read_bytes(&body, in->tee_tcb_svn, 16) || cl_read_skip(&body, 48) ||
		    cl_read_bytes(&body, in->mr_signer_seam, 48) ||
		    cl_read_bytes(&body, in->seam_attributes, 8))
			goto out;
	}
	/* signature data: length, signature, attestation key */
	if (cl_read_u32le(&r, &u32) || cl_read_skip(&r, 128))
		goto out;
	if (version >= 4 && (cl_read_u16le(&r, &u16) || u16 != 6 || cl_read_u32le(&r, &u32)))
		goto out;
	if (cl_read_sub(&r, 384, &qe) || cl_read_skip(&qe, 16) ||
	    cl_read_u32le(&qe, &in->qe_miscselect) || cl_read_skip(&qe, 28) ||
	    cl_read_bytes(&qe, in->qe_attributes, 16) || cl_read_skip(&qe, 64) ||
	    cl_read_bytes(&qe, in->qe_mrsigner, 32) || cl_read_skip(&qe, 96) ||
	    cl_read_u16le(&qe, &in->qe_isv_prod_id) || cl_read_u16le(&qe, &in->qe_isv_svn))
		goto out;
	if (cl_read_skip(&r, 64) || cl_read_u16le(&r, &u16) || cl_read_skip(&r, u16) ||
	    cl_read_u16le(&r, &u16) || u16 != 5 || cl_read_u32le(&r, &u32) ||
	    cl_read_ref(&r, u32, &pem))
		goto out;
	if (cl_x509_from_any(pem, u32, pck) != CL_OK || cl_intel_pck_info(*pck, &in->pck) != CL_OK)
		goto out;
	rc = 0;
out:
	cl_buf_free(&b);
	return rc;
}

/* --------------------------------------------------------------- helpers */

static int load_verify(const char *rel, int64_t at)
{
	struct cl_intel_collateral *c = NULL;
	int rc = cl_intel_collateral_load(vector_path(rel), &c);

	if (rc == CL_OK)
		rc = cl_intel_collateral_verify(c, at);
	cl_intel_collateral_free(c);
	return rc;
}

static int eval(const char *coll, const char *quote, int64_t at, char status[48], json_t *adv)
{
	struct cl_intel_collateral *c = NULL;
	struct cl_intel_tcb_input in;
	X509 *pck = NULL;
	int rc = quote_input(quote, &in, &pck) == 0 ? CL_OK : CL_ERR_MALFORMED;

	if (rc == CL_OK)
		rc = cl_intel_collateral_load(vector_path(coll), &c);
	if (rc == CL_OK)
		rc = cl_intel_collateral_verify(c, at);
	if (rc == CL_OK)
		rc = cl_intel_tcb_evaluate(c, &in, status, adv);
	cl_intel_collateral_free(c);
	X509_free(pck);
	return rc;
}

/* ----------------------------------------------------------------- tests */

static void test_verify_windows(void)
{
	CHECK_EQ_INT(load_verify(TDX_COLL, T("2025-07-01T00:00:00Z")), CL_OK);
	/* again: served from the verified-collateral cache */
	CHECK_EQ_INT(load_verify(TDX_COLL, T("2025-07-01T00:00:00Z")), CL_OK);
	CHECK_EQ_INT(load_verify(TDX_COLL, T("2026-07-01T00:00:00Z")), CL_ERR_EXPIRED);
	/* before the TCB info was issued */
	CHECK_EQ_INT(load_verify(TDX_COLL, T("2025-06-01T00:00:00Z")), CL_ERR_EXPIRED);
	CHECK_EQ_INT(load_verify(SGX_COLL, T("2025-07-01T00:00:00Z")), CL_OK);
	CHECK_EQ_INT(load_verify(TDX_OLD_COLL, T("2026-03-01T00:00:00Z")), CL_OK);
	CHECK_EQ_INT(load_verify(TDX_OLD_COLL, T("2025-07-01T00:00:00Z")), CL_ERR_EXPIRED);
	/* cached core, time outside its window: still expired */
	CHECK_EQ_INT(load_verify(TDX_COLL, T("2025-07-20T00:00:00Z")), CL_ERR_EXPIRED);
	CHECK(strstr(cl_error_detail(), "not valid at") != NULL);
}

static void test_pck_info(void)
{
	struct cl_intel_tcb_input in;
	X509 *pck = NULL;
	static const uint8_t fmspc[6] = {0x00, 0xA0, 0x67, 0x11, 0x00, 0x00};
	static const uint8_t cpusvn[16] = {11, 11, 2, 2, 255, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
	static const uint8_t ppid[4] = {0xD0, 0x4E, 0xC0, 0x6D};
	static const uint8_t tdx_fmspc[6] = {0xB0, 0xC0, 0x6F, 0x00, 0x00, 0x00};

	/* values read by hand from `openssl asn1parse -strparse` of the extension */
	CHECK_EQ_INT(quote_input("sgx/dcap-qvl/sgx_quote", &in, &pck), 0);
	CHECK(memcmp(in.pck.fmspc, fmspc, 6) == 0);
	CHECK_EQ_INT(in.pck.pcesvn, 13);
	CHECK(memcmp(in.pck.cpusvn, cpusvn, 16) == 0);
	CHECK(in.pck.pceid[0] == 0 && in.pck.pceid[1] == 0);
	CHECK(memcmp(in.pck.ppid, ppid, 4) == 0);
	X509_free(pck);
	pck = NULL;
	CHECK_EQ_INT(quote_input("tdx/dcap-qvl/tdx_quote", &in, &pck), 0);
	CHECK(memcmp(in.pck.fmspc, tdx_fmspc, 6) == 0);
	CHECK_EQ_INT(in.pck.pcesvn, 11);
	X509_free(pck);
	pck = NULL;
	/* a certificate without the extension (the Intel root) */
	CHECK_EQ_INT(cl_intel_pck_info(cl_intel_root(), &in.pck), CL_ERR_COLLATERAL);
}

static void test_tcb_status(void)
{
	char status[48] = "";
	json_t *adv = json_array();

	CHECK_EQ_INT(
		eval(SGX_COLL, "sgx/dcap-qvl/sgx_quote", T("2025-07-01T00:00:00Z"), status, adv),
		CL_OK);
	CHECK_STR(status, "ConfigurationAndSWHardeningNeeded");
	CHECK_EQ_INT(json_array_size(adv), 2);
	CHECK_STR(json_string_value(json_array_get(adv, 0)), "INTEL-SA-00289");
	CHECK_STR(json_string_value(json_array_get(adv, 1)), "INTEL-SA-00615");
	json_array_clear(adv);

	CHECK_EQ_INT(
		eval(TDX_COLL, "tdx/dcap-qvl/tdx_quote", T("2025-07-01T00:00:00Z"), status, adv),
		CL_OK);
	CHECK_STR(status, "UpToDate");
	CHECK_EQ_INT(json_array_size(adv), 0);

	CHECK_EQ_INT(eval(TDX_OLD_COLL, "tdx/dcap-qvl/tdx_quote_outdated",
			  T("2026-03-01T00:00:00Z"), status, adv),
		     CL_ERR_TCB);
	CHECK(strstr(cl_error_detail(), "no matching TCB level") != NULL);

	/* wrong collateral for the platform */
	CHECK(eval(SGX_COLL, "tdx/dcap-qvl/tdx_quote", T("2025-07-01T00:00:00Z"), status, adv) < 0);
	CHECK(eval(TDX_OLD_COLL, "tdx/dcap-qvl/tdx_quote", T("2026-03-01T00:00:00Z"), status, adv) <
	      0);
	json_decref(adv);
}

static void test_evaluate_needs_verify(void)
{
	struct cl_intel_collateral *c = NULL;
	struct cl_intel_tcb_input in;
	X509 *pck = NULL;
	char status[48];

	CHECK_EQ_INT(quote_input("tdx/dcap-qvl/tdx_quote", &in, &pck), 0);
	CHECK_EQ_INT(cl_intel_collateral_load(vector_path(TDX_COLL), &c), CL_OK);
	CHECK_EQ_INT(cl_intel_tcb_evaluate(c, &in, status, NULL), CL_ERR_ARG);
	CHECK_EQ_INT(cl_intel_collateral_verify(c, T("2026-07-01T00:00:00Z")), CL_ERR_EXPIRED);
	CHECK_EQ_INT(cl_intel_tcb_evaluate(c, &in, status, NULL), CL_ERR_ARG);
	cl_intel_collateral_free(c);
	X509_free(pck);
}

/* Re-serialise the collateral JSON with one field replaced. */
static char *with_field(json_t *root, const char *key, const char *val, size_t len, size_t *outlen)
{
	json_t *copy = json_deep_copy(root);
	char *s = NULL;

	json_object_set_new(copy, key, json_stringn(val, len));
	s = json_dumps(copy, JSON_COMPACT);
	*outlen = s ? strlen(s) : 0;
	json_decref(copy);
	return s;
}

static void edit_components(json_t *root, int extend, struct cl_intel_tcb_input *in)
{
	const char *tcb = json_string_value(json_object_get(root, "tcb_info"));
	const char *k = strstr(tcb, "\"tdxtcbcomponents\":[");
	struct cl_intel_collateral *c = NULL;
	char *edited = malloc(strlen(tcb) + 16), *doc = NULL, status[48];
	size_t pre = 0, n = 0;

	CHECK(k != NULL && edited != NULL);
	if (!k || !edited)
		return;
	pre = (size_t)(k - tcb) + strlen("\"tdxtcbcomponents\":[");
	memcpy(edited, tcb, pre);
	if (extend) {
		strcpy(edited + pre, "{\"svn\":0},");
		strcat(edited, tcb + pre);
	} else {
		/* drop the first component: everything up to and including "}," */
		const char *next = strstr(tcb + pre, "},");

		strcpy(edited + pre, next + 2);
	}
	doc = with_field(root, "tcb_info", edited, strlen(edited), &n);
	CHECK_EQ_INT(cl_intel_collateral_parse_json((const uint8_t *)doc, n, &c), CL_OK);
	/* the signature no longer covers the text */
	CHECK_EQ_INT(cl_intel_collateral_verify(c, T("2025-07-01T00:00:00Z")), CL_ERR_SIGNATURE);
	CHECK_EQ_INT(cl_intel_tcb_evaluate_unverified(c, in, status, NULL), CL_ERR_MALFORMED);
	CHECK(strstr(cl_error_detail(), "TDX component count mismatch") != NULL);
	cl_intel_collateral_free(c);
	free(doc);
	free(edited);
}

static void test_component_count(void)
{
	struct cl_buf b = vector_read(TDX_COLL);
	json_t *root = json_loadb((const char *)b.data, b.len, 0, NULL);
	struct cl_intel_tcb_input in;
	X509 *pck = NULL;

	CHECK(root != NULL);
	CHECK_EQ_INT(quote_input("tdx/dcap-qvl/tdx_quote", &in, &pck), 0);
	edit_components(root, 1, &in);
	edit_components(root, 0, &in);
	json_decref(root);
	X509_free(pck);
	cl_buf_free(&b);
}

/* Change one character to a different value of the same alphabet. */
static char flip(char ch, int hex)
{
	static const char b64[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const char *p = NULL;

	if (hex) {
		int v = ch >= '0' && ch <= '9' ? ch - '0' : (ch | 0x20) - 'a' + 10;

		return "0123456789abcdef"[v ^ 8];
	}
	/* base64: flip the sextet's top bit, which every position uses */
	p = ch ? strchr(b64, ch) : NULL;
	if (p)
		return b64[(p - b64) ^ 0x20];
	return (char)(ch ^ 0x01);
}

/*
 * Flip bytes of every field and demand that parse + verify fails. Exempt:
 * whitespace of the PEM chains (the base64 decoder skips it), so those bytes
 * are not flipped. Every other byte is signed (TCB info, QE identity, CRL
 * DER), is a signature, or is part of a certificate that must be the exact
 * path to the pinned root; the long strings are sampled densely rather than
 * exhaustively to keep the sanitizer run short.
 */
static void test_tamper(void)
{
	static const char *const fields[] = {"tcb_info",
					     "qe_identity",
					     "tcb_info_signature",
					     "qe_identity_signature",
					     "root_ca_crl",
					     "pck_crl",
					     "tcb_info_issuer_chain",
					     "qe_identity_issuer_chain",
					     "pck_crl_issuer_chain"};
	struct cl_buf b = vector_read(TDX_COLL);
	json_t *root = json_loadb((const char *)b.data, b.len, 0, NULL);
	int64_t at = T("2025-07-01T00:00:00Z");
	int tried = 0, accepted = 0;

	for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
		const char *v = json_string_value(json_object_get(root, fields[f]));
		size_t len = strlen(v);
		int hex = strstr(fields[f], "signature") || strstr(fields[f], "crl") ? 1 : 0;
		int pem = strstr(fields[f], "chain") != NULL;
		char *copy = strdup(v);

		hex = hex && !pem;
		for (size_t i = 0; i < len; i += (len > 600 && i > 64 && i + 64 < len) ? 11 : 1) {
			struct cl_intel_collateral *c = NULL;
			size_t n = 0;
			char *doc = NULL;
			int rc = 0;

			if (pem && (v[i] == '\n' || v[i] == '\r' || v[i] == ' '))
				continue;
			copy[i] = flip(v[i], hex);
			doc = with_field(root, fields[f], copy, len, &n);
			copy[i] = v[i];
			rc = cl_intel_collateral_parse_json((const uint8_t *)doc, n, &c);
			if (rc == CL_OK)
				rc = cl_intel_collateral_verify(c, at);
			tried++;
			if (rc == CL_OK) {
				accepted++;
				fprintf(stderr, "tamper accepted: %s byte %zu\n", fields[f], i);
			}
			cl_intel_collateral_free(c);
			free(doc);
		}
		free(copy);
	}
	CHECK(tried > 1000);
	CHECK_EQ_INT(accepted, 0);

	/* swapped issuer chains: the PCK CRL chain cannot sign the TCB info */
	{
		const char *crl_chain =
			json_string_value(json_object_get(root, "pck_crl_issuer_chain"));
		struct cl_intel_collateral *c = NULL;
		size_t n = 0;
		char *doc =
			with_field(root, "tcb_info_issuer_chain", crl_chain, strlen(crl_chain), &n);

		CHECK_EQ_INT(cl_intel_collateral_parse_json((const uint8_t *)doc, n, &c), CL_OK);
		CHECK_EQ_INT(cl_intel_collateral_verify(c, at), CL_ERR_SIGNATURE);
		cl_intel_collateral_free(c);
		free(doc);
	}
	/* truncated document */
	for (size_t cut = 0; cut < b.len; cut += 997) {
		struct cl_intel_collateral *c = NULL;

		CHECK(cl_intel_collateral_parse_json(b.data, cut, &c) < 0);
	}
	json_decref(root);
	cl_buf_free(&b);
}

/* ------------------------------------------------------ PCS directory form */

static int write_file(const char *dir, const char *name, const void *p, size_t n)
{
	char path[4096];
	FILE *f = NULL;
	int ok = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f)
		return -1;
	ok = fwrite(p, 1, n, f) == n;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* Write the dcap-qvl collateral as PCS responses (bodies as PCS serves them). */
static int make_pcs_dir(const char *rel, const char *dir, const char *ws)
{
	struct cl_buf b = vector_read(rel);
	json_t *r = json_loadb((const char *)b.data, b.len, 0, NULL);
	char *body = NULL;
	uint8_t *der = NULL;
	size_t dlen = 0;
	int rc = 0;
#define G(k) json_string_value(json_object_get(r, k))

	mkdir(dir, 0700);
	if (asprintf(&body, "{%s\"tcbInfo\"%s:%s%s,\"signature\":\"%s\"}", ws, ws, ws,
		     G("tcb_info"), G("tcb_info_signature")) < 0)
		return -1;
	rc |= write_file(dir, "tcbinfo.json", body, strlen(body));
	free(body);
	if (asprintf(&body, "{\"enclaveIdentity\":%s,%s\"signature\":\"%s\"}%s", G("qe_identity"),
		     ws, G("qe_identity_signature"), ws) < 0)
		return -1;
	rc |= write_file(dir, "qeidentity.json", body, strlen(body));
	free(body);
	rc |= write_file(dir, "tcbinfo-issuer-chain.pem", G("tcb_info_issuer_chain"),
			 strlen(G("tcb_info_issuer_chain")));
	rc |= write_file(dir, "qeidentity-issuer-chain.pem", G("qe_identity_issuer_chain"),
			 strlen(G("qe_identity_issuer_chain")));
	rc |= write_file(dir, "pckcrl-issuer-chain.pem", G("pck_crl_issuer_chain"),
			 strlen(G("pck_crl_issuer_chain")));
	rc |= cl_hex_decode(G("pck_crl"), strlen(G("pck_crl")), &der, &dlen);
	rc |= write_file(dir, "pckcrl.der", der, dlen);
	free(der);
	/* the root CA CRL hex-encoded, as a PCCS serves it */
	rc |= write_file(dir, "rootcacrl.der", G("root_ca_crl"), strlen(G("root_ca_crl")));
#undef G
	json_decref(r);
	cl_buf_free(&b);
	return rc ? -1 : 0;
}

static void test_pcs_dir(void)
{
	char dir[] = "/tmp/cloister-intel-XXXXXX";
	char sub[4096];
	struct cl_intel_collateral *c = NULL;
	struct cl_intel_tcb_input in;
	X509 *pck = NULL;
	char status[48];

	CHECK(mkdtemp(dir) != NULL);
	snprintf(sub, sizeof(sub), "%s/ws", dir);
	/* whitespace between members: the signed span is still found exactly */
	CHECK_EQ_INT(make_pcs_dir(TDX_COLL, sub, " \n"), 0);
	CHECK_EQ_INT(cl_intel_collateral_load(sub, &c), CL_OK);
	CHECK_EQ_INT(cl_intel_collateral_verify(c, T("2025-07-01T00:00:00Z")), CL_OK);
	CHECK_EQ_INT(quote_input("tdx/dcap-qvl/tdx_quote", &in, &pck), 0);
	CHECK_EQ_INT(cl_intel_tcb_evaluate(c, &in, status, NULL), CL_OK);
	CHECK_STR(status, "UpToDate");
	cl_intel_collateral_free(c);
	c = NULL;
	X509_free(pck);

	/* a duplicate key in the body is refused */
	{
		const char *dup =
			"{\"tcbInfo\":{\"id\":\"TDX\"},\"tcbInfo\":{},\"signature\":\"00\"}";

		CHECK_EQ_INT(write_file(sub, "tcbinfo.json", dup, strlen(dup)), 0);
		CHECK_EQ_INT(cl_intel_collateral_load(sub, &c), CL_ERR_MALFORMED);
	}
	/* a missing file */
	snprintf(sub, sizeof(sub), "%s/ws/qeidentity.json", dir);
	unlink(sub);
	snprintf(sub, sizeof(sub), "%s/ws", dir);
	CHECK_EQ_INT(cl_intel_collateral_load(sub, &c), CL_ERR_COLLATERAL);
	snprintf(sub, sizeof(sub), "rm -rf '%s'", dir);
	CHECK_EQ_INT(system(sub), 0);
}

static void test_member_span(void)
{
	static const char body[] =
		" { \"a\\\"tcbInfo\" : [1, {\"x\":\"}\"}], \"tcbInfo\":{\"k\":\"v}\\\"\"} } ";
	size_t off = 0, len = 0;

	CHECK_EQ_INT(cl_intel_json_member_span((const uint8_t *)body, strlen(body), "tcbInfo", &off,
					       &len),
		     CL_OK);
	CHECK(len == strlen("{\"k\":\"v}\\\"\"}") &&
	      memcmp(body + off, "{\"k\":\"v}\\\"\"}", len) == 0);
	CHECK_EQ_INT(cl_intel_json_member_span((const uint8_t *)body, strlen(body) - 3, "tcbInfo",
					       &off, &len),
		     CL_ERR_TRUNCATED);
	CHECK(cl_intel_json_member_span((const uint8_t *)"{\"tcbInfo\":1} x", 15, "tcbInfo", &off,
					&len) < 0);
	CHECK(cl_intel_json_member_span((const uint8_t *)"{\"other\":1}", 11, "tcbInfo", &off,
					&len) < 0);
}

/* ----------------------------------------------- fetch from a loopback PCS */

static int count_lines(const char *path)
{
	FILE *f = fopen(path, "r");
	int n = 0, ch = 0;

	if (!f)
		return 0;
	while ((ch = fgetc(f)) != EOF)
		n += ch == '\n';
	fclose(f);
	return n;
}

static void test_fetch(void)
{
	char dir[] = "/tmp/cloister-pcs-XXXXXX";
	char port_file[4096], log_file[4096], url[128], cmd[8192];
	static const uint8_t fmspc[6] = {0xB0, 0xC0, 0x6F, 0x00, 0x00, 0x00};
	struct cl_intel_collateral *c = NULL;
	struct cl_buf port = {0};
	pid_t pid = 0;
	int64_t at = T("2025-07-01T00:00:00Z");

	if (system("python3 -c 1 >/dev/null 2>&1") != 0) {
		fprintf(stderr, "    python3 not available: fetch test skipped\n");
		return;
	}
	CHECK(mkdtemp(dir) != NULL);
	snprintf(port_file, sizeof(port_file), "%s/port", dir);
	snprintf(log_file, sizeof(log_file), "%s/requests", dir);
	pid = fork();
	if (pid == 0) {
		execlp("python3", "python3", "tests/e2e/pcs_server.py", vector_path(TDX_COLL),
		       port_file, log_file, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; i < 200 && access(port_file, R_OK) != 0; i++)
		usleep(20000);
	CHECK_EQ_INT(cl_read_file(port_file, 16, &port), CL_OK);
	snprintf(url, sizeof(url), "http://127.0.0.1:%s/", port.data ? (char *)port.data : "0");

	CHECK_EQ_INT(cl_intel_collateral_fetch_at(url, dir, 1, fmspc, "platform", at, &c), CL_OK);
	CHECK_EQ_INT(cl_intel_collateral_verify(c, at), CL_OK);
	cl_intel_collateral_free(c);
	c = NULL;
	CHECK_EQ_INT(count_lines(log_file), 4);
	/* valid in the cache at `at`: no new requests */
	CHECK_EQ_INT(cl_intel_collateral_fetch_at(url, dir, 1, fmspc, "platform", at, &c), CL_OK);
	CHECK_EQ_INT(cl_intel_collateral_verify(c, at), CL_OK);
	cl_intel_collateral_free(c);
	c = NULL;
	CHECK_EQ_INT(count_lines(log_file), 4);
	/* not valid at a later time: fetched again (and still expired) */
	CHECK_EQ_INT(cl_intel_collateral_fetch_at(url, dir, 1, fmspc, "platform",
						  T("2026-07-01T00:00:00Z"), &c),
		     CL_OK);
	CHECK_EQ_INT(count_lines(log_file), 8);
	CHECK_EQ_INT(cl_intel_collateral_verify(c, T("2026-07-01T00:00:00Z")), CL_ERR_EXPIRED);
	cl_intel_collateral_free(c);
	c = NULL;
	/* an FMSPC the server does not know */
	{
		static const uint8_t other[6] = {1, 2, 3, 4, 5, 6};

		CHECK_EQ_INT(cl_intel_collateral_fetch_at(url, dir, 1, other, "platform", at, &c),
			     CL_ERR_NOT_FOUND);
	}
	CHECK_EQ_INT(cl_intel_collateral_fetch_at(url, dir, 1, fmspc, "bogus", at, &c), CL_ERR_ARG);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	cl_buf_free(&port);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK_EQ_INT(system(cmd), 0);
}

/* The shared caches under concurrent use, with evictions (several sets). */
static char *thread_paths[3]; /* resolved up front: vector_path is not thread-safe */

static void *thread_main(void *arg)
{
	static const char *const times[] = {"2025-07-01T00:00:00Z", "2025-07-01T00:00:00Z",
					    "2026-03-01T00:00:00Z"};
	long bad = 0;

	for (int i = 0; i < 150; i++) {
		int k = (i + (int)(long)arg) % 3;
		struct cl_intel_collateral *c = NULL;
		int rc = cl_intel_collateral_load(thread_paths[k], &c);

		if (rc == CL_OK)
			rc = cl_intel_collateral_verify(c, T(times[k]));
		cl_intel_collateral_free(c);
		bad += rc != CL_OK;
	}
	return (void *)bad;
}

static void test_threads(void)
{
	pthread_t th[4];
	long bad = 0;

	thread_paths[0] = strdup(vector_path(TDX_COLL));
	thread_paths[1] = strdup(vector_path(SGX_COLL));
	thread_paths[2] = strdup(vector_path(TDX_OLD_COLL));
	for (long i = 0; i < 4; i++)
		CHECK(pthread_create(&th[i], NULL, thread_main, (void *)i) == 0);
	for (int i = 0; i < 4; i++) {
		void *r = NULL;

		pthread_join(th[i], &r);
		bad += (long)r;
	}
	CHECK_EQ_INT(bad, 0);
	for (int i = 0; i < 3; i++)
		free(thread_paths[i]);
}

/* Repeat verifications must cost little: report the rate. */
static void test_speed(void)
{
	struct cl_intel_tcb_input in;
	X509 *pck = NULL;
	struct timespec a, z;
	int n = 2000, ok = 0;
	double secs = 0;
	char status[48];

	CHECK_EQ_INT(quote_input("tdx/dcap-qvl/tdx_quote", &in, &pck), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < n; i++) {
		struct cl_intel_collateral *c = NULL;

		if (cl_intel_collateral_load(vector_path(TDX_COLL), &c) == CL_OK &&
		    cl_intel_collateral_verify(c, T("2025-07-01T00:00:00Z")) == CL_OK &&
		    cl_intel_collateral_crls(c) != NULL &&
		    cl_intel_tcb_evaluate(c, &in, status, NULL) == CL_OK)
			ok++;
		cl_intel_collateral_free(c);
	}
	clock_gettime(CLOCK_MONOTONIC, &z);
	secs = (double)(z.tv_sec - a.tv_sec) + (double)(z.tv_nsec - a.tv_nsec) / 1e9;
	fprintf(stderr, "    load+verify+evaluate (cached): %.1f us each\n", secs * 1e6 / n);
	CHECK_EQ_INT(ok, n);

	/*
	 * Distinct bytes each time (trailing whitespace pattern), so every call
	 * parses and checks every signature; only issuer chains come from cache.
	 */
	{
		struct cl_buf b = vector_read(TDX_COLL);
		uint8_t *doc = malloc(b.len + 16);

		memcpy(doc, b.data, b.len);
		n = 300;
		ok = 0;
		clock_gettime(CLOCK_MONOTONIC, &a);
		for (int i = 0; i < n; i++) {
			struct cl_intel_collateral *c = NULL;

			for (int j = 0; j < 16; j++)
				doc[b.len + j] = (uint8_t)(((i + 1000) >> j) & 1 ? ' ' : '\n');
			if (cl_intel_collateral_parse_json(doc, b.len + 16, &c) == CL_OK &&
			    cl_intel_collateral_verify(c, T("2025-07-01T00:00:00Z")) == CL_OK &&
			    cl_intel_tcb_evaluate(c, &in, status, NULL) == CL_OK)
				ok++;
			cl_intel_collateral_free(c);
		}
		clock_gettime(CLOCK_MONOTONIC, &z);
		secs = (double)(z.tv_sec - a.tv_sec) + (double)(z.tv_nsec - a.tv_nsec) / 1e9;
		fprintf(stderr, "    parse+verify+evaluate (signatures checked): %.1f us each\n",
			secs * 1e6 / n);
		CHECK_EQ_INT(ok, n);
		free(doc);
		cl_buf_free(&b);
	}
	X509_free(pck);
}

int main(void)
{
	RUN(test_verify_windows);
	RUN(test_pck_info);
	RUN(test_tcb_status);
	RUN(test_evaluate_needs_verify);
	RUN(test_component_count);
	RUN(test_member_span);
	RUN(test_pcs_dir);
	RUN(test_tamper);
	RUN(test_fetch);
	RUN(test_threads);
	RUN(test_speed);
	return test_done("intel_collateral_test");
}
