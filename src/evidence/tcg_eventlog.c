/*
 * TCG PC Client event logs: parse (crypto-agile and legacy SHA-1), replay per
 * bank, and summarise the events that matter for appraisal.
 *
 * Layouts (TCG PC Client Platform Firmware Profile, section 10):
 *   TCG_PCClientPCREvent  pcr u32, type u32, SHA-1 digest[20], size u32, data
 *   TCG_PCR_EVENT2        pcr u32, type u32, count u32,
 *                         {alg u16, digest[size of alg]}[count], size u32, data
 * A crypto-agile log starts with a TCG_PCClientPCREvent of type EV_NO_ACTION
 * whose data is TCG_EfiSpecIdEvent ("Spec ID Event03"), which lists the banks
 * and their digest sizes; every later event is a TCG_PCR_EVENT2. All integers
 * are little-endian.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cloister/eventlog.h"

#define SPEC_ID_SIG	     "Spec ID Event03"
#define STARTUP_LOCALITY_SIG "StartupLocality"

static const struct {
	uint16_t alg;
	size_t len;
	const char *name;
	const char *ossl;
} algs[] = {
	{CL_TPM_ALG_SHA1, 20, "sha1", "SHA1"},	     {CL_TPM_ALG_SHA256, 32, "sha256", "SHA256"},
	{CL_TPM_ALG_SHA384, 48, "sha384", "SHA384"}, {CL_TPM_ALG_SHA512, 64, "sha512", "SHA512"},
	{CL_TPM_ALG_SM3_256, 32, "sm3_256", "SM3"},
};

size_t cl_tpm_alg_digest_len(uint16_t alg)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (algs[i].alg == alg)
			return algs[i].len;
	return 0;
}

const char *cl_tpm_alg_name(uint16_t alg)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (algs[i].alg == alg)
			return algs[i].name;
	return NULL;
}

uint16_t cl_tpm_alg_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (strcmp(algs[i].name, name) == 0)
			return algs[i].alg;
	return 0;
}

/* Hash with OpenSSL by TPM algorithm id; CL_ERR_UNSUPPORTED without one. */
static int tpm_hash(uint16_t alg, const void *p, size_t n, uint8_t *out)
{
	const char *ossl = NULL;
	EVP_MD *md = NULL;
	unsigned outlen = 0;
	int ok = 0;

	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++)
		if (algs[i].alg == alg)
			ossl = algs[i].ossl;
	if (!ossl || !(md = EVP_MD_fetch(NULL, ossl, NULL)))
		return cl_fail(CL_ERR_UNSUPPORTED, "no implementation of hash 0x%04x", alg);
	ok = EVP_Digest(p, n, out, &outlen, md, NULL);
	EVP_MD_free(md);
	return ok == 1 ? CL_OK : cl_fail(CL_ERR_CRYPTO, "digest failed");
}

static const struct {
	uint32_t type;
	const char *name;
} types[] = {
	{0x0, "EV_PREBOOT_CERT"},
	{0x1, "EV_POST_CODE"},
	{0x2, "EV_UNUSED"},
	{0x3, "EV_NO_ACTION"},
	{0x4, "EV_SEPARATOR"},
	{0x5, "EV_ACTION"},
	{0x6, "EV_EVENT_TAG"},
	{0x7, "EV_S_CRTM_CONTENTS"},
	{0x8, "EV_S_CRTM_VERSION"},
	{0x9, "EV_CPU_MICROCODE"},
	{0xa, "EV_PLATFORM_CONFIG_FLAGS"},
	{0xb, "EV_TABLE_OF_DEVICES"},
	{0xc, "EV_COMPACT_HASH"},
	{0xd, "EV_IPL"},
	{0xe, "EV_IPL_PARTITION_DATA"},
	{0xf, "EV_NONHOST_CODE"},
	{0x10, "EV_NONHOST_CONFIG"},
	{0x11, "EV_NONHOST_INFO"},
	{0x12, "EV_OMIT_BOOT_DEVICE_EVENTS"},
	{0x80000001, "EV_EFI_VARIABLE_DRIVER_CONFIG"},
	{0x80000002, "EV_EFI_VARIABLE_BOOT"},
	{0x80000003, "EV_EFI_BOOT_SERVICES_APPLICATION"},
	{0x80000004, "EV_EFI_BOOT_SERVICES_DRIVER"},
	{0x80000005, "EV_EFI_RUNTIME_SERVICES_DRIVER"},
	{0x80000006, "EV_EFI_GPT_EVENT"},
	{0x80000007, "EV_EFI_ACTION"},
	{0x80000008, "EV_EFI_PLATFORM_FIRMWARE_BLOB"},
	{0x80000009, "EV_EFI_HANDOFF_TABLES"},
	{0x8000000a, "EV_EFI_PLATFORM_FIRMWARE_BLOB2"},
	{0x8000000b, "EV_EFI_HANDOFF_TABLES2"},
	{0x8000000c, "EV_EFI_VARIABLE_BOOT2"},
	{0x80000010, "EV_EFI_HCRTM_EVENT"},
	{0x800000e0, "EV_EFI_VARIABLE_AUTHORITY"},
	{0x800000e1, "EV_EFI_SPDM_FIRMWARE_BLOB"},
	{0x800000e2, "EV_EFI_SPDM_FIRMWARE_CONFIG"},
};

const char *cl_evlog_type_name(uint32_t type)
{
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (types[i].type == type)
			return types[i].name;
	return NULL;
}

/* ---------------------------------------------------------------- parsing */

static int push_event(struct cl_evlog *log, size_t *cap, const struct cl_evlog_event *e)
{
	if (log->nevents == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		struct cl_evlog_event *ne = NULL;

		if (ncap > CL_EVLOG_MAX_EVENTS)
			ncap = CL_EVLOG_MAX_EVENTS;
		CL_ENSURE_MSG(log->nevents < ncap, CL_ERR_MALFORMED,
			      "event log has more than %u events", CL_EVLOG_MAX_EVENTS);
		ne = realloc(log->events, ncap * sizeof(*ne));
		CL_ENSURE_MSG(ne, CL_ERR_NOMEM, "out of memory");
		log->events = ne;
		*cap = ncap;
	}
	log->events[log->nevents++] = *e;
	return CL_OK;
}

static int read_data(struct cl_reader *r, struct cl_evlog_event *e)
{
	uint32_t size = 0;

	CL_GUARD(cl_read_u32le(r, &size));
	CL_ENSURE_MSG(size <= r->left, CL_ERR_TRUNCATED, "event data (%u bytes) runs past the log",
		      size);
	e->data_len = size;
	return cl_read_ref(r, size, &e->data);
}

static int read_legacy(struct cl_reader *r, struct cl_evlog_event *e)
{
	memset(e, 0, sizeof(*e));
	CL_GUARD(cl_read_u32le(r, &e->pcr));
	CL_GUARD(cl_read_u32le(r, &e->type));
	e->ndigests = 1;
	e->digests[0].alg = CL_TPM_ALG_SHA1;
	e->digests[0].len = 20;
	CL_GUARD(cl_read_ref(r, 20, &e->digests[0].d));
	CL_GUARD(read_data(r, e));
	CL_ENSURE_MSG(e->pcr < CL_TPM_NUM_PCRS, CL_ERR_MALFORMED, "event for PCR %u (max %u)",
		      e->pcr, CL_TPM_NUM_PCRS - 1);
	return CL_OK;
}

static int read_event2(struct cl_reader *r, const struct cl_evlog *log, struct cl_evlog_event *e)
{
	uint32_t count = 0;

	memset(e, 0, sizeof(*e));
	CL_GUARD(cl_read_u32le(r, &e->pcr));
	CL_GUARD(cl_read_u32le(r, &e->type));
	CL_GUARD(cl_read_u32le(r, &count));
	CL_ENSURE_MSG(e->pcr < CL_TPM_NUM_PCRS, CL_ERR_MALFORMED, "event for PCR %u (max %u)",
		      e->pcr, CL_TPM_NUM_PCRS - 1);
	CL_ENSURE_MSG(count <= log->nalgs, CL_ERR_MALFORMED,
		      "event has %u digests, the log declares %u banks", count, log->nalgs);
	for (uint32_t i = 0; i < count; i++) {
		uint16_t alg = 0;
		unsigned k = 0;

		CL_GUARD(cl_read_u16le(r, &alg));
		while (k < log->nalgs && log->algs[k] != alg)
			k++;
		CL_ENSURE_MSG(k < log->nalgs, CL_ERR_MALFORMED,
			      "event digest of algorithm 0x%04x not declared by the log", alg);
		for (uint32_t j = 0; j < i; j++)
			CL_ENSURE_MSG(e->digests[j].alg != alg, CL_ERR_MALFORMED,
				      "event has two digests of algorithm 0x%04x", alg);
		e->digests[i].alg = alg;
		e->digests[i].len = log->alg_len[k];
		CL_GUARD(cl_read_ref(r, log->alg_len[k], &e->digests[i].d));
	}
	e->ndigests = count;
	return read_data(r, e);
}

/* TCG_EfiSpecIdEvent in the first event's data. */
static int parse_spec_id(const struct cl_evlog_event *first, struct cl_evlog *log)
{
	struct cl_reader r = cl_reader_make(first->data, first->data_len);
	uint8_t sig[16] = {0}, minor = 0, major = 0, errata = 0, uintn = 0, vendor = 0;
	uint32_t platform = 0, n = 0;

	CL_GUARD(cl_read_bytes(&r, sig, sizeof(sig)));
	CL_GUARD(cl_read_u32le(&r, &platform));
	CL_GUARD(cl_read_u8(&r, &minor));
	CL_GUARD(cl_read_u8(&r, &major));
	CL_GUARD(cl_read_u8(&r, &errata));
	CL_GUARD(cl_read_u8(&r, &uintn));
	CL_GUARD(cl_read_u32le(&r, &n));
	CL_ENSURE_MSG(major == 2, CL_ERR_UNSUPPORTED, "Spec ID event version %u.%u", major, minor);
	CL_ENSURE_MSG(n >= 1 && n <= CL_EVLOG_MAX_ALGS, CL_ERR_MALFORMED,
		      "Spec ID event lists %u algorithms (1..%u)", n, CL_EVLOG_MAX_ALGS);
	for (uint32_t i = 0; i < n; i++) {
		uint16_t alg = 0, size = 0;
		size_t known = 0;

		CL_GUARD(cl_read_u16le(&r, &alg));
		CL_GUARD(cl_read_u16le(&r, &size));
		known = cl_tpm_alg_digest_len(alg);
		/* Unknown banks are fine (we cannot replay them), but not silly sizes. */
		CL_ENSURE_MSG(size >= 1 && size <= CL_TPM_MAX_DIGEST && (!known || known == size),
			      CL_ERR_MALFORMED,
			      "Spec ID event: algorithm 0x%04x with digest size %u", alg, size);
		for (uint32_t j = 0; j < i; j++)
			CL_ENSURE_MSG(log->algs[j] != alg, CL_ERR_MALFORMED,
				      "Spec ID event lists algorithm 0x%04x twice", alg);
		log->algs[i] = alg;
		log->alg_len[i] = size;
	}
	log->nalgs = n;
	CL_GUARD(cl_read_u8(&r, &vendor));
	CL_GUARD(cl_read_skip(&r, vendor));
	CL_ENSURE_MSG(r.left == 0, CL_ERR_MALFORMED, "Spec ID event has %zu trailing bytes",
		      r.left);
	return CL_OK;
}

static int all_zero(const struct cl_reader *r)
{
	for (size_t i = 0; i < r->left; i++)
		if (r->p[i])
			return 0;
	return 1;
}

int cl_evlog_parse(const uint8_t *p, size_t n, struct cl_evlog *out)
{
	struct cl_reader r = cl_reader_make(p, n);
	struct cl_evlog_event e;
	size_t cap = 0;
	int rc = CL_OK;

	memset(out, 0, sizeof(*out));
	CL_ENSURE_MSG(p != NULL || n == 0, CL_ERR_ARG, "no event log");
	CL_ENSURE_MSG(n <= CL_EVLOG_MAX_BYTES, CL_ERR_MALFORMED, "event log larger than %zu bytes",
		      CL_EVLOG_MAX_BYTES);
	CL_ENSURE_MSG(n > 0, CL_ERR_TRUNCATED, "empty event log");
	/* The header event is always in the SHA-1 layout. */
	CL_TRY(read_legacy(&r, &e));
	CL_TRY(push_event(out, &cap, &e));
	if (e.type == CL_EV_NO_ACTION && e.pcr == 0 && e.data_len >= sizeof(SPEC_ID_SIG) &&
	    memcmp(e.data, SPEC_ID_SIG, sizeof(SPEC_ID_SIG)) == 0) {
		out->crypto_agile = 1;
		CL_TRY(parse_spec_id(&e, out));
	} else {
		out->nalgs = 1;
		out->algs[0] = CL_TPM_ALG_SHA1;
		out->alg_len[0] = 20;
	}
	while (r.left > 0) {
		if (all_zero(&r))
			break;
		if (out->crypto_agile)
			CL_TRY(read_event2(&r, out, &e));
		else
			CL_TRY(read_legacy(&r, &e));
		if (e.type == CL_EV_NO_ACTION && e.pcr == 0 &&
		    e.data_len == sizeof(STARTUP_LOCALITY_SIG) + 1 &&
		    memcmp(e.data, STARTUP_LOCALITY_SIG, sizeof(STARTUP_LOCALITY_SIG)) == 0)
			out->startup_locality = e.data[sizeof(STARTUP_LOCALITY_SIG)];
		CL_TRY(push_event(out, &cap, &e));
	}
out:
	if (rc != CL_OK)
		cl_evlog_free(out);
	return rc;
}

void cl_evlog_free(struct cl_evlog *log)
{
	if (!log)
		return;
	free(log->events);
	memset(log, 0, sizeof(*log));
}

/* ----------------------------------------------------------------- replay */

static const struct cl_evlog_digest *event_digest(const struct cl_evlog_event *e, uint16_t alg)
{
	for (unsigned i = 0; i < e->ndigests; i++)
		if (e->digests[i].alg == alg)
			return &e->digests[i];
	return NULL;
}

int cl_evlog_replay(const struct cl_evlog *log, uint16_t alg, struct cl_pcr_bank *out)
{
	size_t len = cl_tpm_alg_digest_len(alg);
	uint8_t buf[2 * CL_TPM_MAX_DIGEST];
	unsigned k = 0;

	memset(out, 0, sizeof(*out));
	while (k < log->nalgs && log->algs[k] != alg)
		k++;
	CL_ENSURE_MSG(len && k < log->nalgs, CL_ERR_UNSUPPORTED, "event log has no %s bank",
		      cl_tpm_alg_name(alg) ? cl_tpm_alg_name(alg) : "such");
	out->alg = alg;
	out->len = len;
	/* A locality-3 or -4 start (H-CRTM) leaves the locality in PCR 0's last byte. */
	out->pcr[0][len - 1] = log->startup_locality;
	/* The crypto-agile header event is not a measurement. */
	for (size_t i = log->crypto_agile ? 1 : 0; i < log->nevents; i++) {
		const struct cl_evlog_event *e = &log->events[i];
		const struct cl_evlog_digest *d = NULL;

		if (e->type == CL_EV_NO_ACTION)
			continue;
		d = event_digest(e, alg);
		CL_ENSURE_MSG(d, CL_ERR_MALFORMED, "event %zu has no %s digest", i,
			      cl_tpm_alg_name(alg));
		memcpy(buf, out->pcr[e->pcr], len);
		memcpy(buf + len, d->d, len);
		CL_GUARD(tpm_hash(alg, buf, 2 * len, out->pcr[e->pcr]));
		out->extended |= 1u << e->pcr;
	}
	return CL_OK;
}

/* ----------------------------------------------------------------- claims */

/* EFI_GLOBAL_VARIABLE 8be4df61-93ca-11d2-aa0d-00e098032b8c as stored (mixed endian). */
static const uint8_t efi_global_guid[16] = {0x61, 0xdf, 0xe4, 0x8b, 0xca, 0x93, 0xd2, 0x11,
					    0xaa, 0x0d, 0x00, 0xe0, 0x98, 0x03, 0x2b, 0x8c};

#define MAX_VAR_NAME 256

int cl_evlog_efi_variable(const struct cl_evlog_event *e, uint8_t guid[16], char *name,
			  size_t name_cap, const uint8_t **data, size_t *data_len)
{
	struct cl_reader r = cl_reader_make(e->data, e->data_len);
	uint64_t nlen = 0, dlen = 0;
	const uint8_t *u16 = NULL;

	CL_GUARD(cl_read_bytes(&r, guid, 16));
	CL_GUARD(cl_read_u64le(&r, &nlen));
	CL_GUARD(cl_read_u64le(&r, &dlen));
	CL_ENSURE_MSG(nlen <= MAX_VAR_NAME && nlen < name_cap, CL_ERR_MALFORMED,
		      "EFI variable name of %llu characters", (unsigned long long)nlen);
	CL_GUARD(cl_read_ref(&r, (size_t)nlen * 2, &u16));
	/*
	 * shim logs its authority events with bytes after the variable data
	 * (seen on real machines); elsewhere the record must be exact.
	 */
	CL_ENSURE_MSG(dlen == r.left || (e->type == CL_EV_EFI_VARIABLE_AUTHORITY && dlen < r.left),
		      CL_ERR_MALFORMED,
		      "EFI variable data length %llu does not fill the event (%zu)",
		      (unsigned long long)dlen, r.left);
	for (size_t i = 0; i < nlen; i++) {
		uint16_t c = (uint16_t)(u16[2 * i] | (u16[2 * i + 1] << 8));

		name[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
	}
	name[nlen] = 0;
	*data = r.p;
	*data_len = (size_t)dlen;
	return CL_OK;
}

int cl_evlog_event_data_matches(const struct cl_evlog_event *e, uint16_t alg)
{
	const struct cl_evlog_digest *d = event_digest(e, alg);
	uint8_t h[CL_TPM_MAX_DIGEST], guid[16];
	char name[MAX_VAR_NAME + 1];
	const uint8_t *vd = NULL;
	size_t vlen = 0;

	if (!d || tpm_hash(alg, e->data, e->data_len, h) != CL_OK)
		return -1;
	if (memcmp(h, d->d, d->len) == 0)
		return 1;
	if ((e->type == CL_EV_EFI_VARIABLE_BOOT || e->type == CL_EV_EFI_VARIABLE_BOOT2) &&
	    cl_evlog_efi_variable(e, guid, name, sizeof(name), &vd, &vlen) == CL_OK &&
	    tpm_hash(alg, vd, vlen, h) == CL_OK && memcmp(h, d->d, d->len) == 0)
		return 1;
	return 0;
}

static int append(json_t *arr, json_t *v)
{
	CL_ENSURE_MSG(v && json_array_append_new(arr, v) == 0, CL_ERR_NOMEM, "out of memory");
	return CL_OK;
}

/* Printable ASCII prefix of event data (grub and shim log command lines and paths). */
static json_t *printable(const uint8_t *p, size_t n)
{
	char buf[257];
	size_t k = 0;

	for (size_t i = 0; i < n && k < sizeof(buf) - 1; i++) {
		if (p[i] == 0 && i + 1 == n)
			break;
		buf[k++] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '.';
	}
	buf[k] = 0;
	return json_string(buf);
}

static json_t *hexj(const uint8_t *p, size_t n)
{
	char *s = cl_hex_strdup(p, n);
	json_t *j = s ? json_string(s) : NULL;

	free(s);
	return j;
}

int cl_evlog_summary(const struct cl_evlog *log, uint16_t alg, uint32_t trusted, json_t **summary,
		     int *secure_boot)
{
	json_t *s = NULL, *vars = NULL, *boot = NULL, *ipl = NULL;
	size_t untrusted = 0, separators = 0, counted = 0;
	int rc = CL_OK;

	*summary = NULL;
	*secure_boot = -1;
	vars = json_array();
	boot = json_array();
	ipl = json_array();
	CL_CHECK(vars && boot && ipl, CL_ERR_NOMEM, "out of memory");
	for (size_t i = log->crypto_agile ? 1 : 0; i < log->nevents; i++) {
		const struct cl_evlog_event *e = &log->events[i];
		const struct cl_evlog_digest *d = event_digest(e, alg);
		uint8_t guid[16];
		char name[MAX_VAR_NAME + 1];
		const uint8_t *vd = NULL;
		size_t vlen = 0;
		uint8_t vh[32];

		if (e->type == CL_EV_NO_ACTION)
			continue;
		if (!(trusted & (1u << e->pcr)) || !d) {
			untrusted++;
			continue;
		}
		counted++;
		switch (e->type) {
		case CL_EV_SEPARATOR:
			separators++;
			break;
		case CL_EV_EFI_VARIABLE_DRIVER_CONFIG:
		case CL_EV_EFI_VARIABLE_AUTHORITY:
		case CL_EV_EFI_VARIABLE_BOOT:
		case CL_EV_EFI_VARIABLE_BOOT2:
			CL_TRY(cl_evlog_efi_variable(e, guid, name, sizeof(name), &vd, &vlen));
			/* Authority events hash only what was used, not the whole record. */
			if (e->type != CL_EV_EFI_VARIABLE_AUTHORITY)
				CL_CHECK(cl_evlog_event_data_matches(e, alg) == 1, CL_ERR_MISMATCH,
					 "event %zu (EFI variable %s): data does not match its "
					 "digest",
					 i, name);
			if (e->type == CL_EV_EFI_VARIABLE_BOOT ||
			    e->type == CL_EV_EFI_VARIABLE_BOOT2) {
				CL_TRY(append(boot, json_string(name)));
				break;
			}
			CL_TRY(tpm_hash(CL_TPM_ALG_SHA256, vd, vlen, vh));
			CL_TRY(append(vars,
				      json_pack("{s:i, s:s, s:s, s:I, s:o}", "pcr", (int)e->pcr,
						"type", cl_evlog_type_name(e->type), "name", name,
						"size", (json_int_t)vlen, "sha256",
						hexj(vh, sizeof(vh)))));
			if (e->type == CL_EV_EFI_VARIABLE_DRIVER_CONFIG && e->pcr == 7 &&
			    strcmp(name, "SecureBoot") == 0 &&
			    memcmp(guid, efi_global_guid, sizeof(guid)) == 0)
				*secure_boot = vlen >= 1 && vd[0] == 1;
			break;
		case CL_EV_IPL:
			CL_TRY(append(ipl, json_pack("{s:i, s:o, s:o}", "pcr", (int)e->pcr,
						     "digest", hexj(d->d, d->len), "data",
						     printable(e->data, e->data_len))));
			break;
		default:
			break;
		}
	}
	s = json_pack("{s:I, s:s, s:O, s:O, s:O, s:I, s:I}", "count", (json_int_t)counted, "bank",
		      cl_tpm_alg_name(alg), "efi_variables", vars, "boot_variables", boot, "ipl",
		      ipl, "separators", (json_int_t)separators, "untrusted",
		      (json_int_t)untrusted);
	CL_CHECK(s, CL_ERR_NOMEM, "out of memory");
	*summary = s;
out:
	json_decref(vars);
	json_decref(boot);
	json_decref(ipl);
	return rc;
}

static json_t *bank_json(const struct cl_pcr_bank *b)
{
	json_t *o = json_object();
	char idx[4];

	for (unsigned i = 0; o && i < CL_TPM_NUM_PCRS; i++) {
		if (!(b->extended & (1u << i)))
			continue;
		snprintf(idx, sizeof(idx), "%u", i);
		if (json_object_set_new(o, idx, hexj(b->pcr[i], b->len)) != 0) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

int cl_evlog_to_json(const struct cl_evlog *log, json_t **out)
{
	json_t *root = NULL, *evs = NULL, *pcrs = NULL, *banks = NULL, *sum = NULL;
	struct cl_pcr_bank *b = NULL;
	int rc = CL_OK, sb = -1;

	*out = NULL;
	evs = json_array();
	pcrs = json_object();
	banks = json_array();
	b = malloc(sizeof(*b));
	CL_CHECK(evs && pcrs && banks && b, CL_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < log->nevents; i++) {
		const struct cl_evlog_event *e = &log->events[i];
		const char *tn = cl_evlog_type_name(e->type);
		json_t *dg = json_object(), *ev = NULL;

		CL_CHECK(dg, CL_ERR_NOMEM, "out of memory");
		for (unsigned k = 0; k < e->ndigests; k++) {
			const char *an = cl_tpm_alg_name(e->digests[k].alg);
			char unk[16];

			if (!an) {
				snprintf(unk, sizeof(unk), "0x%04x", e->digests[k].alg);
				an = unk;
			}
			json_object_set_new(dg, an, hexj(e->digests[k].d, e->digests[k].len));
		}
		ev = json_pack("{s:I, s:i, s:I, s:s, s:o, s:o}", "index", (json_int_t)i, "pcr",
			       (int)e->pcr, "type", (json_int_t)e->type, "type_name",
			       tn ? tn : "unknown", "digests", dg, "data",
			       hexj(e->data, e->data_len));
		CL_TRY(append(evs, ev));
	}
	for (unsigned k = 0; k < log->nalgs; k++) {
		const char *an = cl_tpm_alg_name(log->algs[k]);

		if (!an || cl_evlog_replay(log, log->algs[k], b) != CL_OK)
			continue;
		CL_TRY(append(banks, json_string(an)));
		CL_CHECK(json_object_set_new(pcrs, an, bank_json(b)) == 0, CL_ERR_NOMEM,
			 "out of memory");
	}
	CL_CHECK(json_array_size(banks) > 0, CL_ERR_UNSUPPORTED,
		 "no bank of the log can be replayed");
	/* Summarise against the strongest bank we replayed; every PCR counts here. */
	CL_TRY(cl_evlog_summary(log,
				cl_tpm_alg_from_name(json_string_value(
					json_array_get(banks, json_array_size(banks) - 1))),
				0xffffffu, &sum, &sb));
	root = json_pack("{s:s, s:O, s:I, s:O, s:O, s:o, s:O}", "format",
			 log->crypto_agile ? "crypto-agile" : "sha1", "algorithms", banks, "count",
			 (json_int_t)log->nevents, "events", evs, "pcrs", pcrs, "secure_boot",
			 sb < 0 ? json_null() : json_boolean(sb), "summary", sum);
	CL_CHECK(root, CL_ERR_NOMEM, "out of memory");
	*out = root;
out:
	free(b);
	json_decref(evs);
	json_decref(pcrs);
	json_decref(banks);
	json_decref(sum);
	return rc;
}
