/*
 * The `sev` crate's serde form of an SEV-SNP ATTESTATION_REPORT (what
 * Trustee's snp attester sends: every field a JSON integer or an array of
 * byte integers) turned back into the 1184 signed bytes.
 *
 * The signature covers the binary layout, so the JSON is only a transport:
 * each field is written at its firmware-ABI offset and everything else stays
 * zero, exactly as the firmware left the reserved bytes. Any value the JSON
 * cannot carry faithfully (an unknown key, a short array, an out-of-range
 * integer) is refused rather than guessed, since a guess would only surface
 * later as a confusing signature failure.
 */
#include <string.h>

#include "cloister/snp.h"

enum kind {
	K_U32,
	K_U64,
	K_BYTES,
	K_TCB,
	K_VERSION,
	K_CPUID, /* Option<u8>: null before report version 3 */
	K_MIT,	 /* Option<u64>: absent or null before version 4 */
	K_SIG,
};

struct field {
	const char *name;
	size_t off;
	enum kind kind;
	size_t len; /* K_BYTES only */
};

/* Offsets from the SEV-SNP firmware ABI; see cl_snp_report_parse. */
static const struct field FIELDS[] = {
	{"version", 0x00, K_U32, 0},
	{"guest_svn", 0x04, K_U32, 0},
	{"policy", 0x08, K_U64, 0},
	{"family_id", 0x10, K_BYTES, 16},
	{"image_id", 0x20, K_BYTES, 16},
	{"vmpl", 0x30, K_U32, 0},
	{"sig_algo", 0x34, K_U32, 0},
	{"current_tcb", 0x38, K_TCB, 0},
	{"plat_info", 0x40, K_U64, 0},
	{"key_info", 0x48, K_U32, 0},
	{"report_data", 0x50, K_BYTES, 64},
	{"measurement", 0x90, K_BYTES, 48},
	{"host_data", 0xC0, K_BYTES, 32},
	{"id_key_digest", 0xE0, K_BYTES, 48},
	{"author_key_digest", 0x110, K_BYTES, 48},
	{"report_id", 0x140, K_BYTES, 32},
	{"report_id_ma", 0x160, K_BYTES, 32},
	{"reported_tcb", 0x180, K_TCB, 0},
	{"cpuid_fam_id", 0x188, K_CPUID, 0},
	{"cpuid_mod_id", 0x189, K_CPUID, 0},
	{"cpuid_step", 0x18A, K_CPUID, 0},
	{"chip_id", 0x1A0, K_BYTES, 64},
	{"committed_tcb", 0x1E0, K_TCB, 0},
	{"current", 0x1E8, K_VERSION, 0},
	{"committed", 0x1EC, K_VERSION, 0},
	{"launch_tcb", 0x1F0, K_TCB, 0},
	{"launch_mit_vector", 0x1F8, K_MIT, 0},
	{"current_mit_vector", 0x200, K_MIT, 0},
	{"signature", CL_SNP_SIGNED_SIZE, K_SIG, 0},
};
#define N_FIELDS (sizeof(FIELDS) / sizeof(FIELDS[0]))

static const char *const TCB_KEYS[] = {"fmc", "bootloader", "tee", "snp", "microcode"};
static const char *const VERSION_KEYS[] = {"major", "minor", "build"};
static const char *const SIG_KEYS[] = {"r", "s"};

/* Where this report's TCB fields sit: Turin moved them and added FMC. */
struct conv {
	uint8_t *out;
	uint32_t version;
	int turin;
};

static int only_keys(const json_t *o, const char *const *keys, size_t n, const char *what)
{
	const char *k = NULL;
	json_t *v = NULL;

	CL_ENSURE_MSG(json_is_object(o), CL_ERR_MALFORMED, "SNP serde: %s is not an object", what);
	json_object_foreach ((json_t *)o, k, v) {
		size_t i = 0;

		(void)v;
		while (i < n && strcmp(k, keys[i]) != 0)
			i++;
		CL_ENSURE_MSG(i < n, CL_ERR_MALFORMED, "SNP serde: unknown key %.40s in %s", k,
			      what);
	}
	return CL_OK;
}

static int get_uint(const json_t *v, uint64_t max, uint64_t *out, const char *what)
{
	json_int_t x = 0;

	CL_ENSURE_MSG(v != NULL, CL_ERR_MALFORMED, "SNP serde: %s is missing", what);
	CL_ENSURE_MSG(json_is_integer(v), CL_ERR_MALFORMED, "SNP serde: %s is not an integer",
		      what);
	x = json_integer_value(v);
	/* jansson stops at INT64_MAX, so u64 fields top out there too. */
	CL_ENSURE_MSG(x >= 0 && (uint64_t)x <= max, CL_ERR_MALFORMED,
		      "SNP serde: %s is out of range", what);
	*out = (uint64_t)x;
	return CL_OK;
}

static void put_le(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static int get_bytes(const json_t *v, uint8_t *dst, size_t len, const char *what)
{
	size_t i = 0;
	json_t *x = NULL;

	CL_ENSURE_MSG(json_is_array(v) && json_array_size(v) == len, CL_ERR_MALFORMED,
		      "SNP serde: %s is not an array of %zu bytes", what, len);
	json_array_foreach (v, i, x) {
		uint64_t b = 0;

		CL_GUARD(get_uint(x, 0xFF, &b, what));
		dst[i] = (uint8_t)b;
	}
	return CL_OK;
}

/* TcbVersion: the legacy (Milan/Genoa) layout when fmc is null, Turin's when set. */
static int put_tcb(struct conv *c, const json_t *v, uint8_t *dst, const char *what)
{
	uint64_t bl = 0, tee = 0, snp = 0, mc = 0, fmc = 0;
	const json_t *f = NULL;

	CL_GUARD(only_keys(v, TCB_KEYS, 5, what));
	f = json_object_get(v, "fmc");
	CL_ENSURE_MSG(f != NULL, CL_ERR_MALFORMED, "SNP serde: %s.fmc is missing", what);
	CL_ENSURE_MSG(json_is_null(f) == !c->turin, CL_ERR_MALFORMED,
		      "SNP serde: %s.fmc does not match the CPU generation", what);
	if (c->turin)
		CL_GUARD(get_uint(f, 0xFF, &fmc, what));
	CL_GUARD(get_uint(json_object_get(v, "bootloader"), 0xFF, &bl, what));
	CL_GUARD(get_uint(json_object_get(v, "tee"), 0xFF, &tee, what));
	CL_GUARD(get_uint(json_object_get(v, "snp"), 0xFF, &snp, what));
	CL_GUARD(get_uint(json_object_get(v, "microcode"), 0xFF, &mc, what));
	if (c->turin) {
		dst[0] = (uint8_t)fmc;
		dst[1] = (uint8_t)bl;
		dst[2] = (uint8_t)tee;
		dst[3] = (uint8_t)snp;
	} else {
		dst[0] = (uint8_t)bl;
		dst[1] = (uint8_t)tee;
		dst[6] = (uint8_t)snp;
	}
	dst[7] = (uint8_t)mc;
	return CL_OK;
}

static int put_field(struct conv *c, const struct field *f, const json_t *v)
{
	uint8_t *dst = c->out + f->off;
	uint64_t x = 0;

	switch (f->kind) {
	case K_U32:
		CL_GUARD(get_uint(v, UINT32_MAX, &x, f->name));
		put_le(dst, x, 4);
		return CL_OK;
	case K_U64:
		CL_GUARD(get_uint(v, UINT64_MAX, &x, f->name));
		put_le(dst, x, 8);
		return CL_OK;
	case K_BYTES:
		return get_bytes(v, dst, f->len, f->name);
	case K_TCB:
		return put_tcb(c, v, dst, f->name);
	case K_VERSION: {
		uint64_t major = 0, minor = 0, build = 0;

		CL_GUARD(only_keys(v, VERSION_KEYS, 3, f->name));
		CL_GUARD(get_uint(json_object_get(v, "major"), 0xFF, &major, f->name));
		CL_GUARD(get_uint(json_object_get(v, "minor"), 0xFF, &minor, f->name));
		CL_GUARD(get_uint(json_object_get(v, "build"), 0xFF, &build, f->name));
		dst[0] = (uint8_t)build;
		dst[1] = (uint8_t)minor;
		dst[2] = (uint8_t)major;
		return CL_OK;
	}
	case K_CPUID:
		CL_ENSURE_MSG(v != NULL, CL_ERR_MALFORMED, "SNP serde: %s is missing", f->name);
		if (c->version < 3) {
			CL_ENSURE_MSG(json_is_null(v), CL_ERR_MALFORMED,
				      "SNP serde: %s must be null in a v%u report", f->name,
				      c->version);
			return CL_OK;
		}
		CL_GUARD(get_uint(v, 0xFF, &x, f->name));
		dst[0] = (uint8_t)x;
		return CL_OK;
	case K_MIT:
		/* Crate versions before the v5 report do not emit these keys. */
		if (v == NULL || json_is_null(v))
			return CL_OK;
		CL_ENSURE_MSG(c->version >= 4, CL_ERR_MALFORMED, "SNP serde: %s in a v%u report",
			      f->name, c->version);
		CL_GUARD(get_uint(v, UINT64_MAX, &x, f->name));
		put_le(dst, x, 8);
		return CL_OK;
	case K_SIG:
		CL_GUARD(only_keys(v, SIG_KEYS, 2, f->name));
		CL_GUARD(get_bytes(json_object_get(v, "r"), dst, CL_SNP_SIG_COMPONENT,
				   "signature.r"));
		return get_bytes(json_object_get(v, "s"), dst + CL_SNP_SIG_COMPONENT,
				 CL_SNP_SIG_COMPONENT, "signature.s");
	default:
		CL_BAIL(CL_ERR_INTERNAL, "SNP serde: field kind %d", (int)f->kind);
	}
}

static int convert(const json_t *report, uint8_t *out)
{
	struct conv c = {out, 0, 0};
	const char *k = NULL;
	json_t *v = NULL;
	uint64_t x = 0;

	CL_ENSURE_MSG(json_is_object(report), CL_ERR_MALFORMED,
		      "SNP serde: attestation_report is not an object");
	json_object_foreach ((json_t *)report, k, v) {
		size_t i = 0;

		(void)v;
		while (i < N_FIELDS && strcmp(k, FIELDS[i].name) != 0)
			i++;
		CL_ENSURE_MSG(i < N_FIELDS, CL_ERR_MALFORMED, "SNP serde: unknown key %.40s", k);
	}
	/*
	 * Layout choices first: the version decides whether CPUID is present,
	 * and the family (the crate's own rule) whether TCBs use Turin's layout.
	 */
	CL_GUARD(get_uint(json_object_get(report, "version"), UINT32_MAX, &x, "version"));
	c.version = (uint32_t)x;
	if (c.version >= 3) {
		CL_GUARD(get_uint(json_object_get(report, "cpuid_fam_id"), 0xFF, &x,
				  "cpuid_fam_id"));
		c.turin = x >= 0x1A;
	} else {
		const json_t *t = json_object_get(report, "current_tcb");

		/* v2 carries no CPUID; the crate then guesses from CHIP_ID. Take its answer. */
		c.turin = json_is_object(t) && json_object_get(t, "fmc") != NULL &&
			  !json_is_null(json_object_get(t, "fmc"));
	}
	for (size_t i = 0; i < N_FIELDS; i++) {
		const json_t *fv = json_object_get(report, FIELDS[i].name);

		if (FIELDS[i].kind != K_MIT && FIELDS[i].kind != K_CPUID)
			CL_ENSURE_MSG(fv != NULL, CL_ERR_MALFORMED, "SNP serde: %s is missing",
				      FIELDS[i].name);
		CL_GUARD(put_field(&c, &FIELDS[i], fv));
	}
	return CL_OK;
}

int cl_snp_report_from_serde(const json_t *report, uint8_t out[CL_SNP_REPORT_SIZE])
{
	int rc = CL_OK;

	CL_ENSURE_MSG(out != NULL, CL_ERR_ARG, "no output buffer");
	memset(out, 0, CL_SNP_REPORT_SIZE);
	rc = convert(report, out);
	if (rc != CL_OK)
		memset(out, 0, CL_SNP_REPORT_SIZE);
	return rc;
}

int cl_snp_report_from_serde_json(const char *text, size_t n, uint8_t out[CL_SNP_REPORT_SIZE])
{
	json_t *j = NULL;
	const json_t *r = NULL;
	int rc = CL_OK;

	CL_ENSURE_MSG(out != NULL, CL_ERR_ARG, "no output buffer");
	memset(out, 0, CL_SNP_REPORT_SIZE);
	CL_ENSURE_MSG(text != NULL || n == 0, CL_ERR_ARG, "no JSON");
	CL_ENSURE_MSG(n <= CL_SNP_SERDE_MAX_JSON, CL_ERR_MALFORMED,
		      "SNP serde: JSON is %zu bytes, at most %d", n, CL_SNP_SERDE_MAX_JSON);
	j = json_loadb(text, n, JSON_REJECT_DUPLICATES, NULL);
	CL_ENSURE_MSG(j != NULL, CL_ERR_MALFORMED, "SNP serde: not valid JSON");
	/* Either the report alone or Trustee's evidence object around it. */
	r = json_object_get(j, "attestation_report");
	rc = cl_snp_report_from_serde(r ? r : j, out);
	json_decref(j);
	return rc;
}
