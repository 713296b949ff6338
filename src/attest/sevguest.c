/*
 * /dev/sev-guest (linux/sev-guest.h): SNP_GET_REPORT for guests without
 * configfs-tsm, and SNP_GET_DERIVED_KEY for sealing keys. The request
 * building and response parsing are separate functions so tests run them on
 * recorded data; the ioctls themselves need an SEV-SNP guest.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <linux/sev-guest.h>

#include "internal.h"

#define SEV_GUEST      "/dev/sev-guest"
#define SNP_REPORT_LEN 1184
#define RSP_HDR	       0x20

_Static_assert(sizeof(struct snp_derived_key_req) == 32, "snp_derived_key_req layout");
_Static_assert(sizeof(struct snp_derived_key_resp) == 64, "snp_derived_key_resp layout");

void cl_attest_snp_key_req(struct cl_snp_key_req *q)
{
	memset(q, 0, sizeof(*q));
	q->root_key_select = 0; /* VCEK: tied to this chip and its TCB */
	/* Bound to what was launched and under which policy. */
	q->guest_field_select = (1u << 0) | (1u << 3);
	q->vmpl = 0;
}

static int resp_status(struct cl_reader *r, const char *what)
{
	uint32_t status = 0;

	CL_GUARD(cl_read_u32le(r, &status));
	CL_ENSURE_MSG(status == 0, CL_ERR_IO, "SEV firmware refused the %s request (status 0x%x)",
		      what, status);
	return CL_OK;
}

int cl_attest_snp_key_resp(const uint8_t *p, size_t n, uint8_t key[32])
{
	struct cl_reader r = cl_reader_make(p, n);

	CL_ENSURE_MSG(n == sizeof(struct snp_derived_key_resp), CL_ERR_MALFORMED,
		      "MSG_KEY_RSP is %zu bytes, want 64", n);
	CL_GUARD(resp_status(&r, "derived key"));
	CL_GUARD(cl_read_skip(&r, RSP_HDR - 4));
	CL_GUARD(cl_read_bytes(&r, key, 32));
	return CL_OK;
}

int cl_attest_snp_report_resp(const uint8_t *p, size_t n, const uint8_t **report,
			      size_t *report_len)
{
	struct cl_reader r = cl_reader_make(p, n);
	uint32_t size = 0;

	CL_GUARD(resp_status(&r, "report"));
	CL_GUARD(cl_read_u32le(&r, &size));
	CL_GUARD(cl_read_skip(&r, RSP_HDR - 8));
	CL_ENSURE_MSG(size == SNP_REPORT_LEN, CL_ERR_MALFORMED,
		      "MSG_REPORT_RSP says the report is %u bytes", size);
	CL_GUARD(cl_read_ref(&r, size, report));
	*report_len = size;
	return CL_OK;
}

static const char *dev_path(const struct cl_attest_config *cfg)
{
	return cl_attest_cfg(cfg->sev_guest, "CLOISTER_SEV_GUEST", SEV_GUEST);
}

static int probe(const struct cl_attest_config *cfg)
{
	return access(dev_path(cfg), R_OK | W_OK) == 0;
}

static int open_(const struct cl_attest_config *cfg, struct cl_attester *a)
{
	const char *p = dev_path(cfg);

	CL_ENSURE_MSG(strlen(p) < sizeof(a->path), CL_ERR_ARG, "device path too long");
	snprintf(a->path, sizeof(a->path), "%s", p);
	return CL_OK;
}

static int guest_request(const struct cl_attester *a, unsigned long cmd, void *req, void *resp,
			 const char *what)
{
	struct snp_guest_request_ioctl io;
	int fd = open(a->path, O_RDWR | O_CLOEXEC), r = 0;

	CL_ENSURE_MSG(fd >= 0, CL_ERR_IO, "cannot open %s: %s", a->path, strerror(errno));
	memset(&io, 0, sizeof(io));
	io.msg_version = 1;
	io.req_data = (uint64_t)(uintptr_t)req;
	io.resp_data = (uint64_t)(uintptr_t)resp;
	do
		r = ioctl(fd, cmd, &io);
	while (r < 0 && errno == EINTR);
	close(fd);
	CL_ENSURE_MSG(r == 0, CL_ERR_IO, "%s: %s failed: %s (firmware 0x%x, VMM 0x%x)", a->path,
		      what, strerror(errno), io.fw_error, io.vmm_error);
	return CL_OK;
}

static int evidence(struct cl_attester *a, const uint8_t rd[64], struct cl_attest_evidence *out)
{
	struct snp_report_req req;
	struct snp_report_resp resp;
	const uint8_t *rep = NULL;
	size_t len = 0;

	memset(&req, 0, sizeof(req));
	memset(&resp, 0, sizeof(resp));
	memcpy(req.user_data, rd, sizeof(req.user_data));
	CL_GUARD(guest_request(a, SNP_GET_REPORT, &req, &resp, "SNP_GET_REPORT"));
	CL_GUARD(cl_attest_snp_report_resp(resp.data, sizeof(resp.data), &rep, &len));
	CL_GUARD(cl_buf_append(&out->evidence, rep, len));
	out->format = CL_FORMAT_SNP;
	snprintf(out->provider, sizeof(out->provider), "%s", "sev-guest");
	return CL_OK;
}

static int derive_key(struct cl_attester *a, const uint8_t *label, size_t n, uint8_t key[32])
{
	struct cl_snp_key_req q;
	struct snp_derived_key_req req;
	struct snp_derived_key_resp resp;
	uint8_t root[32];
	int rc = CL_OK;

	cl_attest_snp_key_req(&q);
	memset(&req, 0, sizeof(req));
	req.root_key_select = q.root_key_select;
	req.guest_field_select = q.guest_field_select;
	req.vmpl = q.vmpl;
	req.guest_svn = q.guest_svn;
	req.tcb_version = q.tcb_version;
	memset(&resp, 0, sizeof(resp));
	CL_TRY(guest_request(a, SNP_GET_DERIVED_KEY, &req, &resp, "SNP_GET_DERIVED_KEY"));
	CL_TRY(cl_attest_snp_key_resp(resp.data, sizeof(resp.data), root));
	CL_TRY(cl_attest_hkdf(root, sizeof(root), "cloister sev-guest key v1", label, n, key));
out:
	cl_zeroize(root, sizeof(root));
	cl_zeroize(&resp, sizeof(resp));
	return rc;
}

const struct cl_attest_provider cl_attest_sev_guest_provider = {
	CL_ATTEST_SEV_GUEST, probe, open_, evidence, derive_key, NULL, NULL, NULL,
};
