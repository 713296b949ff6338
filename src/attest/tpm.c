/*
 * TPM evidence provider over tpm2-tss ESYS: derive the AK, read and quote
 * PCRs, and package them with the firmware event log.
 *
 * PCRs can change between TPM2_PCR_Read and TPM2_Quote (anything may extend
 * them), so the values read are hashed as the verifier will hash them and
 * compared with the quote's pcrDigest; on a difference the pair is taken
 * again, a few times at most.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>
#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "cloister/attest_tpm.h"
#include "cloister/tpm.h"

#define QUOTE_ATTEMPTS 4

struct tpm {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	ESYS_TR ak;
	TPM2B_PUBLIC *ak_pub;
	int local_device;
};

static int tss_fail(TSS2_RC rc, const char *what)
{
	return cl_fail(CL_ERR_IO, "TPM: %s: %s", what, Tss2_RC_Decode(rc));
}

static void tpm_close(struct tpm *t)
{
	if (t->esys && t->ak != ESYS_TR_NONE)
		(void)Esys_FlushContext(t->esys, t->ak);
	Esys_Free(t->ak_pub);
	if (t->esys)
		Esys_Finalize(&t->esys);
	if (t->tcti)
		Tss2_TctiLdr_Finalize(&t->tcti);
	memset(t, 0, sizeof(*t));
}

/* Connect and derive the AK (see attest_tpm.h for the template). */
static int tpm_open(const char *tcti, struct tpm *t)
{
	TPM2B_SENSITIVE_CREATE sens = {0};
	TPM2B_PUBLIC tmpl = {0};
	TPM2B_DATA outside = {0};
	TPML_PCR_SELECTION none = {0};
	TPM2B_CREATION_DATA *cdata = NULL;
	TPM2B_DIGEST *chash = NULL;
	TPMT_TK_CREATION *ticket = NULL;
	TSS2_RC r = 0;
	int rc = CL_OK;

	memset(t, 0, sizeof(*t));
	t->ak = ESYS_TR_NONE;
	if (!tcti || !*tcti)
		tcti = getenv("TPM2TOOLS_TCTI");
	if (tcti && !*tcti)
		tcti = NULL;
	t->local_device = !tcti || strncmp(tcti, "device", 6) == 0;
	r = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
	CL_CHECK(r == TSS2_RC_SUCCESS, CL_ERR_IO, "TPM: cannot open TCTI '%s': %s",
		 tcti ? tcti : "(default)", Tss2_RC_Decode(r));
	r = Esys_Initialize(&t->esys, t->tcti, NULL);
	CL_CHECK(r == TSS2_RC_SUCCESS, CL_ERR_IO, "TPM: %s", Tss2_RC_Decode(r));
	/* Firmware or the simulator's start-up flag normally did this already. */
	r = Esys_Startup(t->esys, TPM2_SU_CLEAR);
	CL_CHECK(r == TSS2_RC_SUCCESS || r == TPM2_RC_INITIALIZE, CL_ERR_IO, "TPM: startup: %s",
		 Tss2_RC_Decode(r));

	tmpl.publicArea.type = TPM2_ALG_ECC;
	tmpl.publicArea.nameAlg = TPM2_ALG_SHA256;
	tmpl.publicArea.objectAttributes =
		TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | TPMA_OBJECT_SENSITIVEDATAORIGIN |
		TPMA_OBJECT_USERWITHAUTH | TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT;
	tmpl.publicArea.parameters.eccDetail.symmetric.algorithm = TPM2_ALG_NULL;
	tmpl.publicArea.parameters.eccDetail.scheme.scheme = TPM2_ALG_ECDSA;
	tmpl.publicArea.parameters.eccDetail.scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	tmpl.publicArea.parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	tmpl.publicArea.parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	r = Esys_CreatePrimary(t->esys, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE,
			       ESYS_TR_NONE, &sens, &tmpl, &outside, &none, &t->ak, &t->ak_pub,
			       &cdata, &chash, &ticket);
	CL_CHECK(r == TSS2_RC_SUCCESS, CL_ERR_IO, "TPM: creating the AK: %s", Tss2_RC_Decode(r));
out:
	Esys_Free(cdata);
	Esys_Free(chash);
	Esys_Free(ticket);
	if (rc != CL_OK)
		tpm_close(t);
	return rc;
}

static int ak_blob(const struct tpm *t, uint8_t *buf, size_t cap, size_t *len)
{
	size_t off = 0;
	TSS2_RC r = Tss2_MU_TPMT_PUBLIC_Marshal(&t->ak_pub->publicArea, buf, cap, &off);

	if (r != TSS2_RC_SUCCESS)
		return tss_fail(r, "marshalling the AK");
	*len = off;
	return CL_OK;
}

/* TPM2_PCR_Read returns at most eight values a call; ask until all came. */
static int read_pcrs(struct tpm *t, const TPML_PCR_SELECTION *sel, struct cl_tpm_pcrs *out)
{
	TPML_PCR_SELECTION want = *sel;
	int rc = CL_OK;

	memset(out, 0, sizeof(*out));
	for (int round = 0; round < 32; round++) {
		TPML_PCR_SELECTION *got = NULL;
		TPML_DIGEST *vals = NULL;
		UINT32 counter = 0;
		unsigned k = 0, any = 0;
		TSS2_RC r = 0;

		for (unsigned b = 0; b < want.count; b++)
			for (unsigned i = 0; i < want.pcrSelections[b].sizeofSelect; i++)
				any |= want.pcrSelections[b].pcrSelect[i];
		if (!any)
			return CL_OK;
		r = Esys_PCR_Read(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &want,
				  &counter, &got, &vals);
		if (r != TSS2_RC_SUCCESS)
			return tss_fail(r, "reading PCRs");
		for (unsigned b = 0; b < got->count && rc == CL_OK; b++) {
			TPMS_PCR_SELECTION *gs = &got->pcrSelections[b];

			for (unsigned i = 0; i < CL_TPM_NUM_PCRS && rc == CL_OK; i++) {
				if (i / 8 >= gs->sizeofSelect ||
				    !(gs->pcrSelect[i / 8] & (1u << (i % 8))))
					continue;
				if (k >= vals->count) {
					rc = cl_fail(CL_ERR_IO,
						     "TPM: PCR read returned too few values");
					break;
				}
				rc = cl_tpm_pcrs_set(out, gs->hash, i, vals->digests[k].buffer,
						     vals->digests[k].size);
				k++;
				for (unsigned w = 0; w < want.count; w++)
					if (want.pcrSelections[w].hash == gs->hash)
						want.pcrSelections[w].pcrSelect[i / 8] &=
							(uint8_t) ~(1u << (i % 8));
			}
		}
		Esys_Free(got);
		Esys_Free(vals);
		CL_GUARD(rc);
		/* A bank the TPM has not allocated comes back empty: no progress. */
		CL_ENSURE_MSG(k > 0, CL_ERR_UNSUPPORTED,
			      "TPM: some selected PCRs cannot be read (bank not allocated?)");
	}
	CL_BAIL(CL_ERR_IO, "TPM: PCR read did not complete");
}

static int quote_once(struct tpm *t, const TPML_PCR_SELECTION *sel, const uint8_t *nonce,
		      size_t nonce_len, struct cl_tpm_evidence *ev, int *consistent)
{
	TPM2B_DATA qd = {0};
	TPMT_SIG_SCHEME scheme = {.scheme = TPM2_ALG_NULL};
	TPM2B_ATTEST *quoted = NULL;
	TPMT_SIGNATURE *sig = NULL;
	TPMS_ATTEST att;
	uint8_t sigbuf[sizeof(TPMT_SIGNATURE)], dg[CL_TPM_MAX_DIGEST];
	size_t off = 0, dl = 0;
	TSS2_RC r = 0;
	int rc = CL_OK;

	*consistent = 0;
	qd.size = (UINT16)nonce_len;
	memcpy(qd.buffer, nonce, nonce_len);
	CL_TRY(read_pcrs(t, sel, &ev->pcrs));
	r = Esys_Quote(t->esys, t->ak, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &qd, &scheme,
		       sel, &quoted, &sig);
	CL_CHECK(r == TSS2_RC_SUCCESS, CL_ERR_IO, "TPM: quote: %s", Tss2_RC_Decode(r));
	r = Tss2_MU_TPMT_SIGNATURE_Marshal(sig, sigbuf, sizeof(sigbuf), &off);
	CL_CHECK(r == TSS2_RC_SUCCESS, CL_ERR_INTERNAL, "TPM: marshalling the signature: %s",
		 Tss2_RC_Decode(r));
	free(ev->quote);
	free(ev->sig);
	ev->quote = malloc(quoted->size);
	ev->sig = malloc(off);
	CL_CHECK(ev->quote && ev->sig, CL_ERR_NOMEM, "out of memory");
	memcpy(ev->quote, quoted->attestationData, quoted->size);
	ev->quote_len = quoted->size;
	memcpy(ev->sig, sigbuf, off);
	ev->sig_len = off;
	CL_TRY(cl_tpm_quote_parse(ev->quote, ev->quote_len, &att));
	/* Every TPMS_SIGNATURE_* starts with its hash; our AK is ECDSA anyway. */
	CL_TRY(cl_tpm_pcr_digest(&att.attested.quote.pcrSelect, &ev->pcrs,
				 sig->signature.ecdsa.hash, dg, &dl));
	*consistent = dl == att.attested.quote.pcrDigest.size &&
		      memcmp(dg, att.attested.quote.pcrDigest.buffer, dl) == 0;
out:
	Esys_Free(quoted);
	Esys_Free(sig);
	return rc;
}

int cl_attest_tpm_quote(const char *tcti, const uint8_t *nonce, size_t nonce_len, const char *pcrs,
			json_t **envelope)
{
	struct tpm t = {0};
	struct cl_tpm_evidence *ev = NULL;
	struct cl_buf log = {0};
	TPML_PCR_SELECTION sel;
	uint8_t akb[sizeof(TPMT_PUBLIC)];
	size_t akl = 0;
	int rc = CL_OK, consistent = 0;

	*envelope = NULL;
	CL_ENSURE_MSG(nonce_len <= CL_TPM_MAX_NONCE && (nonce || !nonce_len), CL_ERR_ARG,
		      "TPM nonce must be at most %d bytes", CL_TPM_MAX_NONCE);
	CL_GUARD(cl_tpm_pcr_selection_parse(pcrs ? pcrs : CL_ATTEST_TPM_DEFAULT_PCRS, &sel));
	ev = calloc(1, sizeof(*ev));
	CL_ENSURE_MSG(ev, CL_ERR_NOMEM, "out of memory");
	CL_TRY(tpm_open(tcti, &t));
	for (int i = 0; i < QUOTE_ATTEMPTS && !consistent; i++)
		CL_TRY(quote_once(&t, &sel, nonce, nonce_len, ev, &consistent));
	CL_CHECK(consistent, CL_ERR_IO, "TPM: PCRs kept changing while being quoted");
	CL_TRY(ak_blob(&t, akb, sizeof(akb), &akl));
	ev->ak = malloc(akl);
	CL_CHECK(ev->ak, CL_ERR_NOMEM, "out of memory");
	memcpy(ev->ak, akb, akl);
	ev->ak_len = akl;
	/* The host's firmware log belongs to the host's TPM, not to a simulator. */
	if (t.local_device &&
	    cl_read_file(CL_ATTEST_TPM_EVENT_LOG, CL_EVLOG_MAX_BYTES, &log) == CL_OK &&
	    log.len > 0) {
		ev->event_log = log.data;
		ev->event_log_len = log.len;
		memset(&log, 0, sizeof(log));
	}
	cl_error_clear();
	CL_TRY(cl_tpm_evidence_to_json(ev, envelope));
out:
	cl_buf_free(&log);
	cl_tpm_evidence_free(ev);
	free(ev);
	tpm_close(&t);
	return rc;
}

int cl_attest_tpm_ak_pem(const char *tcti, char **pem)
{
	struct tpm t = {0};
	uint8_t akb[sizeof(TPMT_PUBLIC)];
	size_t akl = 0;
	EVP_PKEY *k = NULL;
	BIO *bio = NULL;
	char *p = NULL;
	long n = 0;
	int rc = CL_OK;

	*pem = NULL;
	CL_TRY(tpm_open(tcti, &t));
	CL_TRY(ak_blob(&t, akb, sizeof(akb), &akl));
	CL_TRY(cl_tpm_ak_parse(akb, akl, &k, NULL));
	bio = BIO_new(BIO_s_mem());
	CL_CHECK(bio && PEM_write_bio_PUBKEY(bio, k) == 1, CL_ERR_CRYPTO, "cannot encode the AK");
	n = BIO_get_mem_data(bio, &p);
	*pem = strndup(p, (size_t)n);
	CL_CHECK(*pem, CL_ERR_NOMEM, "out of memory");
out:
	BIO_free(bio);
	EVP_PKEY_free(k);
	tpm_close(&t);
	return rc;
}
