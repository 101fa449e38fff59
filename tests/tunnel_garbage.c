/*
 * Test tool: a client that completes a real tunnel handshake, then breaks
 * the protocol: MODE "noise" sends bytes that are not a Noise message;
 * "yamux" sends a valid Noise message holding a malformed yamux frame.
 * Prints what the server did: "closed" when it dropped the connection.
 *
 *   tunnel_garbage -k CLIENT.key -s SERVER_PUB -p PSK HOST PORT MODE
 */
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "keys.h"
#include "tunnel.h"

static int die(const char *what)
{
	fprintf(stderr, "tunnel_garbage: %s\n", what);
	return 1;
}

static bool read_full(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);

		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

int main(int argc, char *argv[])
{
	const char *key_file = NULL, *server_pub = NULL, *psk_file = NULL;
	uint8_t priv[KEY_LEN], pub[KEY_LEN], psk[KEY_LEN], buf[4096];
	struct noise_keypair kp;
	struct tunnel_handshake hs;
	struct tunnel_transport t;
	struct tunnel_server_hello hello;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	char err[512];
	size_t n = sizeof(buf), len;
	int c, fd;

	while ((c = getopt(argc, argv, "k:s:p:")) != -1) {
		switch (c) {
		case 'k': key_file = optarg; break;
		case 's': server_pub = optarg; break;
		case 'p': psk_file = optarg; break;
		default: return die("bad usage");
		}
	}
	if (optind + 3 != argc || !key_file || !server_pub || !psk_file)
		return die("usage: tunnel_garbage -k KEY -s PUB -p PSK HOST PORT noise|yamux");
	crypto_init();
	if (!key_load_secret_file(priv, key_file, err, sizeof(err)) ||
	    !key_load_secret_file(psk, psk_file, err, sizeof(err)))
		return die(err);
	if (!key_from_base64(pub, server_pub) || !noise_keypair_init(&kp, priv))
		return die("bad key");
	if (getaddrinfo(argv[optind], argv[optind + 1], &hints, &res) != 0)
		return die("cannot resolve");
	fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) < 0)
		return die("connect");
	freeaddrinfo(res);
	if (tunnel_client_init(&hs, &kp, pub, psk) != TUNNEL_OK ||
	    tunnel_client_start(&hs, buf, &n) != TUNNEL_OK ||
	    write(fd, buf, n) != (ssize_t)n || !read_full(fd, buf, 2))
		return die("handshake: no answer");
	len = (size_t)(buf[0] << 8 | buf[1]);
	if (len > sizeof(buf) || !read_full(fd, buf, len) ||
	    tunnel_client_finish(&hs, buf, len, &hello, &t) != TUNNEL_OK)
		return die("handshake failed");
	if (!strcmp(argv[optind + 2], "noise")) {
		random_bytes(buf, 1000);
		buf[0] = 0x03;	/* a plausible length */
		buf[1] = 0xe6;
		n = 1000;
	} else {
		uint8_t frame[12] = { 0x07, 0x00 };	/* yamux version 7 */

		tunnel_seal(&t, frame, sizeof(frame), buf);
		n = sizeof(frame) + TUNNEL_OVERHEAD;
	}
	if (write(fd, buf, n) != (ssize_t)n)
		return die("write");
	/* The server must drop us: EOF (a go-away may come first) within 5 s. */
	for (int i = 0; i < 50; i++) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t r;

		if (poll(&p, 1, 100) <= 0)
			continue;
		r = read(fd, buf, sizeof(buf));
		if (r <= 0) {
			printf("closed\n");
			return 0;
		}
	}
	printf("still open\n");
	return 1;
}
