#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "cloister/core.h"

static const char hexdig[] = "0123456789abcdef";

void cl_hex_encode(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdig[in[i] >> 4];
		out[2 * i + 1] = hexdig[in[i] & 15];
	}
	out[2 * n] = '\0';
}

char *cl_hex_strdup(const uint8_t *in, size_t n)
{
	char *s = malloc(2 * n + 1);

	if (s)
		cl_hex_encode(in, n, s);
	return s;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int hex_into(const char *in, size_t inlen, uint8_t *out)
{
	for (size_t i = 0; i < inlen / 2; i++) {
		int hi = hexval(in[2 * i]), lo = hexval(in[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return cl_fail(CL_ERR_MALFORMED, "invalid hex digit at %zu", 2 * i);
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return CL_OK;
}

int cl_hex_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	uint8_t *b = NULL;
	int rc = CL_OK;

	if (inlen % 2)
		return cl_fail(CL_ERR_MALFORMED, "hex string has odd length %zu", inlen);
	b = malloc(inlen / 2 + 1);
	if (!b)
		return cl_fail(CL_ERR_NOMEM, "out of memory");
	rc = hex_into(in, inlen, b);
	if (rc < 0) {
		free(b);
		return rc;
	}
	*out = b;
	*outlen = inlen / 2;
	return CL_OK;
}

int cl_hex_decode_exact(const char *in, uint8_t *out, size_t n)
{
	if (strlen(in) != 2 * n)
		return cl_fail(CL_ERR_MALFORMED, "expected %zu hex digits", 2 * n);
	return hex_into(in, 2 * n, out);
}

char *cl_base64_encode(const uint8_t *in, size_t n)
{
	size_t olen = 4 * ((n + 2) / 3) + 1;
	char *s = NULL;

	if (n > INT32_MAX)
		return NULL;
	s = malloc(olen);
	if (!s)
		return NULL;
	EVP_EncodeBlock((unsigned char *)s, in, (int)n);
	return s;
}

char *cl_base64url_encode(const void *in, size_t n)
{
	char *s = cl_base64_encode(in, n);
	size_t len = 0;

	if (!s)
		return NULL;
	for (; s[len]; len++) {
		if (s[len] == '+')
			s[len] = '-';
		else if (s[len] == '/')
			s[len] = '_';
	}
	while (len && s[len - 1] == '=')
		s[--len] = '\0';
	return s;
}

int cl_is_base64url(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return 0;
	}
	return n > 0;
}

int cl_base64_decode(const char *in, size_t inlen, uint8_t **out, size_t *outlen)
{
	char *norm = NULL;
	size_t n = 0, pad = 0;
	uint8_t *b = NULL;
	int dl = 0;

	if (inlen > INT32_MAX / 2)
		return cl_fail(CL_ERR_ARG, "base64 input too large");
	norm = malloc(inlen + 4);
	if (!norm)
		return cl_fail(CL_ERR_NOMEM, "out of memory");
	/* Normalise: drop whitespace, map the URL-safe alphabet, strip padding. */
	for (size_t i = 0; i < inlen; i++) {
		char c = in[i];

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		if (pad) {
			free(norm);
			return cl_fail(CL_ERR_MALFORMED, "base64 data after padding");
		}
		if (c == '-')
			c = '+';
		else if (c == '_')
			c = '/';
		norm[n++] = c;
	}
	if (n % 4 == 1 || pad > 2) {
		free(norm);
		return cl_fail(CL_ERR_MALFORMED, "invalid base64 length");
	}
	pad = (4 - n % 4) % 4;
	for (size_t i = 0; i < pad; i++)
		norm[n++] = '=';
	b = malloc(n / 4 * 3 + 1);
	if (!b) {
		free(norm);
		return cl_fail(CL_ERR_NOMEM, "out of memory");
	}
	dl = n ? EVP_DecodeBlock(b, (unsigned char *)norm, (int)n) : 0;
	free(norm);
	if (dl < 0) {
		free(b);
		return cl_fail(CL_ERR_MALFORMED, "invalid base64");
	}
	*out = b;
	*outlen = (size_t)dl - pad;
	return CL_OK;
}
