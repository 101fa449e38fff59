/* A daemon's status file: see status_file.h. */
#include "status_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void status_add(struct status_text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!t->buf) {
		t->cap = 4096;
		t->len = 0;
		t->ok = (t->buf = malloc(t->cap)) != NULL;
		if (!t->ok)
			return;
	}
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->ok = false;
			return;
		}
		if ((size_t)n < t->cap - t->len)
			break;
		char *b = realloc(t->buf, 2 * t->cap + (size_t)n);

		if (!b) {
			t->buf[t->len] = '\0';
			t->ok = false;
			return;
		}
		t->buf = b;
		t->cap = 2 * t->cap + (size_t)n;
	}
	t->len += (size_t)n;
}

void status_text_free(struct status_text *t)
{
	free(t->buf);
	memset(t, 0, sizeof(*t));
}

bool status_file_write(const char *path, const struct status_text *t,
		       char *err, size_t err_len)
{
	char tmp[4096];
	bool ok;
	int fd;

	if (!t->ok) {
		snprintf(err, err_len, "%s: out of memory", path);
		return false;
	}
	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
		snprintf(err, err_len, "%s: path too long", path);
		return false;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
		  0640);
	if (fd < 0) {
		snprintf(err, err_len, "%s: %s", tmp, strerror(errno));
		return false;
	}
	ok = write(fd, t->buf, t->len) == (ssize_t)t->len;
	if (close(fd) != 0)
		ok = false;
	if (!ok || rename(tmp, path) != 0) {
		int e = errno;

		snprintf(err, err_len, "%s: %s", path, strerror(e));
		unlink(tmp);
		errno = e;	/* the caller tells a missing directory */
		return false;
	}
	return true;
}
