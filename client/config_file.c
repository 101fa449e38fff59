/* The CLI's configuration file as text: see config_file.h. */
#include "config_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

bool config_file_path(const struct cli_options *opt, char *buf, size_t len)
{
	if (opt->config_path) {
		if ((size_t)snprintf(buf, len, "%s", opt->config_path) < len)
			return true;
	} else if (cli_config_default_path(buf, len)) {
		return true;
	}
	fprintf(stderr, "%s: no configuration path: set POSTERN_HOME or HOME, "
		"or give -c FILE\n", PROG_NAME);
	return false;
}

void config_file_dir(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');

	if (!slash)
		snprintf(buf, len, ".");
	else if (slash == path)
		snprintf(buf, len, "/");
	else
		snprintf(buf, len, "%.*s", (int)(slash - path), path);
}

bool config_file_word_ok(const char *s)
{
	if (!*s || strlen(s) > 253)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '_' ||
		      *s == '-' || *s == ':'))
			return false;
	return true;
}

bool config_file_replace(const char *path, const char *text, size_t len)
{
	char tmp[4096];
	int fd;
	bool ok;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new", path) >= sizeof(tmp)) {
		fprintf(stderr, "%s: %s: path too long\n", PROG_NAME, path);
		return false;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0) {
		fprintf(stderr, "%s: %s: %s\n", PROG_NAME, tmp, strerror(errno));
		return false;
	}
	ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (ok && rename(tmp, path) == 0)
		return true;
	fprintf(stderr, "%s: %s: %s\n", PROG_NAME, path, strerror(errno));
	unlink(tmp);
	return false;
}
