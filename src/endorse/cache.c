#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloister/endorse.h"

static int safe_component(const char *s)
{
	if (!*s || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return 0;
	for (; *s; s++)
		if (*s == '/' || *s == '\\')
			return 0;
	return 1;
}

static int base_dir(const char *dir, char *out, size_t outlen)
{
	const char *x = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	int n = 0;

	if (dir)
		n = snprintf(out, outlen, "%s", dir);
	else if (x && *x)
		n = snprintf(out, outlen, "%s/cloister", x);
	else if (home && *home)
		n = snprintf(out, outlen, "%s/.cache/cloister", home);
	else
		return cl_fail(CL_ERR_NOT_FOUND, "no cache directory: set XDG_CACHE_HOME or HOME");
	if (n < 0 || (size_t)n >= outlen)
		return cl_fail(CL_ERR_ARG, "cache path too long");
	return CL_OK;
}

int cl_cache_path(const char *dir, const char *sub, const char *name, char *out, size_t outlen)
{
	char base[4096];
	int n = 0;

	if (!safe_component(sub) || !safe_component(name))
		return cl_fail(CL_ERR_ARG, "invalid cache key");
	CL_GUARD(base_dir(dir, base, sizeof(base)));
	n = snprintf(out, outlen, "%s/%s/%s", base, sub, name);
	if (n < 0 || (size_t)n >= outlen)
		return cl_fail(CL_ERR_ARG, "cache path too long");
	return CL_OK;
}

int cl_cache_get(const char *dir, const char *sub, const char *name, size_t max, struct cl_buf *out)
{
	char path[4096];

	CL_GUARD(cl_cache_path(dir, sub, name, path, sizeof(path)));
	if (access(path, R_OK) != 0)
		return cl_fail(CL_ERR_NOT_FOUND, "%s not cached", name);
	return cl_read_file(path, max, out);
}

static int mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	return 0;
}

int cl_cache_put(const char *dir, const char *sub, const char *name, const void *p, size_t n)
{
	char path[4096], tmp[4200];
	int fd = -1, rc = CL_OK;
	const uint8_t *q = p;

	CL_GUARD(cl_cache_path(dir, sub, name, path, sizeof(path)));
	if (mkdirs(path) != 0)
		return cl_fail(CL_ERR_IO, "cannot create cache directory for %s: %s", path,
			       strerror(errno));
	snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return cl_fail(CL_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
	while (n > 0) {
		ssize_t w = write(fd, q, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			rc = cl_fail(CL_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
			break;
		}
		q += w;
		n -= (size_t)w;
	}
	if (rc == CL_OK && fsync(fd) != 0)
		rc = cl_fail(CL_ERR_IO, "cannot sync %s: %s", tmp, strerror(errno));
	close(fd);
	if (rc == CL_OK && rename(tmp, path) != 0)
		rc = cl_fail(CL_ERR_IO, "cannot rename into %s: %s", path, strerror(errno));
	if (rc < 0)
		unlink(tmp);
	return rc;
}
