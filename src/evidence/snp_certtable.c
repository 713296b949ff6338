/*
 * The certificate table of an SNP extended report (GHCB specification, "SNP
 * Extended Guest Request"), as the agent's envelope carries it in "certs".
 * Its certificates are only candidates: the SNP verifier checks whichever it
 * takes against the pinned AMD roots.
 */
#include <string.h>

#include "envelope.h"

/* GHCB specification, "SNP Extended Guest Request": GUIDs in RFC 4122 byte order. */
const uint8_t cl_snp_guid_vcek[16] = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
				      0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
const uint8_t cl_snp_guid_vlek[16] = {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
				      0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1};

int cl_snp_certtable_find(const uint8_t *p, size_t n, const uint8_t guid[16], const uint8_t **cert,
			  size_t *len)
{
	static const uint8_t zero[16] = {0};
	struct cl_reader r = cl_reader_make(p, n);
	unsigned k = 0;

	*cert = NULL;
	*len = 0;
	for (;;) {
		uint8_t g[16];
		uint32_t off = 0, l = 0;

		CL_GUARD(cl_read_bytes(&r, g, sizeof(g)));
		CL_GUARD(cl_read_u32le(&r, &off));
		CL_GUARD(cl_read_u32le(&r, &l));
		if (memcmp(g, zero, sizeof(g)) == 0) {
			CL_ENSURE_MSG(off == 0 && l == 0, CL_ERR_MALFORMED,
				      "certificate table terminator is not all zero");
			break;
		}
		CL_ENSURE_MSG(++k <= CL_MAX_SNP_CERT_ENTRIES, CL_ERR_MALFORMED,
			      "certificate table has more than %d entries",
			      CL_MAX_SNP_CERT_ENTRIES);
		CL_ENSURE_MSG(l > 0 && off <= n && l <= n - off, CL_ERR_MALFORMED,
			      "certificate table entry %u lies outside the table", k);
		if (memcmp(g, guid, sizeof(g)) == 0) {
			CL_ENSURE_MSG(!*cert, CL_ERR_MALFORMED,
				      "certificate table names a certificate twice");
			*cert = p + off;
			*len = l;
		}
	}
	return CL_OK;
}
