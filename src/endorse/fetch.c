#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>

#include "cloister/endorse.h"

struct sink {
	struct cl_buf *buf;
	int overflow;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *ud)
{
	struct sink *s = ud;
	size_t n = size * nmemb;

	if (cl_buf_append(s->buf, p, n) < 0) {
		s->overflow = 1;
		return 0;
	}
	return n;
}

int cl_http_get(const char *url, size_t max, struct cl_buf *body, struct cl_buf *headers)
{
	CURL *c = NULL;
	CURLcode cc = CURLE_OK;
	long status = 0;
	struct sink bs = {body, 0}, hs = {headers, 0};
	int rc = CL_OK;

	body->max = max;
	if (headers)
		headers->max = 64 * 1024;
	c = curl_easy_init();
	if (!c)
		return cl_fail(CL_ERR_NOMEM, "cannot initialise HTTP client");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "cloister");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &bs);
	if (headers) {
		curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
		curl_easy_setopt(c, CURLOPT_HEADERDATA, &hs);
	}
	cc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_cleanup(c);
	if (bs.overflow || hs.overflow)
		rc = cl_fail(CL_ERR_MALFORMED, "response from %s larger than %zu bytes", url, max);
	else if (cc != CURLE_OK)
		rc = cl_fail(CL_ERR_NETWORK, "GET %s: %s", url, curl_easy_strerror(cc));
	else if (status == 404)
		rc = cl_fail(CL_ERR_NOT_FOUND, "GET %s: HTTP 404", url);
	else if (status < 200 || status > 299)
		rc = cl_fail(CL_ERR_NETWORK, "GET %s: HTTP %ld", url, status);
	if (rc < 0) {
		cl_buf_free(body);
		if (headers)
			cl_buf_free(headers);
	}
	return rc;
}

int cl_http_header(const struct cl_buf *headers, const char *name, char **value)
{
	size_t nl = strlen(name);
	const char *p = headers && headers->data ? (const char *)headers->data : "";

	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);

		if (len > nl && p[nl] == ':' && strncasecmp(p, name, nl) == 0) {
			const char *v = p + nl + 1;
			size_t vl = len - nl - 1;

			while (vl && (*v == ' ' || *v == '\t')) {
				v++;
				vl--;
			}
			while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' '))
				vl--;
			*value = strndup(v, vl);
			return *value ? CL_OK : cl_fail(CL_ERR_NOMEM, "out of memory");
		}
		p += len + (eol ? 1 : 0);
	}
	return cl_fail(CL_ERR_NOT_FOUND, "response has no %s header", name);
}

static int hexv(int c)
{
	return isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10);
}

int cl_url_decode(const char *in, char **out)
{
	size_t n = strlen(in), j = 0;
	char *s = malloc(n + 1);

	if (!s)
		return cl_fail(CL_ERR_NOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		if (in[i] == '%') {
			if (i + 2 >= n + 0 || !isxdigit((unsigned char)in[i + 1]) ||
			    !isxdigit((unsigned char)in[i + 2])) {
				free(s);
				return cl_fail(CL_ERR_MALFORMED, "bad percent-encoding");
			}
			s[j++] = (char)(hexv((unsigned char)in[i + 1]) << 4 |
					hexv((unsigned char)in[i + 2]));
			i += 2;
		} else {
			s[j++] = in[i];
		}
	}
	s[j] = '\0';
	*out = s;
	return CL_OK;
}
