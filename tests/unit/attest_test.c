/*
 * Attester providers against directories that behave like the kernel's
 * interfaces, serving recorded real evidence. These check the plumbing
 * (what is written where, what is read back, race detection, parsing), not
 * the binding of report data: the recorded reports carry their own.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloister/attest.h"
#include "cloister/evidence.h"
#include "test.h"

static char tmpdir[] = "/tmp/cloister-attest-test.XXXXXX";

static void put(const char *dir, const char *name, const void *p, size_t n)
{
	char path[PATH_MAX];
	FILE *f = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
		abort();
}

static struct cl_buf get(const char *dir, const char *name)
{
	char path[PATH_MAX];
	struct cl_buf b = {0};

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (cl_read_file(path, 0, &b) != CL_OK)
		abort();
	return b;
}

/*
 * configfs-tsm stand-in: inblob and outblob are FIFOs, so the provider's read
 * of outblob waits until this thread has taken inblob and moved generation,
 * as the kernel does. `bumps` lists how far generation moves per round.
 */
struct fake_tsm {
	char dir[PATH_MAX];
	const struct cl_buf *outblob;
	int rounds;
	int bumps[4];
	uint8_t inblob[4][64];
	size_t inblob_len[4];
};

static void *serve_tsm(void *arg)
{
	struct fake_tsm *t = arg;
	char path[PATH_MAX + 16], gen[32];
	unsigned long long g = 0;

	for (int i = 0; i < t->rounds; i++) {
		int fd = -1;
		ssize_t n = 0;

		snprintf(path, sizeof(path), "%s/inblob", t->dir);
		fd = open(path, O_RDONLY);
		t->inblob_len[i] = 0;
		while ((n = read(fd, t->inblob[i] + t->inblob_len[i], 64 - t->inblob_len[i])) > 0)
			t->inblob_len[i] += (size_t)n;
		close(fd);
		g += (unsigned long long)t->bumps[i];
		snprintf(gen, sizeof(gen), "%llu\n", g);
		put(t->dir, "generation", gen, strlen(gen));
		snprintf(path, sizeof(path), "%s/outblob", t->dir);
		fd = open(path, O_WRONLY);
		if (write(fd, t->outblob->data, t->outblob->len) != (ssize_t)t->outblob->len)
			abort();
		close(fd);
	}
	return NULL;
}

static void make_tsm(const char *base, const char *entry, const char *provider, struct fake_tsm *t)
{
	char p[PATH_MAX + 16];

	mkdir(base, 0700);
	snprintf(t->dir, sizeof(t->dir), "%s/%s", base, entry);
	mkdir(t->dir, 0700);
	put(t->dir, "generation", "0\n", 2);
	put(t->dir, "provider", provider, strlen(provider));
	snprintf(p, sizeof(p), "%s/inblob", t->dir);
	unlink(p);
	if (mkfifo(p, 0600) != 0)
		abort();
	snprintf(p, sizeof(p), "%s/outblob", t->dir);
	unlink(p);
	if (mkfifo(p, 0600) != 0)
		abort();
}

static int tsm_round(struct fake_tsm *t, const char *base, const char *entry,
		     struct cl_attest_evidence *ev)
{
	struct cl_attest_config cfg = CL_ATTEST_CONFIG_INIT;
	struct cl_attester *a = NULL;
	pthread_t th;
	uint8_t rd[64];
	int rc = 0;

	for (int i = 0; i < 64; i++)
		rd[i] = (uint8_t)(0xc0 + i);
	cfg.kind = CL_ATTEST_TSM;
	cfg.tsm_path = base;
	cfg.tsm_entry = entry;
	pthread_create(&th, NULL, serve_tsm, t);
	rc = cl_attest_open(&cfg, &a);
	if (rc == CL_OK)
		rc = cl_attest_evidence(a, rd, ev);
	pthread_join(th, NULL);
	cl_attest_close(a);
	return rc;
}

static void test_tsm_snp(void)
{
	struct cl_buf rep = vector_read("sev-snp/trustee/test-report.bin");
	struct cl_buf vcek = vector_read("sev-snp/trustee/test-vcek.der");
	char base[PATH_MAX];
	struct fake_tsm t = {0};
	struct cl_attest_evidence ev = {0};
	struct cl_verify_opts o = CL_VERIFY_OPTS_INIT;
	struct cl_verify_result res = {0};

	snprintf(base, sizeof(base), "%s/tsm", tmpdir);
	make_tsm(base, "e1", "sev_guest\n", &t);
	put(t.dir, "auxblob", "certs", 5);
	t.outblob = &rep;
	t.rounds = 1;
	t.bumps[0] = 1;
	CHECK_EQ_INT(tsm_round(&t, base, "e1", &ev), CL_OK);
	CHECK_EQ_INT(ev.format, CL_FORMAT_SNP);
	CHECK_STR(ev.provider, "tsm/sev_guest");
	CHECK(ev.evidence.len == rep.len && memcmp(ev.evidence.data, rep.data, rep.len) == 0);
	CHECK(ev.aux.len == 5 && memcmp(ev.aux.data, "certs", 5) == 0);
	/* What went into inblob is exactly the report data. */
	CHECK_EQ_INT(t.inblob_len[0], 64);
	CHECK(t.inblob[0][0] == 0xc0 && t.inblob[0][63] == 0xff);
	/* And what came back is real evidence that verifies as it is. */
	o.snp.vcek = vcek.data;
	o.snp.vcek_len = vcek.len;
	o.offline = 1;
	o.cache_dir = "/nonexistent/cloister-test";
	CHECK_EQ_INT(cl_time_parse("2025-06-01T00:00:00Z", &o.at), CL_OK);
	CHECK_EQ_INT(cl_verify_evidence(ev.evidence.data, ev.evidence.len, &o, &res), CL_OK);
	cl_verify_result_free(&res);
	cl_attest_evidence_free(&ev);

	/* Someone else wrote between our write and read: fetched again, then accepted. */
	make_tsm(base, "e2", "sev_guest", &t);
	t.rounds = 2;
	t.bumps[0] = 2;
	t.bumps[1] = 1;
	CHECK_EQ_INT(tsm_round(&t, base, "e2", &ev), CL_OK);
	CHECK_EQ_INT(t.inblob_len[1], 64);
	cl_attest_evidence_free(&ev);

	/* It keeps happening: give up rather than return a report of unknown input. */
	make_tsm(base, "e3", "sev_guest", &t);
	t.rounds = 3;
	t.bumps[0] = t.bumps[1] = t.bumps[2] = 2;
	CHECK_EQ_INT(tsm_round(&t, base, "e3", &ev), CL_ERR_IO);
	CHECK(strstr(cl_error_detail(), "changing") != NULL);
	cl_attest_evidence_free(&ev);

	/* An unknown provider's blob is not passed off as something we can verify. */
	make_tsm(base, "e4", "mystery_guest", &t);
	t.rounds = 1;
	t.bumps[0] = 1;
	CHECK_EQ_INT(tsm_round(&t, base, "e4", &ev), CL_ERR_UNSUPPORTED);
	cl_attest_evidence_free(&ev);
	cl_buf_free(&rep);
	cl_buf_free(&vcek);
}

static void test_tsm_tdx(void)
{
	struct cl_buf q = vector_read("tdx/dcap-qvl/tdx_quote");
	char base[PATH_MAX];
	struct fake_tsm t = {0};
	struct cl_attest_evidence ev = {0};
	enum cl_format f = CL_FORMAT_AUTO;

	snprintf(base, sizeof(base), "%s/tsm", tmpdir);
	make_tsm(base, "t1", "tdx_guest\n", &t);
	t.outblob = &q;
	t.rounds = 1;
	t.bumps[0] = 1;
	CHECK_EQ_INT(tsm_round(&t, base, "t1", &ev), CL_OK);
	CHECK_EQ_INT(ev.format, CL_FORMAT_TDX);
	CHECK_EQ_INT(cl_format_detect(ev.evidence.data, ev.evidence.len), CL_FORMAT_TDX);
	CHECK_EQ_INT(ev.aux.len, 0);
	CHECK_EQ_INT(cl_attest_tsm_format("arm_cca_guest", &f), CL_OK);
	CHECK_EQ_INT(f, CL_FORMAT_AUTO);
	cl_attest_evidence_free(&ev);
	cl_buf_free(&q);
}

static void test_sev_guest(void)
{
	struct cl_buf rep = vector_read("sev-snp/trustee/test-report.bin");
	struct cl_snp_key_req q;
	uint8_t resp[4000] = {0}, key[32], kresp[64] = {0};
	const uint8_t *r = NULL;
	size_t n = 0;

	cl_attest_snp_key_req(&q);
	CHECK_EQ_INT(q.root_key_select, 0);
	CHECK_EQ_INT(q.guest_field_select, 0x9); /* policy and measurement */
	CHECK_EQ_INT(q.vmpl, 0);

	/* MSG_REPORT_RSP around the recorded report. */
	resp[4] = (uint8_t)(rep.len & 0xff);
	resp[5] = (uint8_t)(rep.len >> 8);
	memcpy(resp + 0x20, rep.data, rep.len);
	CHECK_EQ_INT(cl_attest_snp_report_resp(resp, sizeof(resp), &r, &n), CL_OK);
	CHECK(n == rep.len && memcmp(r, rep.data, n) == 0);
	CHECK_EQ_INT(cl_format_detect(r, n), CL_FORMAT_SNP);
	CHECK_EQ_INT(cl_attest_snp_report_resp(resp, 0x20 + rep.len - 1, &r, &n), CL_ERR_TRUNCATED);
	resp[0] = 0x16; /* firmware: invalid parameters */
	CHECK_EQ_INT(cl_attest_snp_report_resp(resp, sizeof(resp), &r, &n), CL_ERR_IO);
	resp[0] = 0;
	resp[4] = 0xff; /* a size that is not a report's */
	CHECK_EQ_INT(cl_attest_snp_report_resp(resp, sizeof(resp), &r, &n), CL_ERR_MALFORMED);

	for (int i = 0; i < 32; i++)
		kresp[0x20 + i] = (uint8_t)i;
	CHECK_EQ_INT(cl_attest_snp_key_resp(kresp, sizeof(kresp), key), CL_OK);
	CHECK(key[0] == 0 && key[31] == 31);
	CHECK_EQ_INT(cl_attest_snp_key_resp(kresp, 63, key), CL_ERR_MALFORMED);
	kresp[0] = 1;
	CHECK_EQ_INT(cl_attest_snp_key_resp(kresp, sizeof(kresp), key), CL_ERR_IO);
	cl_buf_free(&rep);
}

static void test_tdx_rtmr(void)
{
	struct cl_attest_config cfg = CL_ATTEST_CONFIG_INIT;
	struct cl_attester *a = NULL;
	char dir[PATH_MAX];
	uint8_t v[48], d[48];
	struct cl_buf b = {0};

	snprintf(dir, sizeof(dir), "%s/tdx", tmpdir);
	mkdir(dir, 0700);
	memset(v, 0xab, sizeof(v));
	for (int i = 0; i < 4; i++) {
		char name[32];

		snprintf(name, sizeof(name), "rtmr%d:sha384", i);
		put(dir, name, v, sizeof(v));
	}
	cfg.tdx_measurements = dir;
	cfg.tsm_path = "/nonexistent";
	cfg.sev_guest = "/nonexistent";
	cfg.gramine_path = "/nonexistent";
	CHECK_EQ_INT(cl_attest_open(&cfg, &a), CL_OK);
	if (!a)
		return;
	CHECK_EQ_INT(cl_attest_kind(a), CL_ATTEST_TDX_GUEST);
	CHECK_EQ_INT(cl_attest_read_register(a, 2, d), CL_OK);
	CHECK(memcmp(d, v, 48) == 0);
	memset(d, 0x01, sizeof(d));
	CHECK_EQ_INT(cl_attest_extend(a, 3, d, NULL, 0), CL_OK);
	b = get(dir, "rtmr3:sha384"); /* the kernel takes exactly the 48-byte digest */
	CHECK(b.len == 48 && memcmp(b.data, d, 48) == 0);
	cl_buf_free(&b);
	CHECK_EQ_INT(cl_attest_extend(a, 4, d, NULL, 0), CL_ERR_ARG);
	put(dir, "rtmr1:sha384", v, 47);
	CHECK_EQ_INT(cl_attest_read_register(a, 1, d), CL_ERR_MALFORMED);
	{
		struct cl_attest_evidence ev = {0};
		uint8_t rd[64] = {0};

		CHECK_EQ_INT(cl_attest_evidence(a, rd, &ev), CL_ERR_UNSUPPORTED);
		CHECK_EQ_INT(cl_attest_derive_key(a, (const uint8_t *)"x", 1, d),
			     CL_ERR_UNSUPPORTED);
	}
	cl_attest_close(a);
}

static void test_gramine(void)
{
	struct cl_buf q = vector_read("sgx/dcap-qvl/sgx_quote");
	struct cl_attest_config cfg = CL_ATTEST_CONFIG_INIT;
	struct cl_attester *a = NULL;
	struct cl_attest_evidence ev = {0};
	char dir[PATH_MAX], keys[PATH_MAX + 8];
	uint8_t rd[64], k[32], k2[32], want[32], seed[16];
	struct cl_buf b = {0};

	snprintf(dir, sizeof(dir), "%s/gramine", tmpdir);
	snprintf(keys, sizeof(keys), "%s/keys", dir);
	mkdir(dir, 0700);
	mkdir(keys, 0700);
	put(dir, "attestation_type", "dcap\n", 5);
	put(dir, "user_report_data", "", 0);
	put(dir, "quote", q.data, q.len);
	for (int i = 0; i < 16; i++)
		seed[i] = (uint8_t)i;
	put(keys, "_sgx_mrenclave", seed, sizeof(seed));
	cfg.tsm_path = "/nonexistent";
	cfg.sev_guest = "/nonexistent";
	cfg.tdx_measurements = "/nonexistent";
	cfg.gramine_path = dir;
	memset(rd, 0x77, sizeof(rd));
	CHECK_EQ_INT(cl_attest_open(&cfg, &a), CL_OK);
	if (!a)
		return;
	CHECK_EQ_INT(cl_attest_kind(a), CL_ATTEST_GRAMINE);
	CHECK_EQ_INT(cl_attest_evidence(a, rd, &ev), CL_OK);
	CHECK_EQ_INT(ev.format, CL_FORMAT_SGX);
	CHECK(ev.evidence.len == q.len && memcmp(ev.evidence.data, q.data, q.len) == 0);
	CHECK_EQ_INT(cl_format_detect(ev.evidence.data, ev.evidence.len), CL_FORMAT_SGX);
	b = get(dir, "user_report_data");
	CHECK(b.len == 64 && memcmp(b.data, rd, 64) == 0);
	cl_buf_free(&b);
	cl_attest_evidence_free(&ev);

	CHECK_EQ_INT(cl_attest_derive_key(a, (const uint8_t *)"disk", 4, k), CL_OK);
	CHECK_EQ_INT(cl_hex_decode_exact(
			     "ad3c7c3a6b5cd2c225f50c60aa7df2a416460ad39c5bc69380edca17aa27f580",
			     want, 32),
		     CL_OK);
	CHECK(memcmp(k, want, 32) == 0);
	CHECK_EQ_INT(cl_attest_derive_key(a, (const uint8_t *)"disk2", 5, k2), CL_OK);
	CHECK(memcmp(k, k2, 32) != 0);
	CHECK_EQ_INT(cl_attest_derive_key(a, (const uint8_t *)"", 0, k2), CL_ERR_ARG);

	put(dir, "attestation_type", "none\n", 5);
	CHECK_EQ_INT(cl_attest_evidence(a, rd, &ev), CL_ERR_UNSUPPORTED);
	cl_attest_close(a);
	cl_buf_free(&q);
}

static void test_detect(void)
{
	struct cl_attest_config cfg = CL_ATTEST_CONFIG_INIT;
	struct cl_attester *a = NULL;
	enum cl_attest_kind k = CL_ATTEST_AUTO;
	int sv[2] = {-1, -1}, dg[2] = {-1, -1};

	cfg.tsm_path = cfg.sev_guest = cfg.tdx_measurements = cfg.gramine_path = "/nonexistent";
	unsetenv("CLOISTER_DEVTEE_FD");
	CHECK_EQ_INT(cl_attest_open(&cfg, &a), CL_ERR_NOT_FOUND);
	CHECK(strstr(cl_error_detail(), "no TEE detected") != NULL);
	CHECK(a == NULL);

	/* A SEQPACKET socket is taken for the dev TEE; anything else is not. */
	CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
	CHECK_EQ_INT(socketpair(AF_UNIX, SOCK_DGRAM, 0, dg), 0);
	cfg.devtee_fd = dg[0];
	CHECK_EQ_INT(cl_attest_open(&cfg, &a), CL_ERR_NOT_FOUND);
	cfg.devtee_fd = sv[0];
	CHECK_EQ_INT(cl_attest_open(&cfg, &a), CL_OK);
	CHECK(a && cl_attest_kind(a) == CL_ATTEST_DEVTEE);
	cl_attest_close(a);
	a = NULL;
	/* A platform that hangs up is an error, not a report. */
	close(sv[1]);
	sv[1] = -1;
	CHECK_EQ_INT(cl_attest_open(&cfg, &a), CL_OK);
	if (a) {
		struct cl_attest_evidence ev = {0};
		uint8_t rd[64] = {0};

		CHECK(cl_attest_evidence(a, rd, &ev) != CL_OK);
		cl_attest_close(a);
	}
	for (int i = 0; i < 2; i++) {
		if (sv[i] >= 0)
			close(sv[i]);
		close(dg[i]);
	}
	CHECK_EQ_INT(cl_attest_kind_parse("gramine", &k), CL_OK);
	CHECK_EQ_INT(k, CL_ATTEST_GRAMINE);
	CHECK_EQ_INT(cl_attest_kind_parse("tpm2", &k), CL_ERR_ARG);
	CHECK_STR(cl_attest_kind_name(CL_ATTEST_SEV_GUEST), "sev-guest");
}

int main(void)
{
	cl_log_set_level(CL_LOG_ERROR);
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 2;
	}
	RUN(test_tsm_snp);
	RUN(test_tsm_tdx);
	RUN(test_sev_guest);
	RUN(test_tdx_rtmr);
	RUN(test_gramine);
	RUN(test_detect);
	{
		char cmd[PATH_MAX + 16];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", tmpdir);
	}
	return test_done("attest_test");
}
