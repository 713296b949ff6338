/*
 * The development TEE: report format and verifier, launch measurement,
 * sealing keys, request protocol, event log, and the platform itself with
 * this test binary re-executed as its workload.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/x509.h>

#include "cloister/attest.h"
#include "cloister/crypto.h"
#include "cloister/devtee.h"
#include "cloister/evidence.h"
#include "test.h"

static char tmpdir[] = "/tmp/cloister-devtee-test.XXXXXX";
static char self_path[PATH_MAX];

static void hex_to(const char *hex, uint8_t *out, size_t n)
{
	if (cl_hex_decode_exact(hex, out, n) != CL_OK)
		abort();
}

/* The PEM text of DIR/root.pem (malloc'd). */
static char *root_pem(const char *dir)
{
	char p[PATH_MAX];
	struct cl_buf b = {0};

	snprintf(p, sizeof(p), "%s/root.pem", dir);
	if (cl_read_file(p, 0, &b) != CL_OK)
		abort();
	return (char *)b.data;
}

static void state(const char *name, char *out)
{
	snprintf(out, PATH_MAX, "%s/%s", tmpdir, name);
}

static int verify(const uint8_t *ev, size_t n, const char *root, int allow_debug, const uint8_t *rd)
{
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result res = {0};
	int rc = 0;

	o.devtee.root = root;
	o.allow_debug = allow_debug;
	if (rd) {
		memcpy(o.report_data, rd, 64);
		o.have_report_data = 1;
	}
	rc = cl_verify_evidence(ev, n, &o, &res);
	cl_verify_result_free(&res);
	return rc;
}

static void make_report(EVP_PKEY *key, uint32_t flags, uint8_t out[CL_DEVTEE_REPORT_LEN])
{
	struct cl_devtee_report r = {0};

	r.version = CL_DEVTEE_VERSION;
	r.flags = flags;
	memset(r.measurement, 0x11, sizeof(r.measurement));
	memset(r.host_data, 0x22, sizeof(r.host_data));
	for (int i = 0; i < 64; i++)
		r.report_data[i] = (uint8_t)i;
	memset(r.rtmr[2], 0x33, sizeof(r.rtmr[2]));
	CHECK_EQ_INT(cl_devtee_report_sign(&r, key, out), CL_OK);
}

static void test_report(void)
{
	char a[PATH_MAX], b[PATH_MAX];
	EVP_PKEY *ka = NULL, *kb = NULL;
	X509 *ca = NULL;
	uint8_t rep[CL_DEVTEE_REPORT_LEN], bad[CL_DEVTEE_REPORT_LEN + 1], rd[64];
	struct cl_devtee_report parsed;
	char *pa = NULL, *pb = NULL, subj[256];
	int rejected = 0;

	state("a", a);
	state("b", b);
	CHECK_EQ_INT(cl_devtee_root_load(a, &ka, &ca), CL_OK);
	CHECK_EQ_INT(cl_devtee_root_load(b, &kb, NULL), CL_OK);
	if (!ka || !kb || !ca)
		return;
	X509_NAME_oneline(X509_get_subject_name(ca), subj, sizeof(subj));
	CHECK(strstr(subj, "development") != NULL);
	pa = root_pem(a);
	pb = root_pem(b);
	make_report(ka, 0, rep);

	CHECK_EQ_INT(cl_format_detect(rep, sizeof(rep)), CL_FORMAT_DEVTEE);
	CHECK_EQ_INT(cl_devtee_report_parse(rep, sizeof(rep), &parsed), CL_OK);
	CHECK_EQ_INT(parsed.host_data[0], 0x22);
	CHECK_EQ_INT(parsed.rtmr[2][47], 0x33);
	CHECK_EQ_INT(verify(rep, sizeof(rep), pa, 0, NULL), CL_OK);
	/* Only with its own root, and only when a root is given at all. */
	CHECK_EQ_INT(verify(rep, sizeof(rep), pb, 0, NULL), CL_ERR_CHAIN);
	CHECK_EQ_INT(verify(rep, sizeof(rep), NULL, 0, NULL), CL_ERR_POLICY);
	CHECK(verify(rep, sizeof(rep), "not a certificate", 0, NULL) != CL_OK);

	for (int i = 0; i < 64; i++)
		rd[i] = (uint8_t)i;
	CHECK_EQ_INT(verify(rep, sizeof(rep), pa, 0, rd), CL_OK);
	rd[63] ^= 1;
	CHECK_EQ_INT(verify(rep, sizeof(rep), pa, 0, rd), CL_ERR_MISMATCH);

	/* The checked root is cached, but its validity period is still checked
	 * against the verification time on every call, cached or not. */
	for (int bypass = 0; bypass < 2; bypass++) {
		struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
		struct cl_verify_result res = {0};

		cl_cache_bypass(bypass);
		o.format = CL_FORMAT_DEVTEE;
		o.devtee.root = pa;
		CHECK_EQ_INT(cl_verify_evidence(rep, sizeof(rep), &o, &res), CL_OK);
		cl_verify_result_free(&res);
		o.at = 7258118400; /* 2200-01-01, after the root expires */
		CHECK(cl_verify_evidence(rep, sizeof(rep), &o, &res) != CL_OK);
		cl_verify_result_free(&res);
		o.at = 86400; /* 1970, before it was made */
		CHECK(cl_verify_evidence(rep, sizeof(rep), &o, &res) != CL_OK);
		cl_verify_result_free(&res);
		/* A root cached first does not vouch for another root's reports. */
		o.at = 0;
		o.devtee.root = pb;
		CHECK(cl_verify_evidence(rep, sizeof(rep), &o, &res) != CL_OK);
		cl_verify_result_free(&res);
		cl_cache_bypass(0);
	}

	/* Every byte counts: each single-bit flip anywhere is rejected. */
	for (size_t i = 0; i < sizeof(rep); i++) {
		memcpy(bad, rep, sizeof(rep));
		bad[i] ^= 0x01;
		if (verify(bad, sizeof(rep), pa, 1, NULL) != CL_OK)
			rejected++;
	}
	CHECK_EQ_INT(rejected, CL_DEVTEE_REPORT_LEN);

	/* Truncated and trailing bytes. */
	memcpy(bad, rep, sizeof(rep));
	bad[sizeof(rep)] = 0;
	CHECK_EQ_INT(cl_devtee_report_parse(rep, sizeof(rep) - 1, &parsed), CL_ERR_TRUNCATED);
	/* Bytes after the report are unsigned: accepted, counted, never read. */
	bad[sizeof(rep)] = 0x5a;
	CHECK_EQ_INT(cl_devtee_report_parse(bad, sizeof(rep) + 1, &parsed), CL_OK);
	CHECK_EQ_INT(parsed.trailing, 1);
	CHECK_EQ_INT(verify(bad, sizeof(rep) + 1, pa, 0, NULL), CL_OK);
	CHECK(verify(rep, 0, pa, 0, NULL) != CL_OK);

	/* Debug launches are refused unless allowed. */
	make_report(ka, CL_DEVTEE_FLAG_DEBUG, rep);
	CHECK_EQ_INT(verify(rep, sizeof(rep), pa, 0, NULL), CL_ERR_POLICY);
	CHECK_EQ_INT(verify(rep, sizeof(rep), pa, 1, NULL), CL_OK);
	/* Unknown flags and versions are malformed even when signed. */
	make_report(ka, 0x2, rep);
	CHECK_EQ_INT(cl_devtee_report_parse(rep, sizeof(rep), &parsed), CL_ERR_MALFORMED);

	/* A key of another curve cannot sign. */
	{
		EVP_PKEY *p256 = EVP_EC_gen("P-256");
		struct cl_devtee_report r = {0};

		r.version = 1;
		CHECK_EQ_INT(cl_devtee_report_sign(&r, p256, rep), CL_ERR_ARG);
		EVP_PKEY_free(p256);
	}
	free(pa);
	free(pb);
	X509_free(ca);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(kb);
}

static void test_root_state(void)
{
	char a[PATH_MAX], p[PATH_MAX + 16];
	struct stat st;
	X509 *c1 = NULL, *c2 = NULL;
	uint8_t s1[32], s2[32];

	state("a", a);
	snprintf(p, sizeof(p), "%s/root.key", a);
	CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
	snprintf(p, sizeof(p), "%s/seal.key", a);
	CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600 && st.st_size == 32);
	/* Loading again gives the same root, not a new one. */
	CHECK_EQ_INT(cl_devtee_root_load(a, NULL, &c1), CL_OK);
	CHECK_EQ_INT(cl_devtee_root_load(a, NULL, &c2), CL_OK);
	CHECK(c1 && c2 && X509_cmp(c1, c2) == 0);
	/*
	 * The serial is positive and minimally encoded (a leading zero byte is
	 * padding DER parsers refuse): 16 bytes, first in 0x40..0x7f.
	 */
	{
		const ASN1_INTEGER *sn = c1 ? X509_get0_serialNumber(c1) : NULL;

		CHECK(sn && ASN1_STRING_length(sn) == 16);
		CHECK(sn && ASN1_STRING_get0_data(sn)[0] >= 0x40 &&
		      ASN1_STRING_get0_data(sn)[0] <= 0x7f);
	}
	CHECK_EQ_INT(cl_devtee_seal_secret_load(a, s1), CL_OK);
	CHECK_EQ_INT(cl_devtee_seal_secret_load(a, s2), CL_OK);
	CHECK(memcmp(s1, s2, 32) == 0);
	X509_free(c1);
	X509_free(c2);
	CHECK_EQ_INT(cl_devtee_state_dir("/x/y", p, sizeof(p)), CL_OK);
	CHECK_STR(p, "/x/y");
}

static void test_measure(void)
{
	static const char prog[] = "#!/bin/sh\necho hello\n";
	char *argv[] = {"/bin/prog", "--flag", "", NULL};
	struct cl_devtee_launch l = {0};
	uint8_t m[48], want[48], m2[48];
	uint8_t copy[sizeof(prog) - 1];

	l.program = (const uint8_t *)prog;
	l.program_len = sizeof(prog) - 1;
	l.argv = argv;
	l.argc = 3;
	l.flags = CL_DEVTEE_FLAG_DEBUG;
	CHECK_EQ_INT(cl_digest(CL_SHA384, "init-data", 9, l.host_data), CL_OK);
	CHECK_EQ_INT(cl_devtee_measure(&l, m), CL_OK);
	hex_to("ebe97ad535003392d663c8b48ef3b41ef2d6678e2dcd1ec32eeff01eb776df08"
	       "701a1f78df099faab261b4a96af293e6",
	       want, 48);
	CHECK(memcmp(m, want, 48) == 0);

	/* One byte of the program, an argument boundary, a flag: all change it. */
	memcpy(copy, prog, sizeof(copy));
	copy[5] ^= 1;
	l.program = copy;
	CHECK_EQ_INT(cl_devtee_measure(&l, m2), CL_OK);
	CHECK(memcmp(m, m2, 48) != 0);
	l.program = (const uint8_t *)prog;
	l.argc = 2;
	CHECK_EQ_INT(cl_devtee_measure(&l, m2), CL_OK);
	CHECK(memcmp(m, m2, 48) != 0);
	l.argc = 3;
	l.flags = 0;
	CHECK_EQ_INT(cl_devtee_measure(&l, m2), CL_OK);
	CHECK(memcmp(m, m2, 48) != 0);
	l.argc = 0;
	CHECK_EQ_INT(cl_devtee_measure(&l, m2), CL_ERR_ARG);
}

static void test_seal_extend(void)
{
	uint8_t secret[32], meas[48], k[32], k2[32], want[32], reg[48] = {0}, d[48], wreg[48];

	for (int i = 0; i < 32; i++)
		secret[i] = (uint8_t)i;
	memset(meas, 0xa5, sizeof(meas));
	CHECK_EQ_INT(cl_devtee_seal_key(secret, 32, meas, (const uint8_t *)"disk", 4, k), CL_OK);
	hex_to("f1808995a4001af4c92e7101463d6ad1fb9d7d1e8b077e36e5f7d1c8fb6b4548", want, 32);
	CHECK(memcmp(k, want, 32) == 0);
	meas[0] ^= 1;
	CHECK_EQ_INT(cl_devtee_seal_key(secret, 32, meas, (const uint8_t *)"disk", 4, k2), CL_OK);
	CHECK(memcmp(k, k2, 32) != 0);
	CHECK_EQ_INT(cl_devtee_seal_key(secret, 32, meas, (const uint8_t *)"", 0, k2), CL_ERR_ARG);

	memset(d, 1, sizeof(d));
	CHECK_EQ_INT(cl_devtee_extend(reg, d), CL_OK);
	hex_to("b2cdfa15c3fdc5772b099d6e1a5acb8a2eb8b94adb63393a7ae3068c8b4bd8cd"
	       "ad83d6eb649d8178d0fe7a8135d0a003",
	       wreg, 48);
	CHECK(memcmp(reg, wreg, 48) == 0);
}

static void test_protocol(void)
{
	struct cl_devtee_req q = {0}, p;
	uint8_t msg[CL_DEVTEE_MAX_MSG], big[CL_DEVTEE_MAX_EVENT + 1] = {0};
	const uint8_t *payload = NULL;
	size_t n = 0, plen = 0;
	int st = 0;

	q.op = CL_DEVTEE_OP_REPORT;
	memset(q.report_data, 7, 64);
	CHECK_EQ_INT(cl_devtee_req_encode(&q, msg, sizeof(msg), &n), CL_OK);
	CHECK_EQ_INT(n, 68);
	CHECK_EQ_INT(cl_devtee_req_parse(msg, n, &p), CL_OK);
	CHECK(p.op == CL_DEVTEE_OP_REPORT && p.report_data[63] == 7);
	/* Truncated, extended and length-lying requests. */
	for (size_t k = 0; k < n; k++)
		CHECK(cl_devtee_req_parse(msg, k, &p) != CL_OK);
	msg[n] = 0;
	CHECK(cl_devtee_req_parse(msg, n + 1, &p) != CL_OK);
	msg[2] = 63;
	CHECK(cl_devtee_req_parse(msg, 67, &p) != CL_OK);

	q.op = CL_DEVTEE_OP_EXTEND;
	q.index = 3;
	memset(q.digest, 9, 48);
	q.data = (const uint8_t *)"event";
	q.data_len = 5;
	CHECK_EQ_INT(cl_devtee_req_encode(&q, msg, sizeof(msg), &n), CL_OK);
	CHECK_EQ_INT(cl_devtee_req_parse(msg, n, &p), CL_OK);
	CHECK(p.index == 3 && p.data_len == 5 && memcmp(p.data, "event", 5) == 0);
	msg[4] = 4; /* register 4 does not exist */
	CHECK_EQ_INT(cl_devtee_req_parse(msg, n, &p), CL_ERR_MALFORMED);
	q.index = 4;
	CHECK_EQ_INT(cl_devtee_req_encode(&q, msg, sizeof(msg), &n), CL_ERR_ARG);
	q.index = 0;
	q.data = big;
	q.data_len = sizeof(big);
	CHECK_EQ_INT(cl_devtee_req_encode(&q, msg, sizeof(msg), &n), CL_ERR_ARG);

	q.op = CL_DEVTEE_OP_SEAL_KEY;
	q.data = big;
	q.data_len = 65;
	CHECK_EQ_INT(cl_devtee_req_encode(&q, msg, sizeof(msg), &n), CL_ERR_ARG);
	msg[0] = 2, msg[1] = 0, msg[2] = 65, msg[3] = 0;
	CHECK_EQ_INT(cl_devtee_req_parse(msg, 4 + 65, &p), CL_ERR_MALFORMED);
	msg[0] = 99, msg[2] = 0;
	CHECK_EQ_INT(cl_devtee_req_parse(msg, 4, &p), CL_ERR_UNSUPPORTED);

	CHECK_EQ_INT(cl_devtee_resp_encode(CL_ERR_POLICY, NULL, 0, msg, sizeof(msg), &n), CL_OK);
	CHECK_EQ_INT(cl_devtee_resp_parse(msg, n, &st, &payload, &plen), CL_OK);
	CHECK_EQ_INT(st, CL_ERR_POLICY);
	msg[0] = 0xff; /* a status that is no cl_err */
	CHECK_EQ_INT(cl_devtee_resp_parse(msg, n, &st, &payload, &plen), CL_ERR_MALFORMED);
	CHECK(cl_devtee_resp_parse(msg, 3, &st, &payload, &plen) != CL_OK);
}

static void test_eventlog(void)
{
	uint8_t log[(4 + 48 + 2 + 3) * 2 + 1], rtmr[4][48], want[48] = {0}, d[48];
	size_t n = 0, count = 0;

	memset(d, 1, sizeof(d));
	for (int e = 0; e < 2; e++) {
		uint8_t *p = log + n;

		memset(p, 0, 4);
		p[0] = 2;
		memcpy(p + 4, d, 48);
		p[52] = 3, p[53] = 0;
		memcpy(p + 54, "abc", 3);
		n += 57;
	}
	CHECK_EQ_INT(cl_devtee_eventlog_replay(log, n, rtmr, &count), CL_OK);
	CHECK_EQ_INT(count, 2);
	CHECK_EQ_INT(cl_devtee_extend(want, d), CL_OK);
	CHECK_EQ_INT(cl_devtee_extend(want, d), CL_OK);
	CHECK(memcmp(rtmr[2], want, 48) == 0);
	CHECK(rtmr[0][0] == 0 && rtmr[3][47] == 0);
	CHECK_EQ_INT(cl_devtee_eventlog_replay(log, n - 1, rtmr, NULL), CL_ERR_TRUNCATED);
	log[0] = 4;
	CHECK_EQ_INT(cl_devtee_eventlog_replay(log, n, rtmr, NULL), CL_ERR_MALFORMED);
	CHECK_EQ_INT(cl_devtee_eventlog_replay(log, 0, rtmr, &count), CL_OK);
	CHECK_EQ_INT(count, 0);
}

/* ------------------------------------------------ the platform, for real */

/* Runs inside the dev TEE: exercise the provider and the sandbox, report to a file. */
static int workload(const char *out, const char *state_dir)
{
	struct cl_attester *a = NULL;
	struct cl_attest_evidence ev = {0};
	uint8_t rd[64], k1[32], k2[32], d[48];
	char p[PATH_MAX + 16];
	FILE *f = fopen(out, "wb");
	struct iovec lv, rv;
	char byte = 0;

	if (!f)
		return 10;
	/* A binary starts non-dumpable: the platform executes an execute-only copy. */
	if (prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) != 0)
		return 20;
	/* Its own PID namespace: the workload is not the namespace's init, the platform's is. */
	if (getpid() == 1 || getppid() != 1)
		return 21;
	memset(rd, 0x5a, sizeof(rd));
	memset(d, 1, sizeof(d));
	if (cl_attest_open(NULL, &a) != CL_OK || cl_attest_kind(a) != CL_ATTEST_DEVTEE)
		return 11;
	if (cl_attest_extend(a, 1, d, "first", 5) != CL_OK)
		return 12;
	if (cl_attest_evidence(a, rd, &ev) != CL_OK || ev.format != CL_FORMAT_DEVTEE)
		return 13;
	fwrite(ev.evidence.data, 1, ev.evidence.len, f);
	fclose(f);
	if (cl_attest_derive_key(a, (const uint8_t *)"a", 1, k1) != CL_OK ||
	    cl_attest_derive_key(a, (const uint8_t *)"a", 1, k2) != CL_OK || memcmp(k1, k2, 32) ||
	    cl_attest_derive_key(a, (const uint8_t *)"b", 1, k2) != CL_OK || !memcmp(k1, k2, 32))
		return 14;
	/* The platform refuses what the protocol does not allow. */
	if (cl_attest_extend(a, 4, d, NULL, 0) == CL_OK)
		return 15;
	/* The sandbox: no key, no tracing, no reading another process's memory. */
	snprintf(p, sizeof(p), "%s/root.key", state_dir);
	if (open(p, O_RDONLY) >= 0)
		return 16;
	if (ptrace(PTRACE_TRACEME, 0, NULL, NULL) != -1 || errno != EPERM)
		return 17;
	lv.iov_base = &byte;
	lv.iov_len = 1;
	rv.iov_base = &byte;
	rv.iov_len = 1;
	if (process_vm_readv(getppid(), &lv, 1, &rv, 1, 0) != -1 || errno != EPERM)
		return 18;
	if (fcntl(5, F_GETFD) != -1) /* nothing beyond stdio, socket and program */
		return 19;
	cl_attest_evidence_free(&ev);
	cl_attest_close(a);
	return 42;
}

static void test_platform(void)
{
	char st[PATH_MAX], out[PATH_MAX];
	char *argv[] = {self_path, "--workload", out, st, NULL};
	struct cl_devtee_opts o = {0};
	struct cl_buf ev = {0};
	struct cl_devtee_report r;
	uint8_t m[48], d[48], reg[48] = {0};
	char *pem = NULL;
	int status = -1;

	state("a", st);
	state("report.bin", out);
	o.state_dir = st;
	/* LeakSanitizer needs ptrace, which the sandbox denies the workload. */
	setenv("ASAN_OPTIONS", "detect_leaks=0", 1);
	CHECK_EQ_INT(cl_devtee_run(&o, argv, &status), CL_OK);
	CHECK_EQ_INT(status, 42);
	if (status != 42 || cl_read_file(out, 0, &ev) != CL_OK)
		return;
	pem = root_pem(st);
	CHECK_EQ_INT(verify(ev.data, ev.len, pem, 0, NULL), CL_OK);
	CHECK_EQ_INT(cl_devtee_report_parse(ev.data, ev.len, &r), CL_OK);
	/* The report carries the measurement the platform took, not one the workload chose. */
	CHECK_EQ_INT(cl_devtee_measure_argv(&o, argv, m), CL_OK);
	CHECK(memcmp(r.measurement, m, 48) == 0);
	memset(d, 1, sizeof(d));
	CHECK_EQ_INT(cl_devtee_extend(reg, d), CL_OK);
	CHECK(memcmp(r.rtmr[1], reg, 48) == 0);
	/* Init-data and debug change the measurement. */
	o.debug = 1;
	CHECK_EQ_INT(cl_devtee_measure_argv(&o, argv, d), CL_OK);
	CHECK(memcmp(d, m, 48) != 0);
	/* A program that does not exist never runs. */
	argv[0] = "/nonexistent/program";
	CHECK(cl_devtee_run(&o, argv, &status) != CL_OK);
	free(pem);
	cl_buf_free(&ev);
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--workload") == 0)
		return workload(argv[2], argv[3]);
	cl_log_set_level(CL_LOG_ERROR);
	if (!realpath("/proc/self/exe", self_path) || !mkdtemp(tmpdir)) {
		perror("setup");
		return 2;
	}
	RUN(test_report);
	RUN(test_root_state);
	RUN(test_measure);
	RUN(test_seal_extend);
	RUN(test_protocol);
	RUN(test_eventlog);
	RUN(test_platform);
	{
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
	return test_done("devtee_test");
}
