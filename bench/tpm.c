/*
 * TPM verification throughput on the real vectors, beside the floor measured
 * in the same run: the one AK signature check a quote needs. Event-log
 * replay is reported in events per second (parse + SHA-1/256/384 replay of
 * every bank). Single-threaded.
 *
 *   build/bench/tpm [SECONDS_PER_CASE]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "cloister/evidence.h"
#include "cloister/tpm.h"

static double seconds = 1.0;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct cl_buf load(const char *rel)
{
	const char *base = getenv("CLOISTER_VECTORS");
	char path[4096];
	struct cl_buf b = {0};

	snprintf(path, sizeof(path), "%s/%s", base && *base ? base : "../shared/vectors", rel);
	if (cl_read_file(path, 0, &b) != CL_OK) {
		fprintf(stderr, "bench: cannot read %s\n", path);
		exit(2);
	}
	return b;
}

static double rate(const char *what, int (*fn)(void *), void *arg)
{
	double t0 = now(), t = 0;
	long n = 0;

	if (fn(arg) != 0) {
		fprintf(stderr, "bench: %s failed: %s\n", what, cl_error_detail());
		exit(1);
	}
	do {
		for (int i = 0; i < 16; i++)
			if (fn(arg) != 0) {
				fprintf(stderr, "bench: %s failed: %s\n", what, cl_error_detail());
				exit(1);
			}
		n += 16;
		t = now() - t0;
	} while (t < seconds);
	return (double)n / t;
}

struct vcase {
	struct cl_buf ev;
	struct cl_verify_opts o;
};

static int run_verify(void *arg)
{
	struct vcase *c = arg;
	struct cl_verify_result r;
	int rc = cl_verify_evidence(c->ev.data, c->ev.len, &c->o, &r);

	cl_verify_result_free(&r);
	return rc;
}

/* The floor: one RSA PKCS#1 v1.5 verification with a parsed key. */
struct floor {
	EVP_PKEY *key;
	const EVP_MD *md;
	const uint8_t *msg, *sig;
	size_t msglen, siglen;
};

static int run_floor(void *arg)
{
	struct floor *f = arg;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = EVP_DigestVerifyInit(ctx, NULL, f->md, NULL, f->key) == 1 &&
		 EVP_DigestVerify(ctx, f->sig, f->siglen, f->msg, f->msglen) == 1;

	EVP_MD_CTX_free(ctx);
	return ok ? 0 : 1;
}

static void bench_quote(const char *name, const char *rel, const EVP_MD *md)
{
	struct vcase c = {load(rel), CL_VERIFY_OPTS_INIT};
	struct cl_tpm_evidence ev;
	TPMT_SIGNATURE sig;
	struct floor f = {0};
	double ours = 0, fl = 0;

	if (cl_tpm_evidence_parse(c.ev.data, c.ev.len, &ev) != CL_OK ||
	    cl_tpm_signature_parse(ev.sig, ev.sig_len, &sig) != CL_OK ||
	    cl_tpm_ak_parse(ev.ak, ev.ak_len, &f.key, NULL) != CL_OK)
		exit(2);
	c.o.format = CL_FORMAT_TPM;
	c.o.tpm_ak = ev.ak;
	c.o.tpm_ak_len = ev.ak_len;
	f.md = md;
	f.msg = ev.quote;
	f.msglen = ev.quote_len;
	f.sig = sig.signature.rsassa.sig.buffer;
	f.siglen = sig.signature.rsassa.sig.size;
	ours = rate(name, run_verify, &c);
	fl = rate("floor", run_floor, &f);
	printf("%-40s %9.0f /s   floor %9.0f /s (1x RSA-2048 verify)   ratio %.2f\n", name, ours,
	       fl, ours / fl);
	EVP_PKEY_free(f.key);
	cl_tpm_evidence_free(&ev);
	cl_buf_free(&c.ev);
}

struct lcase {
	struct cl_buf b;
	size_t events;
};

static int run_replay(void *arg)
{
	struct lcase *l = arg;
	struct cl_evlog log;
	struct cl_pcr_bank bank;

	if (cl_evlog_parse(l->b.data, l->b.len, &log) != CL_OK)
		return 1;
	for (unsigned i = 0; i < log.nalgs; i++)
		if (cl_evlog_replay(&log, log.algs[i], &bank) != CL_OK) {
			cl_evlog_free(&log);
			return 1;
		}
	l->events = log.nevents;
	cl_evlog_free(&log);
	return 0;
}

static void bench_replay(const char *rel)
{
	struct lcase l = {load(rel), 0};
	double r = rate(rel, run_replay, &l);

	printf("event log replay %-60s %9.0f events/s (%zu events, all banks)\n",
	       strrchr(rel, '/') + 1, r * (double)l.events, l.events);
	cl_buf_free(&l.b);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		seconds = atof(argv[1]);
	if (seconds <= 0)
		seconds = 1.0;
	cl_log_set_level(CL_LOG_ERROR);
	bench_quote("tpm quote, no log (trustee, SHA-256)", "tpm/trustee/tpm_evidence.json",
		    EVP_sha256());
	bench_quote("tpm quote + event log (GCP, SHA-1)",
		    "tpm/go-attestation/windows_gcp_shielded_vm.json", EVP_sha1());
	bench_replay("tpm/go-attestation/ubuntu_2104_shielded_vm_no_secure_boot_eventlog");
	bench_replay("tpm/go-attestation/sb_cert_eventlog");
	return 0;
}
