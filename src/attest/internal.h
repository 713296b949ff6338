/* Provider table behind include/cloister/attest.h. */
#ifndef CLOISTER_ATTEST_INTERNAL_H
#define CLOISTER_ATTEST_INTERNAL_H

#include <limits.h>
#include <pthread.h>

#include "cloister/attest.h"

struct cl_attester {
	enum cl_attest_kind kind;
	const struct cl_attest_provider *ops;
	int fd;			 /* devtee socket, or -1 */
	pthread_mutex_t lock;	 /* one request/response at a time on fd */
	char path[PATH_MAX];	 /* provider's base path */
	char entry[PATH_MAX];	 /* tsm: the report entry directory */
	int entry_created;	 /* tsm: we made entry and remove it on close */
	char tdx_path[PATH_MAX]; /* RTMRs, when present next to another provider */
};

struct cl_attest_provider {
	enum cl_attest_kind kind;
	/* 1 when present under cfg; never fails. */
	int (*probe)(const struct cl_attest_config *cfg);
	int (*open)(const struct cl_attest_config *cfg, struct cl_attester *a);
	int (*evidence)(struct cl_attester *a, const uint8_t rd[64],
			struct cl_attest_evidence *out);
	int (*derive_key)(struct cl_attester *a, const uint8_t *label, size_t n, uint8_t key[32]);
	int (*extend)(struct cl_attester *a, unsigned index, const uint8_t digest[48],
		      const void *event, size_t event_len);
	int (*read_register)(struct cl_attester *a, unsigned index, uint8_t out[48]);
	void (*close)(struct cl_attester *a);
};

extern const struct cl_attest_provider cl_attest_devtee_provider;
extern const struct cl_attest_provider cl_attest_tsm_provider;
extern const struct cl_attest_provider cl_attest_sev_guest_provider;
extern const struct cl_attest_provider cl_attest_tdx_guest_provider;
extern const struct cl_attest_provider cl_attest_gramine_provider;

/* cfg value, else the environment variable, else dflt. */
const char *cl_attest_cfg(const char *given, const char *env, const char *dflt);
/* HKDF-SHA384(ikm, no salt, info = domain 0x00 label) into 32 bytes. */
CL_MUST_USE int cl_attest_hkdf(const uint8_t *ikm, size_t ikm_len, const char *domain,
			       const uint8_t *label, size_t label_len, uint8_t out[32]);
/* Write exactly n bytes to path in one write() (kernel attribute files). */
CL_MUST_USE int cl_attest_write_attr(const char *path, const void *p, size_t n);
/* Read path into out (at most max bytes). */
CL_MUST_USE int cl_attest_read_attr(const char *path, size_t max, struct cl_buf *out);
/* TDX RTMR access under dir (shared by tdx-guest and tsm on TDX). */
CL_MUST_USE int cl_attest_tdx_read(const char *dir, unsigned index, uint8_t out[48]);
CL_MUST_USE int cl_attest_tdx_extend(const char *dir, unsigned index, const uint8_t digest[48]);

#define CL_TDX_MEASUREMENTS "/sys/devices/virtual/misc/tdx_guest/measurements"

#endif
