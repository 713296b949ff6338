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
#include "bench.h"
#include "cloister/tpm.h"

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
	struct bench_vcase c = {bench_load(rel), CL_VERIFY_OPTS_INIT};
	struct cl_tpm_evidence ev;
	TPMT_SIGNATURE sig;
	struct floor f = {0};
	double ours = 0, fl = 0;

	if (cl_tpm_evidence_parse(c.ev.data, c.ev.len, &ev) != CL_OK ||
	    cl_tpm_signature_parse(ev.sig, ev.sig_len, &sig) != CL_OK ||
	    cl_tpm_ak_parse(ev.ak, ev.ak_len, &f.key, NULL) != CL_OK)
		exit(2);
	c.o.format = CL_FORMAT_TPM;
	c.o.tpm.ak = ev.ak;
	c.o.tpm.ak_len = ev.ak_len;
	f.md = md;
	f.msg = ev.quote;
	f.msglen = ev.quote_len;
	f.sig = sig.signature.rsassa.sig.buffer;
	f.siglen = sig.signature.rsassa.sig.size;
	ours = bench_rate(name, bench_run_verify, &c);
	fl = bench_rate("floor", run_floor, &f);
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
	struct lcase l = {bench_load(rel), 0};
	double r = bench_rate(rel, run_replay, &l);

	printf("event log replay %-60s %9.0f events/s (%zu events, all banks)\n",
	       strrchr(rel, '/') + 1, r * (double)l.events, l.events);
	cl_buf_free(&l.b);
}

int main(int argc, char **argv)
{
	if (argc > 1)
		bench_seconds = atof(argv[1]);
	if (bench_seconds <= 0)
		bench_seconds = 1.0;
	cl_log_set_level(CL_LOG_ERROR);
	bench_quote("tpm quote, no log (trustee, SHA-256)", "tpm/trustee/tpm_evidence.json",
		    EVP_sha256());
	bench_quote("tpm quote + event log (GCP, SHA-1)",
		    "tpm/go-attestation/windows_gcp_shielded_vm.json", EVP_sha1());
	bench_replay("tpm/go-attestation/ubuntu_2104_shielded_vm_no_secure_boot_eventlog");
	bench_replay("tpm/go-attestation/sb_cert_eventlog");
	return 0;
}
