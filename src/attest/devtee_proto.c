/*
 * The wire format between a dev-TEE workload and its platform process (the
 * runtime-register event log it returns is in src/evidence/devtee_eventlog.c).
 * Both ends parse what the other sends with
 * the bounded reader: the platform must survive a hostile workload, and the
 * workload gains nothing from trusting a confused platform either.
 */
#include <string.h>

#include "cloister/devtee.h"

#define HDR_LEN 4

static void le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int cl_devtee_req_encode(const struct cl_devtee_req *q, uint8_t *out, size_t cap, size_t *len)
{
	size_t plen = 0;

	switch (q->op) {
	case CL_DEVTEE_OP_REPORT:
		plen = CL_DEVTEE_REPORT_DATA_LEN;
		break;
	case CL_DEVTEE_OP_SEAL_KEY:
		CL_ENSURE_MSG(q->data_len >= 1 && q->data_len <= CL_DEVTEE_MAX_LABEL, CL_ERR_ARG,
			      "sealing-key label must be 1 to %d bytes", CL_DEVTEE_MAX_LABEL);
		plen = q->data_len;
		break;
	case CL_DEVTEE_OP_EXTEND:
		CL_ENSURE_MSG(q->index < CL_DEVTEE_RTMRS, CL_ERR_ARG,
			      "register index %u out of range", q->index);
		CL_ENSURE_MSG(q->data_len <= CL_DEVTEE_MAX_EVENT, CL_ERR_ARG,
			      "event data longer than %d bytes", CL_DEVTEE_MAX_EVENT);
		plen = 4 + CL_DEVTEE_HASH_LEN + q->data_len;
		break;
	case CL_DEVTEE_OP_EVENTLOG:
		plen = 0;
		break;
	default:
		CL_BAIL(CL_ERR_ARG, "unknown dev-TEE request %u", q->op);
	}
	CL_ENSURE(cap >= HDR_LEN && plen <= cap - HDR_LEN, CL_ERR_ARG);
	le16(out, q->op);
	le16(out + 2, (uint16_t)plen);
	switch (q->op) {
	case CL_DEVTEE_OP_REPORT:
		memcpy(out + HDR_LEN, q->report_data, CL_DEVTEE_REPORT_DATA_LEN);
		break;
	case CL_DEVTEE_OP_SEAL_KEY:
		memcpy(out + HDR_LEN, q->data, q->data_len);
		break;
	case CL_DEVTEE_OP_EXTEND:
		le32(out + HDR_LEN, q->index);
		memcpy(out + HDR_LEN + 4, q->digest, CL_DEVTEE_HASH_LEN);
		if (q->data_len)
			memcpy(out + HDR_LEN + 4 + CL_DEVTEE_HASH_LEN, q->data, q->data_len);
		break;
	default:
		break;
	}
	*len = HDR_LEN + plen;
	return CL_OK;
}

int cl_devtee_req_parse(const uint8_t *p, size_t n, struct cl_devtee_req *out)
{
	struct cl_reader r = cl_reader_make(p, n), body;
	uint16_t op = 0, plen = 0;

	memset(out, 0, sizeof(*out));
	CL_GUARD(cl_read_u16le(&r, &op));
	CL_GUARD(cl_read_u16le(&r, &plen));
	CL_ENSURE_MSG(plen == r.left, CL_ERR_MALFORMED, "request length %u but %zu bytes follow",
		      plen, r.left);
	CL_GUARD(cl_read_sub(&r, plen, &body));
	out->op = op;
	switch (op) {
	case CL_DEVTEE_OP_REPORT:
		CL_ENSURE_MSG(body.left == CL_DEVTEE_REPORT_DATA_LEN, CL_ERR_MALFORMED,
			      "report request needs exactly %d bytes of report data",
			      CL_DEVTEE_REPORT_DATA_LEN);
		CL_GUARD(cl_read_bytes(&body, out->report_data, CL_DEVTEE_REPORT_DATA_LEN));
		break;
	case CL_DEVTEE_OP_SEAL_KEY:
		CL_ENSURE_MSG(body.left >= 1 && body.left <= CL_DEVTEE_MAX_LABEL, CL_ERR_MALFORMED,
			      "sealing-key label must be 1 to %d bytes", CL_DEVTEE_MAX_LABEL);
		out->data_len = body.left;
		CL_GUARD(cl_read_ref(&body, out->data_len, &out->data));
		break;
	case CL_DEVTEE_OP_EXTEND:
		CL_GUARD(cl_read_u32le(&body, &out->index));
		CL_ENSURE_MSG(out->index < CL_DEVTEE_RTMRS, CL_ERR_MALFORMED,
			      "register index %u out of range", out->index);
		CL_GUARD(cl_read_bytes(&body, out->digest, CL_DEVTEE_HASH_LEN));
		CL_ENSURE_MSG(body.left <= CL_DEVTEE_MAX_EVENT, CL_ERR_MALFORMED,
			      "event data longer than %d bytes", CL_DEVTEE_MAX_EVENT);
		out->data_len = body.left;
		CL_GUARD(cl_read_ref(&body, out->data_len, &out->data));
		break;
	case CL_DEVTEE_OP_EVENTLOG:
		CL_ENSURE_MSG(body.left == 0, CL_ERR_MALFORMED, "event-log request has a payload");
		break;
	default:
		CL_BAIL(CL_ERR_UNSUPPORTED, "unknown dev-TEE request %u", op);
	}
	return CL_OK;
}

int cl_devtee_resp_encode(int status, const uint8_t *payload, size_t len, uint8_t *out, size_t cap,
			  size_t *outlen)
{
	CL_ENSURE(status <= 0 && status > -0x10000, CL_ERR_ARG);
	CL_ENSURE(len <= 0xffff && cap >= HDR_LEN && len <= cap - HDR_LEN, CL_ERR_ARG);
	le16(out, (uint16_t)-status);
	le16(out + 2, (uint16_t)len);
	if (len)
		memcpy(out + HDR_LEN, payload, len);
	*outlen = HDR_LEN + len;
	return CL_OK;
}

int cl_devtee_resp_parse(const uint8_t *p, size_t n, int *status, const uint8_t **payload,
			 size_t *len)
{
	struct cl_reader r = cl_reader_make(p, n);
	uint16_t st = 0, plen = 0;

	CL_GUARD(cl_read_u16le(&r, &st));
	CL_GUARD(cl_read_u16le(&r, &plen));
	CL_ENSURE_MSG(plen == r.left, CL_ERR_MALFORMED, "response length %u but %zu bytes follow",
		      plen, r.left);
	CL_ENSURE_MSG(st <= -CL_ERR_INTERNAL, CL_ERR_MALFORMED, "unknown response status %u", st);
	*status = -(int)st;
	*len = plen;
	CL_GUARD(cl_read_ref(&r, plen, payload));
	return CL_OK;
}
