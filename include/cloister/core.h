/*
 * cloister core: result codes, guard macros, the bounded reader, growable
 * buffers, hex/base64, logging and time parsing.
 *
 * Everything that reads attacker-controlled bytes goes through struct
 * cl_reader: a cursor that refuses to read past its end and does not move
 * when a read fails.
 */
#ifndef CLOISTER_CORE_H
#define CLOISTER_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define CL_MUST_USE __attribute__((warn_unused_result))

/* ---------------------------------------------------------------- results */

typedef enum {
	CL_OK = 0,
	CL_ERR_ARG = -1, /* caller passed something invalid */
	CL_ERR_NOMEM = -2,
	CL_ERR_IO = -3,		 /* file or device could not be read/written */
	CL_ERR_TRUNCATED = -4,	 /* input ends before a structure does */
	CL_ERR_MALFORMED = -5,	 /* input has the wrong shape or values */
	CL_ERR_UNSUPPORTED = -6, /* valid but not something we accept */
	CL_ERR_SIGNATURE = -7,	 /* a signature did not verify */
	CL_ERR_CHAIN = -8,	 /* certificate chain did not verify */
	CL_ERR_REVOKED = -9,	 /* a certificate is on a CRL */
	CL_ERR_EXPIRED = -10,	 /* outside a validity window */
	CL_ERR_TCB = -11,	 /* TCB values do not match or are not acceptable */
	CL_ERR_POLICY = -12,	 /* verification refused by a local rule (debug...) */
	CL_ERR_MISMATCH = -13,	 /* a bound value (report data, chip id...) differs */
	CL_ERR_COLLATERAL = -14, /* endorsement material missing or unusable */
	CL_ERR_NOT_FOUND = -15,
	CL_ERR_NETWORK = -16,
	CL_ERR_CRYPTO = -17, /* OpenSSL failed for a reason that is not the input's */
	CL_ERR_INTERNAL = -18,
} cl_err;

typedef int cl_result;

/* Short stable name of an error code ("signature", "truncated"...). */
const char *cl_err_name(int err);
/* Human-readable description of an error code. */
const char *cl_err_str(int err);

/*
 * Detail of the most recent failure in this thread: a precise reason such as
 * "VCEK chip id does not match report". Set by cl_fail(); cleared by
 * cl_error_clear(). Never contains secret material.
 *
 * A detail belongs to one failure. Every operation a caller reports on
 * (cl_verify_evidence, a CLI command) clears it first; code that tries an
 * alternative and moves on after a failure (a cache miss before a fetch, one
 * parser before another) clears what the abandoned attempt left, so a success
 * leaves no detail behind; and every failure return goes through cl_fail().
 */
const char *cl_error_detail(void);
/*
 * The reason to report for a failure with code err: the detail when the last
 * cl_fail() since the last clear was for err, else cl_err_str(err). A detail
 * recorded for another code belongs to another failure and is not reported.
 */
const char *cl_error_reason(int err);
void cl_error_clear(void);
/* Record a detail message (printf format) and return err. */
int cl_fail(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define CL_GUARD(x)                                                                                \
	do {                                                                                       \
		int cl_guard_rc_ = (x);                                                            \
		if (cl_guard_rc_ < 0)                                                              \
			return cl_guard_rc_;                                                       \
	} while (0)

#define CL_ENSURE(cond, err)                                                                       \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return cl_fail((err), "%s", #cond);                                        \
	} while (0)

#define CL_ENSURE_MSG(cond, err, ...)                                                              \
	do {                                                                                       \
		if (!(cond))                                                                       \
			return cl_fail((err), __VA_ARGS__);                                        \
	} while (0)

#define CL_BAIL(err, ...) return cl_fail((err), __VA_ARGS__)

/* OpenSSL returns 1 on success; anything else becomes err. */
#define CL_GUARD_OSSL(x, err)                                                                      \
	do {                                                                                       \
		if ((x) != 1)                                                                      \
			return cl_fail((err), "OpenSSL: %s", #x);                                  \
	} while (0)

/* Variants for functions with an `out:` cleanup label and an `rc` variable. */
#define CL_TRY(x)                                                                                  \
	do {                                                                                       \
		rc = (x);                                                                          \
		if (rc < 0)                                                                        \
			goto out;                                                                  \
	} while (0)

#define CL_CHECK(cond, err, ...)                                                                   \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			rc = cl_fail((err), __VA_ARGS__);                                          \
			goto out;                                                                  \
		}                                                                                  \
	} while (0)

/* ---------------------------------------------------------- bounded reader */

struct cl_reader {
	const uint8_t *p;
	size_t left;
};

static inline struct cl_reader cl_reader_make(const void *p, size_t n)
{
	struct cl_reader r = {(const uint8_t *)p, n};
	return r;
}

CL_MUST_USE int cl_read_u8(struct cl_reader *r, uint8_t *v);
CL_MUST_USE int cl_read_u16le(struct cl_reader *r, uint16_t *v);
CL_MUST_USE int cl_read_u32le(struct cl_reader *r, uint32_t *v);
CL_MUST_USE int cl_read_u64le(struct cl_reader *r, uint64_t *v);
CL_MUST_USE int cl_read_u16be(struct cl_reader *r, uint16_t *v);
CL_MUST_USE int cl_read_u32be(struct cl_reader *r, uint32_t *v);
/* Copy n bytes into out. */
CL_MUST_USE int cl_read_bytes(struct cl_reader *r, void *out, size_t n);
/* Point *out at the next n bytes without copying (valid while the input is). */
CL_MUST_USE int cl_read_ref(struct cl_reader *r, size_t n, const uint8_t **out);
/* Split off the next n bytes as their own reader. */
CL_MUST_USE int cl_read_sub(struct cl_reader *r, size_t n, struct cl_reader *sub);
CL_MUST_USE int cl_read_skip(struct cl_reader *r, size_t n);

/* ------------------------------------------------------------------ buffer */

/* Growable byte buffer with a hard cap; data is always NUL-terminated. */
struct cl_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	size_t max; /* 0: CL_BUF_DEFAULT_MAX */
};

#define CL_BUF_DEFAULT_MAX ((size_t)64 << 20)

CL_MUST_USE int cl_buf_append(struct cl_buf *b, const void *p, size_t n);
/* Free the buffer; wipe it first (use for anything that may hold secrets). */
void cl_buf_free(struct cl_buf *b);

/* Read a whole file (at most max bytes; 0 = CL_BUF_DEFAULT_MAX). "-" = stdin. */
CL_MUST_USE int cl_read_file(const char *path, size_t max, struct cl_buf *out);

/* ------------------------------------------------------------ hex, base64 */

/* out must hold 2n+1 chars; lowercase. */
void cl_hex_encode(const uint8_t *in, size_t n, char *out);
/* Returns a malloc'd string, or NULL on allocation failure. */
char *cl_hex_strdup(const uint8_t *in, size_t n);
/*
 * Decode hex (either case, no separators, even length) into a malloc'd
 * buffer owned by the caller.
 */
CL_MUST_USE int cl_hex_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen);
/* Decode exactly n bytes of hex into out. */
CL_MUST_USE int cl_hex_decode_exact(const char *in, uint8_t *out, size_t n);

/* Standard base64 with padding; malloc'd, NUL-terminated. */
char *cl_base64_encode(const uint8_t *in, size_t n);
/* URL-safe alphabet without padding (JOSE); malloc'd, NUL-terminated. */
char *cl_base64url_encode(const void *in, size_t n);
/* 1 when s[0..n) is a non-empty run of base64url characters (no padding). */
int cl_is_base64url(const char *s, size_t n);
/* Standard or URL-safe alphabet, padding optional, whitespace ignored. */
CL_MUST_USE int cl_base64_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen);

/* ----------------------------------------------------------------- logging */

enum cl_log_level { CL_LOG_ERROR = 0, CL_LOG_WARN, CL_LOG_INFO, CL_LOG_DEBUG };

void cl_log_set_level(enum cl_log_level lvl);
enum cl_log_level cl_log_get_level(void);
/* "error", "warn", "info", "debug" */
CL_MUST_USE int cl_log_parse_level(const char *s, enum cl_log_level *out);
void cl_log(enum cl_log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define cl_log_error(...) cl_log(CL_LOG_ERROR, __VA_ARGS__)
#define cl_log_warn(...)  cl_log(CL_LOG_WARN, __VA_ARGS__)
#define cl_log_info(...)  cl_log(CL_LOG_INFO, __VA_ARGS__)
#define cl_log_debug(...) cl_log(CL_LOG_DEBUG, __VA_ARGS__)

/* -------------------------------------------------------------------- time */

/*
 * Parse an RFC 3339 date-time ("2025-07-01T00:00:00Z", fractional seconds and
 * numeric offsets allowed) into seconds since the epoch.
 */
CL_MUST_USE int cl_time_parse(const char *s, int64_t *out);
/* Format as "YYYY-MM-DDTHH:MM:SSZ"; out must hold 21 bytes. */
void cl_time_format(int64_t t, char out[21]);

/* ------------------------------------------------------------------ caches */

/*
 * What cloister caches in memory goes through one facility (cloister/memo.h).
 * cl_cache_bypass(1) makes the calling thread check everything from scratch
 * (benchmarks, tests, cl_verify_opts.no_cache) until the matching
 * cl_cache_bypass(0); bypasses nest, each (0) ending the innermost one.
 * Under a bypass, caches of check outcomes answer only with what was checked
 * within that bypass, so one verification still checks a CRL shared by
 * several chains once; caches of decoded values still serve.
 */
void cl_cache_bypass(int on);
int cl_cache_bypassed(void);

/* -------------------------------------------------------------- secrets */

/* Wipe memory in a way the compiler cannot elide. */
void cl_zeroize(void *p, size_t n);
/* Constant-time equality: 1 when equal. */
int cl_ct_equal(const void *a, const void *b, size_t n);

#endif
