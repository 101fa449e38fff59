#include "test_util.h"

#include "noise.h"

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void test_keypair(struct noise_keypair *kp)
{
	uint8_t priv[KEY_LEN];

	if (!random_bytes(priv, KEY_LEN) || !noise_keypair_init(kp, priv))
		abort();
	wipe(priv, sizeof(priv));
}

uint8_t *hex_decode(const char *hex, size_t *len)
{
	size_t n = strlen(hex) / 2;
	uint8_t *out = malloc(n ? n : 1);

	for (size_t i = 0; i < n; i++) {
		unsigned int b;

		if (sscanf(hex + 2 * i, "%2x", &b) != 1) {
			free(out);
			return NULL;
		}
		out[i] = (uint8_t)b;
	}
	*len = n;
	return out;
}

static char temp_dir[64];

static int remove_entry(const char *path, const struct stat *st, int flag,
			struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void remove_temp_dir(void)
{
	nftw(temp_dir, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

const char *temp_dir_path(void)
{
	if (!temp_dir[0]) {
		snprintf(temp_dir, sizeof(temp_dir), "/tmp/postern-test-XXXXXX");
		if (!mkdtemp(temp_dir))
			abort();
		atexit(remove_temp_dir);
	}
	return temp_dir;
}

const char *write_temp_file(const char *name, const char *text, unsigned int mode)
{
	static char path[256];
	const char *dir = temp_dir_path();
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		abort();
	fchmod(fd, (mode_t)mode);
	close(fd);
	return path;
}
