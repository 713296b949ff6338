#include <stdio.h>
#include <string.h>

#include "cloister/core.h"

static enum cl_log_level current = CL_LOG_WARN;
static const char *const names[] = {"error", "warn", "info", "debug"};

void cl_log_set_level(enum cl_log_level lvl)
{
	current = lvl;
}

enum cl_log_level cl_log_get_level(void)
{
	return current;
}

int cl_log_parse_level(const char *s, enum cl_log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = (enum cl_log_level)i;
			return CL_OK;
		}
	}
	return cl_fail(CL_ERR_ARG, "unknown log level '%s' (error, warn, info, debug)", s);
}

void cl_log(enum cl_log_level lvl, const char *fmt, ...)
{
	va_list ap;
	char line[1024];

	if (lvl > current)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "cloister: %s: %s\n", names[lvl], line);
}
