/*
 * The dev-TEE provider: the workload's side of the platform socket.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cloister/devtee.h"
#include "internal.h"

static int env_fd(const struct cl_attest_config *cfg)
{
	const char *s = getenv(CL_DEVTEE_FD_ENV);
	char *end = NULL;
	long v = 0;

	if (cfg->devtee_fd >= 0)
		return cfg->devtee_fd;
	if (!s || !*s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > 65535)
		return -1;
	return (int)v;
}

static int is_seqpacket(int fd)
{
	int type = 0;
	socklen_t len = sizeof(type);

	return fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 &&
	       type == SOCK_SEQPACKET;
}

static int probe(const struct cl_attest_config *cfg)
{
	return is_seqpacket(env_fd(cfg));
}

static int open_(const struct cl_attest_config *cfg, struct cl_attester *a)
{
	int fd = env_fd(cfg);

	CL_ENSURE_MSG(is_seqpacket(fd), CL_ERR_NOT_FOUND,
		      "no dev-TEE platform socket ($%s is not a SEQPACKET socket)",
		      CL_DEVTEE_FD_ENV);
	/* Keeps processes of the same user from reading keys out of this one. */
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	a->fd = fd;
	return CL_OK;
}

/* One request, one response; payload copied into out (cap bytes). */
static int call(struct cl_attester *a, const struct cl_devtee_req *q, uint8_t *out, size_t cap,
		size_t *len)
{
	static _Thread_local uint8_t msg[CL_DEVTEE_MAX_MSG];
	const uint8_t *payload = NULL;
	size_t mlen = 0, plen = 0, got = 0;
	ssize_t n = 0;
	int status = CL_OK, rc = CL_OK;

	CL_TRY(cl_devtee_req_encode(q, msg, sizeof(msg), &mlen));
	do
		n = send(a->fd, msg, mlen, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	CL_CHECK(n == (ssize_t)mlen, CL_ERR_IO, "dev-TEE platform: %s",
		 n < 0 ? strerror(errno) : "short send");
	do
		n = recv(a->fd, msg, sizeof(msg), MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	CL_CHECK(n > 0, CL_ERR_IO, "dev-TEE platform: %s", n < 0 ? strerror(errno) : "closed");
	got = (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg);
	CL_CHECK((size_t)n <= sizeof(msg), CL_ERR_MALFORMED, "dev-TEE response too large");
	CL_TRY(cl_devtee_resp_parse(msg, (size_t)n, &status, &payload, &plen));
	CL_CHECK(status == CL_OK, status, "dev-TEE platform refused the request (%s)",
		 cl_err_name(status));
	CL_CHECK(plen <= cap, CL_ERR_MALFORMED, "dev-TEE response too large");
	if (plen)
		memcpy(out, payload, plen);
	*len = plen;
out:
	/* Responses may carry sealing keys. */
	cl_zeroize(msg, got);
	return rc;
}

static int evidence(struct cl_attester *a, const uint8_t rd[64], struct cl_attest_evidence *out)
{
	static _Thread_local uint8_t buf[CL_DEVTEE_MAX_MSG];
	struct cl_devtee_req q = {0};
	struct cl_devtee_report r;
	size_t n = 0;

	q.op = CL_DEVTEE_OP_REPORT;
	memcpy(q.report_data, rd, sizeof(q.report_data));
	CL_GUARD(call(a, &q, buf, sizeof(buf), &n));
	CL_GUARD(cl_devtee_report_parse(buf, n, &r));
	CL_ENSURE_MSG(memcmp(r.report_data, rd, 64) == 0, CL_ERR_MISMATCH,
		      "dev-TEE report carries other report data");
	CL_GUARD(cl_buf_append(&out->evidence, buf, n));
	q.op = CL_DEVTEE_OP_EVENTLOG;
	CL_GUARD(call(a, &q, buf, sizeof(buf), &n));
	CL_GUARD(cl_devtee_eventlog_replay(buf, n, r.rtmr, NULL));
	CL_GUARD(cl_buf_append(&out->aux, buf, n));
	out->format = CL_FORMAT_DEVTEE;
	snprintf(out->provider, sizeof(out->provider), "%s", "devtee");
	return CL_OK;
}

static int derive_key(struct cl_attester *a, const uint8_t *label, size_t n, uint8_t key[32])
{
	struct cl_devtee_req q = {0};
	size_t len = 0;

	q.op = CL_DEVTEE_OP_SEAL_KEY;
	q.data = label;
	q.data_len = n;
	CL_GUARD(call(a, &q, key, 32, &len));
	CL_ENSURE_MSG(len == 32, CL_ERR_MALFORMED, "dev-TEE sealing key is %zu bytes", len);
	return CL_OK;
}

static int extend(struct cl_attester *a, unsigned index, const uint8_t digest[48],
		  const void *event, size_t event_len)
{
	struct cl_devtee_req q = {0};
	uint8_t none[1];
	size_t len = 0;

	q.op = CL_DEVTEE_OP_EXTEND;
	q.index = index;
	memcpy(q.digest, digest, sizeof(q.digest));
	q.data = event;
	q.data_len = event ? event_len : 0;
	return call(a, &q, none, 0, &len);
}

const struct cl_attest_provider cl_attest_devtee_provider = {
	CL_ATTEST_DEVTEE, probe, open_, evidence, derive_key, extend, NULL, NULL,
};
