/*
 * Test tool: craft knocks, good and bad, and send them. Used by the netns
 * tests to replay, corrupt, truncate, flood.
 *
 *   knock_craft -k CLIENT.key -s SERVER_PUB -p PSKFILE [options] HOST PORT
 *     -o MS        timestamp offset from now, in ms (may be negative)
 *     -t ADDR      target field
 *     -f BYTE      flip the low bit of this byte
 *     -l LEN       send LEN bytes (truncate, or pad with zeros)
 *     -w FILE      also write the packet to FILE
 *     -r FILE      send the packet in FILE instead of making one
 *     -g COUNT     send COUNT random 145-byte packets instead (a flood)
 *     -b ADDR      send from this source address
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ip_udp.h"
#include "keys.h"
#include "knock.h"

static int die(const char *what)
{
	fprintf(stderr, "knock_craft: %s\n", what);
	return 1;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int main(int argc, char *argv[])
{
	const char *key_file = NULL, *server_pub = NULL, *psk_file = NULL;
	const char *write_file = NULL, *read_file = NULL, *bind_addr = NULL;
	uint8_t pkt[KNOCK_LEN + 64] = { 0 }, priv[KEY_LEN], pub[KEY_LEN], psk[KEY_LEN];
	struct knock_payload p = { 0 };
	struct noise_keypair kp;
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res;
	long long offset = 0, flip = -1, count = 0;
	size_t len = KNOCK_LEN;
	char err[512];
	int c, fd;

	while ((c = getopt(argc, argv, "k:s:p:o:t:f:l:w:r:g:b:")) != -1) {
		switch (c) {
		case 'k': key_file = optarg; break;
		case 's': server_pub = optarg; break;
		case 'p': psk_file = optarg; break;
		case 'o': offset = atoll(optarg); break;
		case 't': if (!addr_from_text(p.target, optarg)) return die("bad -t"); break;
		case 'f': flip = atoll(optarg); break;
		case 'l': len = (size_t)atoll(optarg); break;
		case 'w': write_file = optarg; break;
		case 'r': read_file = optarg; break;
		case 'g': count = atoll(optarg); break;
		case 'b': bind_addr = optarg; break;
		default: return die("bad usage");
		}
	}
	if (optind + 2 != argc || len > sizeof(pkt))
		return die("usage: knock_craft [options] HOST PORT");
	crypto_init();
	if (read_file) {
		FILE *f = fopen(read_file, "rb");

		if (!f || fread(pkt, 1, KNOCK_LEN, f) != KNOCK_LEN)
			return die("cannot read -r file");
		fclose(f);
	} else if (!count) {
		if (!key_file || !server_pub || !psk_file)
			return die("-k, -s and -p are needed");
		if (!key_load_secret_file(priv, key_file, err, sizeof(err)) ||
		    !key_load_secret_file(psk, psk_file, err, sizeof(err)))
			return die(err);
		if (!key_from_base64(pub, server_pub) || !noise_keypair_init(&kp, priv))
			return die("bad key");
		p.timestamp_ms = now_ms() + (uint64_t)offset;
		if (!knock_build(pkt, &kp, pub, psk, &p))
			return die("knock_build failed");
	}
	if (flip >= 0 && (size_t)flip < sizeof(pkt))
		pkt[flip] ^= 1;
	if (write_file) {
		FILE *f = fopen(write_file, "wb");

		if (!f || fwrite(pkt, 1, KNOCK_LEN, f) != KNOCK_LEN)
			return die("cannot write -w file");
		fclose(f);
	}
	if (getaddrinfo(argv[optind], argv[optind + 1], &hints, &res) != 0)
		return die("cannot resolve host");
	fd = socket(res->ai_family, SOCK_DGRAM, 0);
	if (fd < 0)
		return die("socket");
	if (bind_addr) {
		struct addrinfo *src;

		if (getaddrinfo(bind_addr, NULL, &hints, &src) != 0 ||
		    bind(fd, src->ai_addr, src->ai_addrlen) < 0)
			return die("cannot bind -b address");
		freeaddrinfo(src);
	}
	if (connect(fd, res->ai_addr, res->ai_addrlen) < 0)
		return die("connect");
	freeaddrinfo(res);
	if (count) {
		for (long long i = 0; i < count; i++) {
			random_bytes(pkt, KNOCK_LEN);
			pkt[0] = KNOCK_VERSION;
			if (send(fd, pkt, KNOCK_LEN, 0) < 0)
				usleep(100);	/* buffer full: let it drain */
		}
	} else if (send(fd, pkt, len, 0) != (ssize_t)len) {
		return die("send");
	}
	close(fd);
	return 0;
}
