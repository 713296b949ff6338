/*
 * TCG event logs on arbitrary bytes: parse, replay every bank, summarise and
 * render as JSON (what `cloister tpm eventlog` prints).
 */
#include <stdint.h>
#include <stdlib.h>

#include "cloister/eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cl_evlog log;
	struct cl_pcr_bank *bank = NULL;
	json_t *j = NULL;

	cl_log_set_level(CL_LOG_ERROR);
	if (cl_evlog_parse(data, size, &log) != CL_OK)
		return 0;
	bank = malloc(sizeof(*bank));
	for (unsigned i = 0; bank && i < log.nalgs; i++)
		(void)cl_evlog_replay(&log, log.algs[i], bank);
	if (cl_evlog_to_json(&log, &j) == CL_OK)
		json_decref(j);
	free(bank);
	cl_evlog_free(&log);
	return 0;
}
