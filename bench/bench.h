/*
 * Shared by the benchmarks: a monotonic clock, reading a vector, timing an
 * operation for a fixed time, and running cl_verify_evidence as one.
 */
#ifndef CLOISTER_BENCH_H
#define CLOISTER_BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "cloister/evidence.h"

/* Seconds each measured case runs; set from argv by the benchmark. */
static double bench_seconds = 1.0;

static inline double bench_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A file from $CLOISTER_VECTORS; exits if it is missing. */
static inline struct cl_buf bench_load(const char *rel)
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

/* Operations per second of fn(arg) over bench_seconds; exits if it ever fails. */
static inline double bench_rate(const char *what, int (*fn)(void *), void *arg)
{
	double t0 = bench_now(), t = 0;
	long n = 0;

	if (fn(arg) != 0) { /* the warm-up fills caches */
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
		t = bench_now() - t0;
	} while (t < bench_seconds);
	return (double)n / t;
}

/* One evidence verification as a benchmark operation. */
struct bench_vcase {
	struct cl_buf ev;
	struct cl_verify_opts o;
};

static inline int bench_run_verify(void *arg)
{
	struct bench_vcase *c = arg;
	struct cl_verify_result r;
	int rc = cl_verify_evidence(c->ev.data, c->ev.len, &c->o, &r);

	cl_verify_result_free(&r);
	return rc;
}

#endif
