/*
 * The evidence formats cloister speaks, in one table. Adding a format is its
 * file in src/evidence/ and one line here; detection tries the table in
 * order, and the formats' detectors are exclusive (each checks a magic,
 * header or JSON shape no other format has).
 */
#include <stdio.h>
#include <string.h>

#include "format.h"
#include "internal.h"

static const struct cl_format_ops *const formats[] = {
	&cl_snp_format, &cl_tdx_format, &cl_sgx_format,	  &cl_devtee_format,
	&cl_tpm_format, &cl_psa_format, &cl_nitro_format,
};

#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

const struct cl_format_ops *cl_format_ops_get(enum cl_format id)
{
	for (size_t i = 0; i < NFORMATS; i++)
		if (formats[i]->id == id)
			return formats[i];
	return NULL;
}

const struct cl_format_ops *cl_format_ops_detect(const uint8_t *ev, size_t n, const json_t *json)
{
	for (size_t i = 0; i < NFORMATS; i++) {
		const struct cl_format_ops *f = formats[i];

		if (((f->flags & CL_FMT_JSON) != 0) == (json != NULL) && f->detect(ev, n, json))
			return f;
	}
	return NULL;
}

const char *cl_format_name(enum cl_format f)
{
	const struct cl_format_ops *ops = cl_format_ops_get(f);

	if (f == CL_FORMAT_AUTO)
		return "auto";
	return ops ? ops->name : "unknown";
}

int cl_format_parse(const char *s, enum cl_format *out)
{
	char names[128] = "auto";
	size_t off = strlen(names);

	if (strcmp(s, "auto") == 0) {
		*out = CL_FORMAT_AUTO;
		return CL_OK;
	}
	for (size_t i = 0; i < NFORMATS; i++) {
		int w = 0;

		if (strcmp(s, formats[i]->name) == 0) {
			*out = formats[i]->id;
			return CL_OK;
		}
		w = snprintf(names + off, sizeof(names) - off, ", %s", formats[i]->name);
		if (w > 0 && (size_t)w < sizeof(names) - off)
			off += (size_t)w;
	}
	return cl_fail(CL_ERR_ARG, "unknown evidence format '%s' (%s)", s, names);
}
