/*
 * Minimal unit test harness: each test is a function; CHECK records a failure
 * with its location and carries on; the process exits non-zero if any failed.
 */
#ifndef CLOISTER_TEST_H
#define CLOISTER_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/core.h"

static int test_failures;
static int test_checks;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		test_checks++;                                                                     \
		if (!(cond)) {                                                                     \
			test_failures++;                                                           \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
		}                                                                                  \
	} while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
	do {                                                                                       \
		long long ta_ = (long long)(a), tb_ = (long long)(b);                              \
		test_checks++;                                                                     \
		if (ta_ != tb_) {                                                                  \
			test_failures++;                                                           \
			fprintf(stderr, "%s:%d: %s == %s failed: %lld != %lld (%s)\n", __FILE__,   \
				__LINE__, #a, #b, ta_, tb_, cl_error_detail());                    \
		}                                                                                  \
	} while (0)

#define CHECK_STR(a, b)                                                                            \
	do {                                                                                       \
		const char *sa_ = (a), *sb_ = (b);                                                 \
		test_checks++;                                                                     \
		if (!sa_ || !sb_ || strcmp(sa_, sb_) != 0) {                                       \
			test_failures++;                                                           \
			fprintf(stderr, "%s:%d: %s == %s failed: \"%s\" != \"%s\"\n", __FILE__,    \
				__LINE__, #a, #b, sa_ ? sa_ : "(null)", sb_ ? sb_ : "(null)");     \
		}                                                                                  \
	} while (0)

#define RUN(fn)                                                                                    \
	do {                                                                                       \
		fprintf(stderr, "  %s\n", #fn);                                                    \
		fn();                                                                              \
	} while (0)

static inline int test_done(const char *name)
{
	if (test_checks == 0) {
		fprintf(stderr, "%s: no checks ran\n", name);
		return 1;
	}
	fprintf(stderr, "%s: %d checks, %d failed\n", name, test_checks, test_failures);
	return test_failures ? 1 : 0;
}

/* Path of a file in the shared vectors ($CLOISTER_VECTORS). */
static inline const char *vector_path(const char *rel)
{
	static char buf[8][4096];
	static int next;
	const char *base = getenv("CLOISTER_VECTORS");
	char *out = buf[next++ % 8];

	snprintf(out, 4096, "%s/%s", base && *base ? base : "../shared/vectors", rel);
	return out;
}

/* Read a vector file; aborts the test binary if it is missing. */
static inline struct cl_buf vector_read(const char *rel)
{
	struct cl_buf b = {0};

	if (cl_read_file(vector_path(rel), 0, &b) != CL_OK) {
		fprintf(stderr, "missing test vector %s (set CLOISTER_VECTORS)\n",
			vector_path(rel));
		exit(2);
	}
	return b;
}

#endif
