/*
 * The shared bounded CBOR loader: a real CBOR token (Arm CCA) loads and
 * every truncation of it fails; headers promising more than the input,
 * indefinite lengths, nesting and item caps, trailing bytes, non-shortest
 * heads in canonical mode; the one-byte tags libcbor 0.8 refuses; and the
 * encoded lengths that let callers place items back in their input.
 */
#include <stdlib.h>

#include "cloister/cbor.h"
#include "test.h"

static const struct cl_cbor_caps loose = {"test", 16, 4096, 0};
static const struct cl_cbor_caps strict = {"test", 4, 64, 1};

static int load_hex(const char *hex, const struct cl_cbor_caps *caps)
{
	uint8_t *b = NULL;
	size_t n = 0;
	cbor_item_t *it = NULL;
	int rc = 0;

	CHECK_EQ_INT(cl_hex_decode(hex, strlen(hex), &b, &n), CL_OK);
	rc = cl_cbor_load(b, n, caps, &it);
	CHECK((rc == CL_OK) == (it != NULL));
	if (it) {
		if (caps->canonical)
			CHECK_EQ_INT(cl_cbor_encoded_len(it), n);
		cbor_decref(&it);
	}
	free(b);
	return rc;
}

static void test_real_token(void)
{
	struct cl_buf b = vector_read("cca/rust-ccatoken/cca-token-01.cbor");
	cbor_item_t *it = NULL;
	struct cl_cbor_caps tight = loose;

	CHECK_EQ_INT(cl_cbor_load(b.data, b.len, &loose, &it), CL_OK);
	/* tag 399 { 44234: bstr platform token, 44241: bstr realm token } */
	CHECK(it && cbor_isa_tag(it) && cbor_tag_value(it) == 399);
	CHECK_EQ_INT(cl_cbor_encoded_len(it), b.len);
	cbor_decref(&it);
	for (size_t n = 0; n < b.len; n++) {
		CHECK(cl_cbor_load(b.data, n, &loose, &it) != CL_OK);
		CHECK(it == NULL);
	}
	/* Three items (tag, map, and more): caps below what the token needs refuse it. */
	tight.max_items = 3;
	CHECK_EQ_INT(cl_cbor_load(b.data, b.len, &tight, &it), CL_ERR_MALFORMED);
	tight = loose;
	tight.max_depth = 1;
	CHECK_EQ_INT(cl_cbor_load(b.data, b.len, &tight, &it), CL_ERR_MALFORMED);
	/* A trailing byte; a length header one byte longer than the input. */
	CHECK_EQ_INT(cl_buf_append(&b, (const uint8_t *)"", 1), CL_OK);
	CHECK_EQ_INT(cl_cbor_load(b.data, b.len, &loose, &it), CL_ERR_MALFORMED);
	CHECK(b.data[7] == 0x59 && b.data[8] == 0x02 && b.data[9] == 0x93);
	b.data[9] = 0x94;
	CHECK(cl_cbor_load(b.data, b.len - 1, &loose, &it) != CL_OK);
	cl_buf_free(&b);
}

static void test_bounds(void)
{
	/* [1, "a", h'00', -1, {1: 2}, tag 24(h'')] */
	CHECK_EQ_INT(load_hex("86016161410020a10102d81840", &strict), CL_OK);
	/* Arrays, maps and strings whose heads promise more than the input. */
	CHECK_EQ_INT(load_hex("9b00000000ffffffff01", &loose), CL_ERR_TRUNCATED);
	CHECK_EQ_INT(load_hex("bb00000000ffffffff0101", &loose), CL_ERR_TRUNCATED);
	CHECK_EQ_INT(load_hex("5b00000000ffffffff00", &loose), CL_ERR_TRUNCATED);
	CHECK_EQ_INT(load_hex("8301", &loose), CL_ERR_TRUNCATED);
	CHECK_EQ_INT(load_hex("", &loose), CL_ERR_TRUNCATED);
	/* Indefinite array, map, byte and text strings. */
	CHECK_EQ_INT(load_hex("9f01ff", &loose), CL_ERR_MALFORMED);
	CHECK_EQ_INT(load_hex("bf0102ff", &loose), CL_ERR_MALFORMED);
	CHECK_EQ_INT(load_hex("5f4100ff", &loose), CL_ERR_MALFORMED);
	CHECK_EQ_INT(load_hex("7f6161ff", &loose), CL_ERR_MALFORMED);
	/* Two items; a stray break; a reserved head. */
	CHECK_EQ_INT(load_hex("0101", &loose), CL_ERR_MALFORMED);
	CHECK_EQ_INT(load_hex("ff", &loose), CL_ERR_MALFORMED);
	CHECK_EQ_INT(load_hex("1c", &loose), CL_ERR_MALFORMED);
	/* Depth 4 counts the top level: three nested containers around a leaf, not four. */
	CHECK_EQ_INT(load_hex("81818101", &strict), CL_OK);
	CHECK_EQ_INT(load_hex("8181818101", &strict), CL_ERR_MALFORMED);
	CHECK_EQ_INT(load_hex("c1c1c1c101", &strict), CL_ERR_MALFORMED);
	/* libcbor 0.8 refuses one-byte tags 6..20: callers must strip them. */
	CHECK_EQ_INT(load_hex("d28100", &loose), CL_ERR_MALFORMED);
	CHECK_EQ_INT(load_hex("d8128100", &loose), CL_OK);
}

static void test_canonical(void)
{
	/* Each value in shortest form loads either way; padded, only loosely. */
	static const char *const padded[] = {
		"1801",
		"190001",
		"1a00000001",
		"1b0000000000000001", /* uint 1 */
		"3800",		      /* -1 */
		"580100",
		"7801"
		"61", /* h'00', "a" */
		"980101",
		"b8010102", /* [1], {1: 2} */
		"d80101",   /* tag 1(1) */
	};
	CHECK_EQ_INT(load_hex("01", &strict), CL_OK);
	CHECK_EQ_INT(load_hex("1818", &strict), CL_OK);
	CHECK_EQ_INT(load_hex("190100", &strict), CL_OK);
	CHECK_EQ_INT(load_hex("1a00010000", &strict), CL_OK);
	CHECK_EQ_INT(load_hex("1b0000000100000000", &strict), CL_OK);
	for (size_t i = 0; i < sizeof(padded) / sizeof(padded[0]); i++) {
		CHECK_EQ_INT(load_hex(padded[i], &strict), CL_ERR_MALFORMED);
		CHECK_EQ_INT(load_hex(padded[i], &loose), CL_OK);
	}
	CHECK_EQ_INT(cl_cbor_head_len(23), 1);
	CHECK_EQ_INT(cl_cbor_head_len(24), 2);
	CHECK_EQ_INT(cl_cbor_head_len(256), 3);
	CHECK_EQ_INT(cl_cbor_head_len(65536), 5);
	CHECK_EQ_INT(cl_cbor_head_len(UINT64_C(1) << 32), 9);
}

int main(void)
{
	RUN(test_real_token);
	RUN(test_bounds);
	RUN(test_canonical);
	return test_done("cbor_test");
}
