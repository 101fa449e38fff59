#include "test_util.h"

#include "noise.h"
#include "tunnel.h"

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

void test_transport_pair(struct tunnel_transport *client,
			 struct tunnel_transport *server)
{
	struct noise_keypair alice, srv;
	struct tunnel_handshake c, s;
	struct tunnel_server_hello hello;
	uint8_t psk[KEY_LEN], m1[2048], m2[2048], pub[KEY_LEN];
	size_t n1 = sizeof(m1), n2 = sizeof(m2);
	uint16_t port = 22;

	test_keypair(&alice);
	test_keypair(&srv);
	if (!random_bytes(psk, KEY_LEN) ||
	    tunnel_client_init(&c, &alice, srv.pub, psk) != TUNNEL_OK ||
	    tunnel_client_start(&c, m1, &n1) != TUNNEL_OK ||
	    tunnel_server_read_hello(&s, &srv, psk, NULL, m1 + 2, n1 - 2, pub) != TUNNEL_OK ||
	    tunnel_server_accept(&s, &port, 1, 1, m2, &n2, server) != TUNNEL_OK ||
	    tunnel_client_finish(&c, m2 + 2, n2 - 2, &hello, client) != TUNNEL_OK)
		abort();
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
