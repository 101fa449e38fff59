/* Keys as text, and secret key files. */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Base64 without tables or branches on the data, so that converting a
 * private key leaks nothing through the cache or the branch predictor. Each
 * (t − x) >> 8 is all ones exactly when x > t.
 */
static char b64_char(unsigned int v)
{
	int x = (int)v, c = x + 'A';

	c += ((25 - x) >> 8) & 6;	/* 26..51 → 'a'..'z' */
	c -= ((51 - x) >> 8) & 75;	/* 52..61 → '0'..'9' */
	c -= ((61 - x) >> 8) & 15;	/* 62 → '+' */
	c += ((62 - x) >> 8) & 3;	/* 63 → '/' */
	return (char)c;
}

/* The 6-bit value of c, or −1; in range lo..hi ⇔ (lo−1−c) & (c−hi−1) < 0. */
static int b64_value(unsigned char ch)
{
	int c = ch, v = -1;

	v += ((('A' - 1 - c) & (c - 'Z' - 1)) >> 8) & (c - 64);
	v += ((('a' - 1 - c) & (c - 'z' - 1)) >> 8) & (c - 70);
	v += ((('0' - 1 - c) & (c - '9' - 1)) >> 8) & (c + 5);
	v += ((('+' - 1 - c) & (c - '+' - 1)) >> 8) & 63;
	v += ((('/' - 1 - c) & (c - '/' - 1)) >> 8) & 64;
	return v;
}

void key_to_base64(char out[KEY_B64_LEN + 1], const uint8_t key[KEY_LEN])
{
	unsigned int i, o = 0;

	for (i = 0; i + 3 <= KEY_LEN; i += 3) {
		uint32_t w = (uint32_t)key[i] << 16 | key[i + 1] << 8 | key[i + 2];

		out[o++] = b64_char(w >> 18);
		out[o++] = b64_char((w >> 12) & 63);
		out[o++] = b64_char((w >> 6) & 63);
		out[o++] = b64_char(w & 63);
	}
	/* 32 = 10·3 + 2: the last group holds two bytes and one '='. */
	{
		uint32_t w = (uint32_t)key[i] << 16 | key[i + 1] << 8;

		out[o++] = b64_char(w >> 18);
		out[o++] = b64_char((w >> 12) & 63);
		out[o++] = b64_char((w >> 6) & 63);
		out[o++] = '=';
	}
	out[o] = '\0';
}

bool key_from_base64(uint8_t key[KEY_LEN], const char *text)
{
	const unsigned char *t = (const unsigned char *)text;
	int bad = 0;
	unsigned int i, o = 0;

	if (strlen(text) != KEY_B64_LEN || text[KEY_B64_LEN - 1] != '=')
		return false;
	for (i = 0; i < KEY_B64_LEN - 1; i += 4) {
		int a = b64_value(t[i]), b = b64_value(t[i + 1]);
		int c = b64_value(t[i + 2]);
		int d = i + 3 < KEY_B64_LEN - 1 ? b64_value(t[i + 3]) : 0;
		uint32_t w = (uint32_t)(a & 63) << 18 | (uint32_t)(b & 63) << 12 |
			     (uint32_t)(c & 63) << 6 | (uint32_t)(d & 63);

		bad |= a | b | c | d;	/* negative if any was invalid */
		key[o++] = (uint8_t)(w >> 16);
		key[o++] = (uint8_t)(w >> 8);
		if (o < KEY_LEN)
			key[o++] = (uint8_t)w;
		else
			bad |= -(int)(w & 0xff);	/* non-canonical final bits */
	}
	if (bad < 0) {
		wipe(key, KEY_LEN);
		return false;
	}
	return true;
}

bool key_from_text(uint8_t key[KEY_LEN], const char *text, size_t len)
{
	char buf[KEY_B64_LEN + 1];
	bool ok;

	while (len > 0 && strchr(" \t\r\n", text[len - 1]))
		len--;
	if (len != KEY_B64_LEN)
		return false;
	memcpy(buf, text, len);
	buf[len] = '\0';
	ok = key_from_base64(key, buf);
	wipe(buf, sizeof(buf));
	return ok;
}

bool key_load_secret_file(uint8_t key[KEY_LEN], const char *path,
			  char *err, size_t err_len)
{
	char buf[128];
	struct stat st;
	ssize_t n;
	int fd;
	bool ok;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return false;
	}
	if (fstat(fd, &st) < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		close(fd);
		return false;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, err_len, "%s: not a regular file", path);
		close(fd);
		return false;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, err_len,
			 "%s: permissions %04o are too open: group or others may "
			 "access this secret; fix with: chmod 600 %s",
			 path, (unsigned int)(st.st_mode & 07777), path);
		close(fd);
		return false;
	}
	n = read(fd, buf, sizeof(buf));
	close(fd);
	if (n < 0) {
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return false;
	}
	ok = key_from_text(key, buf, (size_t)n);
	wipe(buf, sizeof(buf));
	if (!ok)
		snprintf(err, err_len, "%s: not a key (expected 44 characters "
			 "of base64, as written by postern genkey)", path);
	return ok;
}

bool key_load_credential(uint8_t key[KEY_LEN], const char *name,
			 const char *option, char *err, size_t err_len)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char *path;
	bool ok;

	if (!dir || !*dir) {
		snprintf(err, err_len, "%s: CREDENTIALS_DIRECTORY is not set; run "
			 "under systemd with LoadCredential=%s:PATH", option, name);
		return false;
	}
	if (asprintf(&path, "%s/%s", dir, name) < 0) {
		snprintf(err, err_len, "%s: out of memory", option);
		return false;
	}
	ok = key_load_secret_file(key, path, err, err_len);
	free(path);
	return ok;
}
