#include <stdlib.h>
#include <string.h>

#include "cloister/core.h"
#include "test.h"

static void test_reader_bounds(void)
{
	static const uint8_t data[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
	struct cl_reader r = cl_reader_make(data, sizeof(data));
	struct cl_reader sub = {0};
	uint8_t b = 0, out[4];
	uint16_t h = 0;
	uint32_t w = 0;
	uint64_t q = 0;
	const uint8_t *p = NULL;

	CHECK_EQ_INT(cl_read_u8(&r, &b), CL_OK);
	CHECK_EQ_INT(b, 1);
	CHECK_EQ_INT(cl_read_u16le(&r, &h), CL_OK);
	CHECK_EQ_INT(h, 0x0302);
	CHECK_EQ_INT(cl_read_u32le(&r, &w), CL_OK);
	CHECK_EQ_INT(w, 0x07060504);
	CHECK_EQ_INT(r.left, 3);
	/* A failed read must not move the cursor. */
	CHECK_EQ_INT(cl_read_u64le(&r, &q), CL_ERR_TRUNCATED);
	CHECK_EQ_INT(r.left, 3);
	CHECK_EQ_INT(cl_read_bytes(&r, out, 4), CL_ERR_TRUNCATED);
	CHECK_EQ_INT(r.left, 3);
	CHECK_EQ_INT(cl_read_sub(&r, 2, &sub), CL_OK);
	CHECK_EQ_INT(sub.left, 2);
	CHECK_EQ_INT(r.left, 1);
	CHECK_EQ_INT(cl_read_u16be(&sub, &h), CL_OK);
	CHECK_EQ_INT(h, 0x0809);
	CHECK_EQ_INT(cl_read_u8(&sub, &b), CL_ERR_TRUNCATED);
	CHECK_EQ_INT(cl_read_ref(&r, 1, &p), CL_OK);
	CHECK_EQ_INT(*p, 10);
	CHECK_EQ_INT(cl_read_skip(&r, 1), CL_ERR_TRUNCATED);
	/* Huge lengths from the wire cannot wrap the check. */
	r = cl_reader_make(data, sizeof(data));
	CHECK_EQ_INT(cl_read_skip(&r, SIZE_MAX), CL_ERR_TRUNCATED);
	CHECK_EQ_INT(r.left, sizeof(data));

	r = cl_reader_make(data, 8);
	CHECK_EQ_INT(cl_read_u64le(&r, &q), CL_OK);
	CHECK(q == 0x0807060504030201ULL);
	r = cl_reader_make(data, 4);
	CHECK_EQ_INT(cl_read_u32be(&r, &w), CL_OK);
	CHECK_EQ_INT(w, 0x01020304);
}

static void test_hex(void)
{
	static const uint8_t in[] = {0x00, 0xab, 0xff, 0x10};
	char s[9];
	uint8_t *out = NULL, exact[2];
	size_t n = 0;

	cl_hex_encode(in, sizeof(in), s);
	CHECK_STR(s, "00abff10");
	CHECK_EQ_INT(cl_hex_decode("00ABff10", 8, &out, &n), CL_OK);
	CHECK_EQ_INT(n, 4);
	CHECK(out && memcmp(out, in, 4) == 0);
	free(out);
	out = NULL;
	CHECK_EQ_INT(cl_hex_decode("abc", 3, &out, &n), CL_ERR_MALFORMED);
	CHECK_EQ_INT(cl_hex_decode("zz", 2, &out, &n), CL_ERR_MALFORMED);
	CHECK(out == NULL);
	CHECK_EQ_INT(cl_hex_decode_exact("beef", exact, 2), CL_OK);
	CHECK_EQ_INT(exact[0], 0xbe);
	CHECK_EQ_INT(cl_hex_decode_exact("beef00", exact, 2), CL_ERR_MALFORMED);
}

static void test_base64(void)
{
	static const char *const cases[][2] = {
		{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foobar", "Zm9vYmFy"},
	};
	uint8_t *out = NULL;
	size_t n = 0;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *enc = cl_base64_encode((const uint8_t *)cases[i][0], strlen(cases[i][0]));

		CHECK_STR(enc, cases[i][1]);
		free(enc);
		CHECK_EQ_INT(cl_base64_decode(cases[i][1], strlen(cases[i][1]), &out, &n), CL_OK);
		CHECK_EQ_INT(n, strlen(cases[i][0]));
		CHECK(n == 0 || memcmp(out, cases[i][0], n) == 0);
		free(out);
		out = NULL;
	}
	/* Unpadded URL-safe input (JOSE) and line breaks (PEM-ish) decode too. */
	CHECK_EQ_INT(cl_base64_decode("-_8", 3, &out, &n), CL_OK);
	CHECK(n == 2 && out[0] == 0xfb && out[1] == 0xff);
	free(out);
	out = NULL;
	CHECK_EQ_INT(cl_base64_decode("Zm9v\nYmFy\n", 10, &out, &n), CL_OK);
	CHECK(n == 6 && memcmp(out, "foobar", 6) == 0);
	free(out);
	out = NULL;
	/* JOSE form: URL-safe, unpadded, and round-trips through the decoder. */
	{
		static const uint8_t raw[] = {0xfb, 0xff, 0x3e};
		char *u = cl_base64url_encode(raw, 2);

		CHECK_STR(u, "-_8");
		free(u);
		u = cl_base64url_encode(raw, 3);
		CHECK_STR(u, "-_8-");
		CHECK(cl_is_base64url(u, strlen(u)));
		free(u);
		u = cl_base64url_encode(raw, 0);
		CHECK_STR(u, "");
		free(u);
		CHECK(!cl_is_base64url("", 0));
		CHECK(!cl_is_base64url("ab+c", 4));
		CHECK(!cl_is_base64url("abc=", 4));
	}
	CHECK_EQ_INT(cl_base64_decode("Zm9vY", 5, &out, &n), CL_ERR_MALFORMED);
	CHECK_EQ_INT(cl_base64_decode("Zg==Zg", 6, &out, &n), CL_ERR_MALFORMED);
	CHECK_EQ_INT(cl_base64_decode("Zm9!", 4, &out, &n), CL_ERR_MALFORMED);
}

static void test_time(void)
{
	int64_t t = 0;
	char s[21];

	CHECK_EQ_INT(cl_time_parse("1970-01-01T00:00:00Z", &t), CL_OK);
	CHECK_EQ_INT(t, 0);
	CHECK_EQ_INT(cl_time_parse("2022-09-24T01:00:00Z", &t), CL_OK);
	CHECK_EQ_INT(t, 1663981200);
	CHECK_EQ_INT(cl_time_parse("2024-09-07T14:37:39.545Z", &t), CL_OK);
	CHECK_EQ_INT(t, 1725719859);
	CHECK_EQ_INT(cl_time_parse("2022-09-24T03:00:00+02:00", &t), CL_OK);
	CHECK_EQ_INT(t, 1663981200);
	CHECK_EQ_INT(cl_time_parse("2022-09-23T20:00:00-05:00", &t), CL_OK);
	CHECK_EQ_INT(t, 1663981200);
	cl_time_format(1663981200, s);
	CHECK_STR(s, "2022-09-24T01:00:00Z");
	CHECK_EQ_INT(cl_time_parse("2022-09-24", &t), CL_ERR_MALFORMED);
	CHECK_EQ_INT(cl_time_parse("2022-09-24T01:00:00", &t), CL_ERR_MALFORMED);
	CHECK_EQ_INT(cl_time_parse("2022-13-24T01:00:00Z", &t), CL_ERR_MALFORMED);
	CHECK_EQ_INT(cl_time_parse("2022-09-24T01:00:00Zjunk", &t), CL_ERR_MALFORMED);
	CHECK_EQ_INT(cl_time_parse("2022-09-24T01:00:00.Z", &t), CL_ERR_MALFORMED);
}

static void test_buf_cap(void)
{
	struct cl_buf b = {0};

	b.max = 8;
	CHECK_EQ_INT(cl_buf_append(&b, "12345", 5), CL_OK);
	CHECK_EQ_INT(cl_buf_append(&b, "678", 3), CL_OK);
	CHECK_EQ_INT(cl_buf_append(&b, "9", 1), CL_ERR_ARG);
	CHECK_EQ_INT(b.len, 8);
	CHECK_STR((char *)b.data, "12345678");
	cl_buf_free(&b);
	CHECK(b.data == NULL);
	cl_buf_free(NULL);
}

static void test_errors(void)
{
	CHECK_EQ_INT(cl_fail(CL_ERR_SIGNATURE, "bad %s", "sig"), CL_ERR_SIGNATURE);
	CHECK_STR(cl_error_detail(), "bad sig");
	CHECK_STR(cl_err_name(CL_ERR_SIGNATURE), "signature");
	CHECK_STR(cl_err_name(12345), "unknown");
	cl_error_clear();
	CHECK_STR(cl_error_detail(), "");
	/* A detail left by an abandoned attempt is not the reason for another failure. */
	(void)cl_fail(CL_ERR_NOT_FOUND, "vcek.der not cached");
	CHECK_STR(cl_error_reason(CL_ERR_NOT_FOUND), "vcek.der not cached");
	CHECK_STR(cl_error_reason(CL_ERR_SIGNATURE), cl_err_str(CL_ERR_SIGNATURE));
	cl_error_clear();
	CHECK_STR(cl_error_reason(CL_ERR_NOT_FOUND), cl_err_str(CL_ERR_NOT_FOUND));
}

static void test_secrets(void)
{
	uint8_t a[16], b[16];

	memset(a, 0x5a, sizeof(a));
	memcpy(b, a, sizeof(b));
	CHECK(cl_ct_equal(a, b, sizeof(a)));
	b[15] ^= 1;
	CHECK(!cl_ct_equal(a, b, sizeof(a)));
	cl_zeroize(a, sizeof(a));
	for (size_t i = 0; i < sizeof(a); i++)
		CHECK_EQ_INT(a[i], 0);
}

static void test_log_level(void)
{
	enum cl_log_level l = CL_LOG_ERROR;

	CHECK_EQ_INT(cl_log_parse_level("debug", &l), CL_OK);
	CHECK_EQ_INT(l, CL_LOG_DEBUG);
	CHECK_EQ_INT(cl_log_parse_level("loud", &l), CL_ERR_ARG);
}

int main(void)
{
	RUN(test_reader_bounds);
	RUN(test_hex);
	RUN(test_base64);
	RUN(test_time);
	RUN(test_buf_cap);
	RUN(test_errors);
	RUN(test_secrets);
	RUN(test_log_level);
	return test_done("core_test");
}
