/*
 * The bounded CBOR loader (see cloister/cbor.h). The pre-pass keeps a stack
 * of how many children each open array, map and tag still expects; every
 * head is checked against the bytes left before anything is allocated, so
 * cbor_load only ever builds a tree whose size the input itself pays for.
 */
#include <string.h>

#include "cloister/cbor.h"

enum scan_kind { SCAN_LEAF, SCAN_ARRAY, SCAN_MAP, SCAN_TAG, SCAN_INDEF };

struct scan {
	enum scan_kind kind;
	size_t count;	/* children of an array or map */
	uint64_t arg;	/* the head's argument */
	size_t payload; /* string bytes after the head */
	int has_arg;	/* 0 for floats and simple values */
};

static void arg_of(struct scan *s, uint64_t v)
{
	s->arg = v;
	s->has_arg = 1;
}

static void scan_u8(void *c, uint8_t v)
{
	arg_of(c, v);
}

static void scan_u16(void *c, uint16_t v)
{
	arg_of(c, v);
}

static void scan_u32(void *c, uint32_t v)
{
	arg_of(c, v);
}

static void scan_u64(void *c, uint64_t v)
{
	arg_of(c, v);
}

static void scan_string(void *c, cbor_data d, size_t n)
{
	(void)d;
	arg_of(c, n);
	((struct scan *)c)->payload = n;
}

static void scan_array(void *c, size_t n)
{
	arg_of(c, n);
	((struct scan *)c)->kind = SCAN_ARRAY;
	((struct scan *)c)->count = n;
}

static void scan_map(void *c, size_t n)
{
	arg_of(c, n);
	((struct scan *)c)->kind = SCAN_MAP;
	((struct scan *)c)->count = n;
}

static void scan_tag(void *c, uint64_t t)
{
	arg_of(c, t);
	((struct scan *)c)->kind = SCAN_TAG;
}

static void scan_indef(void *c)
{
	((struct scan *)c)->kind = SCAN_INDEF;
}

size_t cl_cbor_head_len(uint64_t arg)
{
	if (arg < 24)
		return 1;
	if (arg <= 0xff)
		return 2;
	if (arg <= 0xffff)
		return 3;
	if (arg <= 0xffffffffu)
		return 5;
	return 9;
}

static int prescan(const uint8_t *p, size_t n, const struct cl_cbor_caps *caps)
{
	struct cbor_callbacks cb = cbor_empty_callbacks;
	size_t need[CL_CBOR_MAX_DEPTH], top = 1, off = 0, items = 0;
	const char *what = caps->what ? caps->what : "CBOR";

	cb.uint8 = scan_u8;
	cb.uint16 = scan_u16;
	cb.uint32 = scan_u32;
	cb.uint64 = scan_u64;
	cb.negint8 = scan_u8;
	cb.negint16 = scan_u16;
	cb.negint32 = scan_u32;
	cb.negint64 = scan_u64;
	cb.byte_string = scan_string;
	cb.string = scan_string;
	cb.array_start = scan_array;
	cb.map_start = scan_map;
	cb.tag = scan_tag;
	cb.indef_array_start = scan_indef;
	cb.indef_map_start = scan_indef;
	cb.byte_string_start = scan_indef;
	cb.string_start = scan_indef;
	cb.indef_break = scan_indef;
	need[0] = 1;
	while (top > 0) {
		struct scan sc = {SCAN_LEAF, 0, 0, 0, 0};
		struct cbor_decoder_result r;

		CL_ENSURE_MSG(off < n, CL_ERR_TRUNCATED, "%s: CBOR ends inside an item", what);
		CL_ENSURE_MSG(++items <= caps->max_items, CL_ERR_MALFORMED,
			      "%s: more than %zu CBOR items", what, caps->max_items);
		r = cbor_stream_decode(p + off, n - off, &cb, &sc);
		CL_ENSURE_MSG(r.status != CBOR_DECODER_NEDATA, CL_ERR_TRUNCATED,
			      "%s: CBOR ends inside an item", what);
		CL_ENSURE_MSG(r.status == CBOR_DECODER_FINISHED && r.read > 0 && r.read <= n - off,
			      CL_ERR_MALFORMED, "%s: not well-formed CBOR", what);
		CL_ENSURE_MSG(sc.kind != SCAN_INDEF, CL_ERR_MALFORMED,
			      "%s: indefinite-length CBOR is not accepted", what);
		if (caps->canonical && sc.has_arg)
			CL_ENSURE_MSG(r.read - sc.payload == cl_cbor_head_len(sc.arg),
				      CL_ERR_MALFORMED, "%s: CBOR argument not in shortest form",
				      what);
		off += r.read;
		need[top - 1]--;
		if (sc.kind == SCAN_TAG) {
			sc.count = 1;
		} else if (sc.kind == SCAN_MAP) {
			CL_ENSURE_MSG(sc.count <= (n - off) / 2, CL_ERR_TRUNCATED,
				      "%s: map longer than the input", what);
			sc.count *= 2;
		}
		if (sc.kind != SCAN_LEAF && sc.count > 0) {
			/* Every child takes a byte at least: no header may promise more. */
			CL_ENSURE_MSG(sc.count <= n - off, CL_ERR_TRUNCATED,
				      "%s: array longer than the input", what);
			CL_ENSURE_MSG(top < caps->max_depth, CL_ERR_MALFORMED,
				      "%s: CBOR nested deeper than %zu", what, caps->max_depth);
			need[top++] = sc.count;
		}
		while (top > 0 && need[top - 1] == 0)
			top--;
	}
	CL_ENSURE_MSG(off == n, CL_ERR_MALFORMED, "%s: trailing bytes after the CBOR item", what);
	return CL_OK;
}

int cl_cbor_load(const uint8_t *p, size_t n, const struct cl_cbor_caps *caps, cbor_item_t **out)
{
	struct cbor_load_result lr;
	const char *what = caps && caps->what ? caps->what : "CBOR";

	*out = NULL;
	CL_ENSURE_MSG(caps && caps->max_depth >= 1 && caps->max_depth <= CL_CBOR_MAX_DEPTH &&
			      caps->max_items >= 1,
		      CL_ERR_ARG, "CBOR caps out of range");
	CL_GUARD(prescan(p, n, caps));
	memset(&lr, 0, sizeof(lr));
	*out = cbor_load(p, n, &lr);
	if (*out && lr.error.code == CBOR_ERR_NONE && lr.read == n)
		return CL_OK;
	if (*out)
		cbor_decref(out);
	CL_ENSURE_MSG(lr.error.code != CBOR_ERR_MEMERROR, CL_ERR_NOMEM, "out of memory");
	CL_BAIL(CL_ERR_MALFORMED, "%s: not well-formed CBOR", what);
}

size_t cl_cbor_encoded_len(const cbor_item_t *it)
{
	size_t n = 0;

	switch (cbor_typeof(it)) {
	case CBOR_TYPE_UINT:
	case CBOR_TYPE_NEGINT:
		return cl_cbor_head_len(cbor_get_int(it));
	case CBOR_TYPE_BYTESTRING:
		return cl_cbor_head_len(cbor_bytestring_length(it)) + cbor_bytestring_length(it);
	case CBOR_TYPE_STRING:
		return cl_cbor_head_len(cbor_string_length(it)) + cbor_string_length(it);
	case CBOR_TYPE_ARRAY:
		n = cl_cbor_head_len(cbor_array_size(it));
		for (size_t i = 0; i < cbor_array_size(it); i++)
			n += cl_cbor_encoded_len(cbor_array_handle(it)[i]);
		return n;
	case CBOR_TYPE_MAP:
		n = cl_cbor_head_len(cbor_map_size(it));
		for (size_t i = 0; i < cbor_map_size(it); i++)
			n += cl_cbor_encoded_len(cbor_map_handle(it)[i].key) +
			     cl_cbor_encoded_len(cbor_map_handle(it)[i].value);
		return n;
	case CBOR_TYPE_TAG:
		/* cbor_tag_item takes a reference; read the child through the handle instead. */
		return cl_cbor_head_len(cbor_tag_value(it)) +
		       cl_cbor_encoded_len(it->metadata.tag_metadata.tagged_item);
	case CBOR_TYPE_FLOAT_CTRL:
	default:
		switch (cbor_float_get_width(it)) {
		case CBOR_FLOAT_16:
			return 3;
		case CBOR_FLOAT_32:
			return 5;
		case CBOR_FLOAT_64:
			return 9;
		case CBOR_FLOAT_0:
		default:
			return cbor_ctrl_value(it) < 24 ? 1 : 2;
		}
	}
}

int cl_cbor_is_null(const cbor_item_t *it)
{
	return it && cbor_isa_float_ctrl(it) && cbor_float_ctrl_is_ctrl(it) &&
	       cbor_ctrl_value(it) == CBOR_CTRL_NULL;
}
