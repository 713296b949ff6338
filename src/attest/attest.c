/*
 * Provider detection and the calls every provider shares.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>

#include "cloister/crypto.h"
#include "internal.h"

/* Detection order: the dev TEE is named explicitly by its socket, so it wins. */
static const struct cl_attest_provider *const providers[] = {
	&cl_attest_devtee_provider,    &cl_attest_tsm_provider,	    &cl_attest_sev_guest_provider,
	&cl_attest_tdx_guest_provider, &cl_attest_gramine_provider,
};

static const char *const kind_names[] = {"auto",      "devtee",	   "tsm",
					 "sev-guest", "tdx-guest", "gramine"};

const char *cl_attest_kind_name(enum cl_attest_kind k)
{
	if ((unsigned)k < sizeof(kind_names) / sizeof(kind_names[0]))
		return kind_names[k];
	return "unknown";
}

int cl_attest_kind_parse(const char *s, enum cl_attest_kind *out)
{
	for (unsigned i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++) {
		if (strcmp(s, kind_names[i]) == 0) {
			*out = (enum cl_attest_kind)i;
			return CL_OK;
		}
	}
	return cl_fail(CL_ERR_ARG,
		       "unknown attester '%s' (auto, devtee, tsm, sev-guest, tdx-guest, "
		       "gramine)",
		       s);
}

const char *cl_attest_cfg(const char *given, const char *env, const char *dflt)
{
	const char *e = NULL;

	if (given && *given)
		return given;
	e = getenv(env);
	return e && *e ? e : dflt;
}

int cl_attest_open(const struct cl_attest_config *cfg, struct cl_attester **out)
{
	static const struct cl_attest_config defaults = CL_ATTEST_CONFIG_INIT;
	const struct cl_attest_config *c = cfg ? cfg : &defaults;
	const struct cl_attest_provider *p = NULL;
	struct cl_attester *a = NULL;
	const char *tdx = cl_attest_cfg(c->tdx_measurements, "CLOISTER_TDX_MEASUREMENTS",
					CL_TDX_MEASUREMENTS);
	int rc = CL_OK;

	*out = NULL;
	for (size_t i = 0; i < sizeof(providers) / sizeof(providers[0]) && !p; i++) {
		if (c->kind != CL_ATTEST_AUTO && providers[i]->kind != c->kind)
			continue;
		if (c->kind != CL_ATTEST_AUTO || providers[i]->probe(c))
			p = providers[i];
	}
	CL_ENSURE_MSG(p, CL_ERR_NOT_FOUND,
		      "no TEE detected (devtee socket, configfs-tsm, "
		      "/dev/sev-guest, tdx_guest, /dev/attestation)");
	a = calloc(1, sizeof(*a));
	CL_ENSURE_MSG(a, CL_ERR_NOMEM, "out of memory");
	a->kind = p->kind;
	a->ops = p;
	a->fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	if (strlen(tdx) < sizeof(a->tdx_path))
		snprintf(a->tdx_path, sizeof(a->tdx_path), "%s", tdx);
	CL_TRY(p->open(c, a));
	*out = a;
	a = NULL;
out:
	cl_attest_close(a);
	return rc;
}

void cl_attest_close(struct cl_attester *a)
{
	if (!a)
		return;
	if (a->ops && a->ops->close)
		a->ops->close(a);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

enum cl_attest_kind cl_attest_kind(const struct cl_attester *a)
{
	return a->kind;
}

int cl_attest_evidence(struct cl_attester *a, const uint8_t report_data[64],
		       struct cl_attest_evidence *out)
{
	int rc = CL_OK;

	memset(out, 0, sizeof(*out));
	CL_ENSURE_MSG(a->ops->evidence, CL_ERR_UNSUPPORTED, "%s gives no evidence of its own",
		      cl_attest_kind_name(a->kind));
	pthread_mutex_lock(&a->lock);
	rc = a->ops->evidence(a, report_data, out);
	pthread_mutex_unlock(&a->lock);
	if (rc != CL_OK)
		cl_attest_evidence_free(out);
	return rc;
}

void cl_attest_evidence_free(struct cl_attest_evidence *ev)
{
	if (!ev)
		return;
	cl_buf_free(&ev->evidence);
	cl_buf_free(&ev->aux);
}

int cl_attest_derive_key(struct cl_attester *a, const uint8_t *label, size_t label_len,
			 uint8_t key[CL_ATTEST_KEY_LEN])
{
	int rc = CL_OK;

	CL_ENSURE_MSG(label_len >= 1 && label_len <= 64, CL_ERR_ARG,
		      "key label must be 1 to 64 bytes");
	CL_ENSURE_MSG(a->ops->derive_key, CL_ERR_UNSUPPORTED, "%s cannot derive sealing keys",
		      cl_attest_kind_name(a->kind));
	pthread_mutex_lock(&a->lock);
	rc = a->ops->derive_key(a, label, label_len, key);
	pthread_mutex_unlock(&a->lock);
	if (rc != CL_OK)
		cl_zeroize(key, CL_ATTEST_KEY_LEN);
	return rc;
}

/* RTMRs are reachable beside tsm on a TDX guest. */
static int tdx_beside(const struct cl_attester *a)
{
	char p[PATH_MAX + 16];

	snprintf(p, sizeof(p), "%s/rtmr0:sha384", a->tdx_path);
	return a->tdx_path[0] && access(p, R_OK) == 0;
}

int cl_attest_extend(struct cl_attester *a, unsigned index, const uint8_t digest[48],
		     const void *event, size_t event_len)
{
	int rc = CL_OK;

	CL_ENSURE_MSG(index < 4, CL_ERR_ARG, "register index %u out of range (0..3)", index);
	if (!a->ops->extend && tdx_beside(a))
		return cl_attest_tdx_extend(a->tdx_path, index, digest);
	CL_ENSURE_MSG(a->ops->extend, CL_ERR_UNSUPPORTED, "%s has no runtime registers",
		      cl_attest_kind_name(a->kind));
	pthread_mutex_lock(&a->lock);
	rc = a->ops->extend(a, index, digest, event, event_len);
	pthread_mutex_unlock(&a->lock);
	return rc;
}

int cl_attest_read_register(struct cl_attester *a, unsigned index, uint8_t out[48])
{
	CL_ENSURE_MSG(index < 4, CL_ERR_ARG, "register index %u out of range (0..3)", index);
	if (!a->ops->read_register && tdx_beside(a))
		return cl_attest_tdx_read(a->tdx_path, index, out);
	CL_ENSURE_MSG(a->ops->read_register, CL_ERR_UNSUPPORTED,
		      "%s cannot read its registers directly (they are in its reports)",
		      cl_attest_kind_name(a->kind));
	return a->ops->read_register(a, index, out);
}

int cl_attest_hkdf(const uint8_t *ikm, size_t ikm_len, const char *domain, const uint8_t *label,
		   size_t label_len, uint8_t out[32])
{
	uint8_t info[128];
	size_t dlen = strlen(domain) + 1;

	CL_ENSURE_MSG(dlen <= sizeof(info) && label_len <= sizeof(info) - dlen, CL_ERR_ARG,
		      "key label too long");
	memcpy(info, domain, dlen); /* the NUL separates domain and label */
	memcpy(info + dlen, label, label_len);
	return cl_hkdf_sha384(ikm, ikm_len, NULL, 0, info, dlen + label_len, out, 32);
}

int cl_attest_write_attr(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t w = 0;

	CL_ENSURE_MSG(fd >= 0, CL_ERR_IO, "cannot open %s: %s", path, strerror(errno));
	w = write(fd, p, n);
	if (w != (ssize_t)n) {
		int e = errno;

		close(fd);
		CL_BAIL(CL_ERR_IO, "cannot write %s: %s", path,
			w < 0 ? strerror(e) : "short write");
	}
	CL_ENSURE_MSG(close(fd) == 0, CL_ERR_IO, "cannot write %s: %s", path, strerror(errno));
	return CL_OK;
}

int cl_attest_read_attr(const char *path, size_t max, struct cl_buf *out)
{
	return cl_read_file(path, max, out);
}
