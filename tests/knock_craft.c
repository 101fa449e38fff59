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
 *     -j COUNT     send COUNT junk knocks with a valid mac1 instead (what
 *                  someone holding the server key and the PSK can make)
 *     -b ADDR      send from this source address
 *     -x LEN       IPv6: put LEN bytes of destination options (a multiple
 *                  of 8, up to 2048) in front of the UDP header
 *     -S ADDR      IPv6: send from ADDR through a raw socket, any address
 *                  at all (spoofed, IPv4-mapped, ...)
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/ip6.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "ip_udp.h"
#include "keys.h"
#include "knock.h"

static int die(const char *what)
{
	fprintf(stderr, "knock_craft: %s\n", what);
	return 1;
}

/* Destination options of len bytes: one PadN option fills them. */
static int set_dstopts(int fd, size_t len)
{
	uint8_t opts[2048] = { 0 };

	if (len < 8 || len > sizeof(opts) || len % 8)
		return -1;
	opts[1] = (uint8_t)(len / 8 - 1);
	for (size_t off = 2; off < len;) {
		size_t pad = len - off - 2 > 255 ? 255 : len - off - 2;

		if (len - off == 1) {	/* Pad1 */
			opts[off++] = 0;
			continue;
		}
		opts[off] = 1;		/* PadN */
		opts[off + 1] = (uint8_t)pad;
		off += 2 + pad;
	}
	return setsockopt(fd, IPPROTO_IPV6, IPV6_DSTOPTS, opts, (socklen_t)len);
}

static uint16_t checksum(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += get_be16(p + i);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* One IPv6 UDP datagram from any source, header and all, through a raw
 * socket: the kernel routes it by its destination and sends it as is. */
static int send_spoofed6(const char *from, const struct sockaddr_in6 *to,
			 const uint8_t *payload, size_t len)
{
	uint8_t pkt[40 + 8 + KNOCK_LEN + 64] = { 0 }, pseudo[40] = { 0 };
	struct sockaddr_in6 dst = *to;
	size_t udp_len = 8 + len;
	uint32_t sum = 0;
	uint16_t ck;
	int fd = socket(AF_INET6, SOCK_RAW, IPPROTO_RAW);

	if (fd < 0 || len > KNOCK_LEN + 64)
		return -1;
	pkt[0] = 0x60;
	put_be16(pkt + 4, (uint16_t)udp_len);
	pkt[6] = IPPROTO_UDP;
	pkt[7] = 64;
	if (inet_pton(AF_INET6, from, pkt + 8) != 1)
		return -1;
	memcpy(pkt + 24, &to->sin6_addr, 16);
	pkt[40] = 0x9c;		/* source port 40000 */
	pkt[41] = 0x40;
	memcpy(pkt + 42, &to->sin6_port, 2);
	put_be16(pkt + 44, (uint16_t)udp_len);
	memcpy(pkt + 48, payload, len);
	memcpy(pseudo, pkt + 8, 32);
	put_be16(pseudo + 34, (uint16_t)udp_len);
	pseudo[39] = IPPROTO_UDP;
	for (size_t i = 0; i < sizeof(pseudo); i += 2)
		sum += get_be16(pseudo + i);
	ck = checksum(sum, pkt + 40, udp_len);
	put_be16(pkt + 46, ck);
	dst.sin6_port = 0;	/* a raw socket's "port" is its protocol */
	if (sendto(fd, pkt, 40 + udp_len, 0, (const struct sockaddr *)&dst,
		   sizeof(dst)) != (ssize_t)(40 + udp_len))
		return -1;
	close(fd);
	return 0;
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
	const char *spoof = NULL;
	long long junk = 0, dstopts = 0;
	uint8_t pkt[KNOCK_LEN + 64] = { 0 }, priv[KEY_LEN], pub[KEY_LEN], psk[KEY_LEN];
	struct knock_payload p = { 0 };
	struct noise_keypair kp;
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res;
	long long offset = 0, flip = -1, count = 0;
	size_t len = KNOCK_LEN;
	char err[512];
	int c, fd;

	while ((c = getopt(argc, argv, "k:s:p:o:t:f:l:w:r:g:j:b:x:S:")) != -1) {
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
		case 'j': junk = atoll(optarg); break;
		case 'b': bind_addr = optarg; break;
		case 'x': dstopts = atoll(optarg); break;
		case 'S': spoof = optarg; break;
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
	} else if (junk) {
		if (!server_pub || !psk_file ||
		    !key_load_secret_file(psk, psk_file, err, sizeof(err)) ||
		    !key_from_base64(pub, server_pub))
			return die("-j needs -s and -p");
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
	if (spoof) {
		if (res->ai_family != AF_INET6 ||
		    send_spoofed6(spoof, (struct sockaddr_in6 *)res->ai_addr, pkt, len) < 0)
			return die("cannot send from -S address (IPv6 only)");
		freeaddrinfo(res);
		return 0;
	}
	fd = socket(res->ai_family, SOCK_DGRAM, 0);
	if (fd < 0)
		return die("socket");
	if (dstopts && (res->ai_family != AF_INET6 || set_dstopts(fd, (size_t)dstopts) < 0))
		return die("cannot set -x destination options (IPv6 only)");
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
	if (junk) {
		uint8_t mac1_key[HASH_LEN];

		knock_mac1_key(mac1_key, pub, psk);
		for (long long i = 0; i < junk; i++) {
			random_bytes(pkt, KNOCK_LEN);
			pkt[0] = KNOCK_VERSION;
			blake2s_128_keyed(pkt + KNOCK_MAC_OFFSET, mac1_key, pkt,
					  KNOCK_MAC_OFFSET);
			if (send(fd, pkt, KNOCK_LEN, 0) < 0)
				usleep(100);
		}
	} else if (count) {
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
