/*
 * Intel's TCB status algorithm, as Intel's Quote Verification Library does
 * it (TcbLevelCheck.cpp, TdxModuleCheck.cpp, EnclaveReportVerifier):
 *
 *  1. QE report against the QE identity: masked MISCSELECT and ATTRIBUTES,
 *     MRSIGNER, ISVPRODID; the first level with isvsvn <= the QE's ISVSVN
 *     gives the QE status.
 *  2. Platform: FMSPC and PCE-ID of the PCK certificate equal the TCB info's;
 *     the first level whose 16 SGX component SVNs and PCESVN the PCK meets
 *     (for TDX also the TDX components against TEE_TCB_SVN) is the match.
 *  3. TDX module: TEE_TCB_SVN[1] is the module's major version. 0: the
 *     module must match tdxModule. Otherwise identity "TDX_%02X" from
 *     tdxModuleIdentities must match and its first level with isvsvn <=
 *     TEE_TCB_SVN[0] gives the module status; the platform level then does
 *     not compare TDX components 0 and 1, which are the module's.
 *  4. Converge: an OutOfDate module or QE turns UpToDate/SWHardeningNeeded
 *     into OutOfDate and the Configuration* statuses into
 *     OutOfDateConfigurationNeeded; a Revoked one makes the result Revoked.
 * Advisories: the union of the matched platform, module and QE levels.
 */
#include <stdio.h>
#include <string.h>

#include "intel.h"

static enum cl_intel_status converge(enum cl_intel_status level, enum cl_intel_status other)
{
	if (other == CL_TCB_OUT_OF_DATE) {
		if (level == CL_TCB_UP_TO_DATE || level == CL_TCB_SW_HARDENING_NEEDED)
			return CL_TCB_OUT_OF_DATE;
		if (level == CL_TCB_CONFIGURATION_NEEDED ||
		    level == CL_TCB_CONFIGURATION_AND_SW_HARDENING_NEEDED)
			return CL_TCB_OUT_OF_DATE_CONFIGURATION_NEEDED;
	}
	if (other == CL_TCB_REVOKED)
		return CL_TCB_REVOKED;
	return level;
}

static int add_advisories(json_t *dst, json_t *src)
{
	size_t i = 0, j = 0;
	json_t *e = NULL, *d = NULL;

	if (!dst || !src)
		return CL_OK;
	json_array_foreach (src, i, e) {
		int dup = 0;

		json_array_foreach (dst, j, d)
			if (json_is_string(d) && json_equal(d, e))
				dup = 1;
		if (!dup)
			CL_ENSURE_MSG(json_array_append(dst, e) == 0, CL_ERR_NOMEM,
				      "out of memory");
	}
	return CL_OK;
}

static int check_qe(const struct cl_intel_qe_identity *qe, const struct cl_intel_tcb_input *in,
		    const struct cl_intel_isv_level **match)
{
	uint8_t misc[4] = {(uint8_t)in->qe_miscselect, (uint8_t)(in->qe_miscselect >> 8),
			   (uint8_t)(in->qe_miscselect >> 16), (uint8_t)(in->qe_miscselect >> 24)};

	for (int i = 0; i < 4; i++)
		CL_ENSURE_MSG((misc[i] & qe->miscselect_mask[i]) == qe->miscselect[i], CL_ERR_TCB,
			      "QE MISCSELECT does not match the QE identity");
	for (int i = 0; i < 16; i++)
		CL_ENSURE_MSG((in->qe_attributes[i] & qe->attributes_mask[i]) == qe->attributes[i],
			      CL_ERR_TCB, "QE ATTRIBUTES do not match the QE identity");
	CL_ENSURE_MSG(memcmp(in->qe_mrsigner, qe->mrsigner, 32) == 0, CL_ERR_TCB,
		      "QE MRSIGNER does not match the QE identity");
	CL_ENSURE_MSG(in->qe_isv_prod_id == qe->isvprodid, CL_ERR_TCB,
		      "QE ISVPRODID %u does not match the QE identity (%u)", in->qe_isv_prod_id,
		      qe->isvprodid);
	for (size_t i = 0; i < qe->nlevels; i++) {
		if (qe->levels[i].isvsvn <= in->qe_isv_svn) {
			*match = &qe->levels[i];
			return CL_OK;
		}
	}
	return cl_fail(CL_ERR_TCB, "QE ISVSVN %u is below every QE identity TCB level",
		       in->qe_isv_svn);
}

static int level_matches(const struct cl_intel_tcb_level *l, const struct cl_intel_tcb_input *in)
{
	if (in->pck.pcesvn < l->pcesvn)
		return 0;
	for (int i = 0; i < 16; i++)
		if (in->pck.cpusvn[i] < l->sgx[i])
			return 0;
	if (in->is_tdx) {
		/* With a module version, components 0 and 1 are the module's: step 3. */
		for (int i = in->tee_tcb_svn[1] > 0 ? 2 : 0; i < 16; i++)
			if (in->tee_tcb_svn[i] < l->tdx[i])
				return 0;
	}
	return 1;
}

static int check_module(const struct cl_intel_tcb_info *t, const struct cl_intel_tcb_input *in,
			const struct cl_intel_isv_level **match)
{
	const struct cl_intel_module_id *id = NULL;
	const uint8_t *mrsigner = t->module_mrsigner, *attr = t->module_attributes,
		      *mask = t->module_attributes_mask;
	uint8_t version = in->tee_tcb_svn[1], svn = in->tee_tcb_svn[0];

	*match = NULL;
	CL_ENSURE_MSG(t->have_module, CL_ERR_COLLATERAL, "TDX TCB info without tdxModule");
	if (version > 0) {
		for (size_t i = 0; i < t->nmodules && !id; i++)
			if (t->modules[i].version == version)
				id = &t->modules[i];
		CL_ENSURE_MSG(id != NULL, CL_ERR_TCB,
			      "TCB info has no TDX module identity TDX_%02X", version);
		mrsigner = id->mrsigner;
		attr = id->attributes;
		mask = id->attributes_mask;
	}
	CL_ENSURE_MSG(memcmp(in->mr_signer_seam, mrsigner, 48) == 0, CL_ERR_TCB,
		      "TDX module MRSIGNER does not match the TCB info");
	for (int i = 0; i < 8; i++)
		CL_ENSURE_MSG((in->seam_attributes[i] & mask[i]) == attr[i], CL_ERR_TCB,
			      "TDX module attributes do not match the TCB info");
	if (!id)
		return CL_OK;
	for (size_t i = 0; i < id->nlevels; i++) {
		if (id->levels[i].isvsvn <= svn) {
			*match = &id->levels[i];
			return CL_OK;
		}
	}
	return cl_fail(CL_ERR_TCB, "TDX module SVN %u is below every TDX_%02X TCB level", svn,
		       version);
}

int cl_intel_tcb_evaluate_unverified(const struct cl_intel_collateral *c,
				     const struct cl_intel_tcb_input *in, char status[48],
				     json_t *advisories)
{
	const struct cl_intel_core *core = c ? c->core : NULL;
	const struct cl_intel_tcb_info *t = NULL;
	const struct cl_intel_isv_level *qe = NULL, *module = NULL;
	const struct cl_intel_tcb_level *level = NULL;
	enum cl_intel_status st = CL_TCB_UP_TO_DATE;

	CL_ENSURE_MSG(core && in && status, CL_ERR_ARG, "missing TCB evaluation input");
	t = &core->tcb;
	CL_ENSURE_MSG(!!in->is_tdx == !!t->is_tdx && !!in->is_tdx == !!core->qe.is_td_qe,
		      CL_ERR_COLLATERAL, "%s quote with %s TCB info and %s QE identity",
		      in->is_tdx ? "TDX" : "SGX", t->is_tdx ? "TDX" : "SGX",
		      core->qe.is_td_qe ? "TD_QE" : "QE");
	CL_GUARD(check_qe(&core->qe, in, &qe));
	CL_ENSURE_MSG(memcmp(in->pck.fmspc, t->fmspc, 6) == 0, CL_ERR_COLLATERAL,
		      "FMSPC of the PCK certificate does not match the TCB info");
	CL_ENSURE_MSG(memcmp(in->pck.pceid, t->pceid, 2) == 0, CL_ERR_COLLATERAL,
		      "PCE-ID of the PCK certificate does not match the TCB info");
	for (size_t i = 0; i < t->nlevels; i++) {
		CL_ENSURE_MSG(t->levels[i].sgx_count == 16, CL_ERR_MALFORMED,
			      "SGX component count mismatch: expected 16, got %u",
			      t->levels[i].sgx_count);
		CL_ENSURE_MSG(!in->is_tdx || t->levels[i].tdx_count == 16, CL_ERR_MALFORMED,
			      "TDX component count mismatch: expected 16, got %u",
			      t->levels[i].tdx_count);
	}
	for (size_t i = 0; i < t->nlevels && !level; i++)
		if (level_matches(&t->levels[i], in))
			level = &t->levels[i];
	CL_ENSURE_MSG(level != NULL, CL_ERR_TCB, "no matching TCB level");
	st = level->status;
	if (in->is_tdx) {
		CL_GUARD(check_module(t, in, &module));
		if (module)
			st = converge(st, module->status);
	}
	st = converge(st, qe->status);
	CL_GUARD(add_advisories(advisories, level->advisories));
	if (module)
		CL_GUARD(add_advisories(advisories, module->advisories));
	CL_GUARD(add_advisories(advisories, qe->advisories));
	snprintf(status, 48, "%s", cl_intel_status_name(st));
	return CL_OK;
}

int cl_intel_tcb_evaluate(const struct cl_intel_collateral *c, const struct cl_intel_tcb_input *in,
			  char status[48], json_t *advisories)
{
	CL_ENSURE_MSG(c && c->verified, CL_ERR_ARG,
		      "TCB evaluation needs collateral verified with cl_intel_collateral_verify");
	return cl_intel_tcb_evaluate_unverified(c, in, status, advisories);
}
