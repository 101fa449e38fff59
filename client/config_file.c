/* The CLI's configuration file as text: see config_file.h. */
#include "config_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "keys.h"

#define CONF_MAX (1u << 20)	/* the configuration loader's own limit */

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

bool config_file_exists(const char *path)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return false;
	fprintf(stderr, "%s: %s exists: not overwritten\n", PROG_NAME, path);
	return true;
}

void config_file_host_name(char *buf, size_t len, const char *fallback)
{
	if (gethostname(buf, len) != 0 || !config_file_word_ok(buf))
		snprintf(buf, len, "%s", fallback);
	buf[strcspn(buf, ".")] = '\0';	/* the short name */
}

bool config_file_new_key(const char *path, bool clamp, uint8_t pub[KEY_LEN])
{
	uint8_t key[KEY_LEN];
	char text[KEY_B64_LEN + 2];
	bool ok;

	if (!random_bytes(key, sizeof(key))) {
		perror(PROG_NAME ": getrandom");
		return false;
	}
	if (clamp)
		x25519_clamp(key);
	ok = !clamp || x25519_public(pub, key);
	key_to_base64(text, key);
	wipe(key, sizeof(key));
	strcat(text, "\n");
	ok = ok && config_file_write(path, text, strlen(text), true);
	wipe(text, sizeof(text));
	return ok;
}

bool config_file_write(const char *path, const char *text, size_t len,
		       bool exclusive)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW |
			    (exclusive ? O_EXCL : O_TRUNC), 0600);
	bool ok;

	if (fd < 0) {
		fprintf(stderr, "%s: %s: %s\n", PROG_NAME, path, strerror(errno));
		return false;
	}
	ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
	if (close(fd) != 0 || !ok) {
		fprintf(stderr, "%s: %s: %s\n", PROG_NAME, path, strerror(errno));
		unlink(path);
		return false;
	}
	return true;
}

bool config_file_replace(const char *path, const char *text, size_t len)
{
	char tmp[4096];

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new", path) >= sizeof(tmp)) {
		fprintf(stderr, "%s: %s: path too long\n", PROG_NAME, path);
		return false;
	}
	if (!config_file_write(tmp, text, len, false))
		return false;
	if (rename(tmp, path) == 0)
		return true;
	fprintf(stderr, "%s: %s: %s\n", PROG_NAME, path, strerror(errno));
	unlink(tmp);
	return false;
}

char *config_file_read(const char *path, size_t *len)
{
	FILE *f = fopen(path, "re");
	char *buf;

	if (!f) {
		fprintf(stderr, "%s: %s: %s (run postern init first?)\n", PROG_NAME,
			path, strerror(errno));
		return NULL;
	}
	buf = malloc(CONF_MAX + 1);
	*len = buf ? fread(buf, 1, CONF_MAX + 1, f) : 0;
	fclose(f);
	if (!buf || *len > CONF_MAX) {
		fprintf(stderr, "%s: %s: too large or out of memory\n", PROG_NAME, path);
		free(buf);
		return NULL;
	}
	buf[*len] = '\0';
	return buf;
}

/* Past the block whose "{" is at or after p: the end of its closing line. */
static const char *block_end(const char *p)
{
	int depth = 0;
	bool opened = false;

	for (; *p; p++) {
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			if (!*p)
				return NULL;
		} else if (*p == '#') {
			p += strcspn(p, "\n");
			if (!*p)
				return NULL;
		} else if (*p == '{') {
			depth++;
			opened = true;
		} else if (*p == '}' && --depth == 0 && opened) {
			p += strcspn(p, "\n");
			return *p ? p + 1 : p;
		}
	}
	return NULL;
}

bool config_file_find_server(const char *text, const char *name,
			     size_t *start, size_t *end)
{
	size_t n = strlen(name);

	for (const char *line = text; line && *line; ) {
		const char *p = line + strspn(line, " \t"), *e;

		if (strncmp(p, "server", 6) == 0) {
			p += 6;
			p += strspn(p, " \t");
			if (*p == '"' && strncmp(p + 1, name, n) == 0 && p[1 + n] == '"' &&
			    (e = block_end(p + 2 + n))) {
				*start = (size_t)(line - text);
				*end = (size_t)(e - text);
				return true;
			}
		}
		line = strchr(line, '\n');
		line = line ? line + 1 : NULL;
	}
	return false;
}
