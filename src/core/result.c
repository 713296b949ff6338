#include <stdio.h>

#include "cloister/core.h"

struct err_entry {
	int code;
	const char *name;
	const char *desc;
};

static const struct err_entry err_table[] = {
	{CL_OK, "ok", "success"},
	{CL_ERR_ARG, "argument", "invalid argument"},
	{CL_ERR_NOMEM, "nomem", "out of memory"},
	{CL_ERR_IO, "io", "input/output error"},
	{CL_ERR_TRUNCATED, "truncated", "input is truncated"},
	{CL_ERR_MALFORMED, "malformed", "input is malformed"},
	{CL_ERR_UNSUPPORTED, "unsupported", "unsupported format or algorithm"},
	{CL_ERR_SIGNATURE, "signature", "signature verification failed"},
	{CL_ERR_CHAIN, "chain", "certificate chain verification failed"},
	{CL_ERR_REVOKED, "revoked", "certificate revoked"},
	{CL_ERR_EXPIRED, "expired", "outside validity period"},
	{CL_ERR_TCB, "tcb", "TCB check failed"},
	{CL_ERR_POLICY, "policy", "refused by policy"},
	{CL_ERR_MISMATCH, "mismatch", "bound value mismatch"},
	{CL_ERR_COLLATERAL, "collateral", "collateral missing or invalid"},
	{CL_ERR_NOT_FOUND, "not-found", "not found"},
	{CL_ERR_NETWORK, "network", "network error"},
	{CL_ERR_CRYPTO, "crypto", "cryptographic library error"},
	{CL_ERR_INTERNAL, "internal", "internal error"},
};

static const struct err_entry *lookup(int err)
{
	for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++)
		if (err_table[i].code == err)
			return &err_table[i];
	return NULL;
}

const char *cl_err_name(int err)
{
	const struct err_entry *e = lookup(err);
	return e ? e->name : "unknown";
}

const char *cl_err_str(int err)
{
	const struct err_entry *e = lookup(err);
	return e ? e->desc : "unknown error";
}

static _Thread_local char detail[512];
static _Thread_local int detail_err;

const char *cl_error_detail(void)
{
	return detail;
}

const char *cl_error_reason(int err)
{
	if (detail[0] && detail_err == err && err != CL_OK)
		return detail;
	return cl_err_str(err);
}

void cl_error_clear(void)
{
	detail[0] = '\0';
	detail_err = CL_OK;
}

int cl_fail(int err, const char *fmt, ...)
{
	va_list ap;

	detail_err = err;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	cl_log_debug("%s: %s", cl_err_name(err), detail);
	return err;
}
