/*
 * What a local SOCKS client sends postern socks before its reply: the
 * greeting and the request (client/socks_proto.c). Byte 0 picks the size
 * of the pieces (1 to 16, or 0: all at once); the rest is the client's
 * stream, fed as postern socks feeds it, a piece at a time and never more
 * than socks_want() asks for.
 *
 * Invariants: the parser takes no byte it was not given, never asks for
 * more than the two messages can hold, and takes nothing after a final
 * result; fed all at once it ends the same way, with the same bytes taken
 * and the same request or reply; its verdict equals a reading of the
 * bytes by RFC 1928 here (the method offered, version, command, address
 * type, domain name, port), with the reply the header promises.
 */
#include <arpa/inet.h>
#include <string.h>

#include "fuzz_util.h"
#include "socks_proto.h"

struct outcome {
	enum socks_result r;
	size_t used;
	struct socks_parser p;
};

/* Feed data in pieces of at most piece bytes (0: all), each no longer
 * than socks_want() when piece is not 0, until a final result or the end. */
static void run(const uint8_t *data, size_t size, size_t piece, struct outcome *o)
{
	size_t used;

	socks_parser_init(&o->p);
	o->r = SOCKS_MORE;
	o->used = 0;
	while (o->used < size) {
		size_t n = size - o->used, want = socks_want(&o->p);

		check(want >= 1 && want <= SOCKS_REQUEST_MAX);
		if (piece) {
			n = n < piece ? n : piece;
			n = n < want ? n : want;
		}
		o->r = socks_input(&o->p, data + o->used, n, &used);
		check(used <= n);
		check(o->r != SOCKS_MORE || used == n);
		if (o->r == SOCKS_SEND)
			check(o->p.out_len == 2 && o->p.out[0] == 5 && o->p.out[1] == 0);
		o->used += used;
		if (o->r == SOCKS_REQUEST || o->r == SOCKS_REFUSE) {
			check(socks_want(&o->p) == 0);
			check(socks_input(&o->p, data, size, &used) == SOCKS_REFUSE &&
			      used == 0);
			break;
		}
	}
	check(o->used <= SOCKS_GREETING_MAX + SOCKS_REQUEST_MAX);
}

/* A reply of the parser's own: version 5, rep, then 0.0.0.0:0. */
static bool is_reply(const struct socks_parser *p, uint8_t rep)
{
	uint8_t want[SOCKS_REPLY_LEN];

	socks_reply_encode(want, rep);
	return p->out_len == SOCKS_REPLY_LEN && !memcmp(p->out, want, sizeof(want));
}

/* The model: RFC 1928 read straight off the bytes. */
static void model(const uint8_t *d, size_t n, const struct outcome *o)
{
	size_t g, a, alen, total;
	const struct socks_request *r = &o->p.req;

	if (o->r == SOCKS_MORE || o->r == SOCKS_SEND)
		check(o->used == n);
	if (n < 1)
		return;
	if (d[0] != 5) {
		check(o->r == SOCKS_REFUSE && o->p.out_len == 0);
		return;
	}
	if (n < 2) {
		check(o->r == SOCKS_MORE);
		return;
	}
	g = 2 + (size_t)d[1];
	if (n < g) {
		check(o->r == SOCKS_MORE);
		return;
	}
	if (!memchr(d + 2, 0, d[1])) {
		check(o->r == SOCKS_REFUSE && o->used == g && o->p.out_len == 2 &&
		      o->p.out[0] == 5 && o->p.out[1] == 0xff);
		return;
	}
	if (n == g) {
		check(o->r == SOCKS_SEND);
		return;
	}
	if (d[g] != 5) {
		check(o->r == SOCKS_REFUSE && o->p.out_len == 0);
		return;
	}
	if (n < g + 4) {
		check(o->r == SOCKS_MORE);
		return;
	}
	a = g + 4;
	switch (d[g + 3]) {
	case SOCKS_ATYP_IPV4: alen = 4; break;
	case SOCKS_ATYP_IPV6: alen = 16; break;
	case SOCKS_ATYP_DOMAIN:
		if (n < a + 1) {
			check(o->r == SOCKS_MORE);
			return;
		}
		alen = 1 + (size_t)d[a];
		break;
	default:
		check(o->r == SOCKS_REFUSE && o->used == g + 4 &&
		      is_reply(&o->p, SOCKS_REP_ATYP_UNSUPPORTED));
		return;
	}
	total = a + alen + 2;
	if (n < total) {
		check(o->r == SOCKS_MORE);
		return;
	}
	check(o->r == SOCKS_REQUEST || o->r == SOCKS_REFUSE);
	check(o->used == total);
	if (d[g + 3] == SOCKS_ATYP_DOMAIN && (d[a] == 0 || memchr(d + a + 1, 0, d[a]))) {
		check(o->r == SOCKS_REFUSE && is_reply(&o->p, SOCKS_REP_FAILURE));
		return;
	}
	if (d[g + 1] != SOCKS_CMD_CONNECT) {
		check(o->r == SOCKS_REFUSE && is_reply(&o->p, SOCKS_REP_CMD_UNSUPPORTED));
		return;
	}
	if (d[total - 2] == 0 && d[total - 1] == 0) {
		check(o->r == SOCKS_REFUSE && is_reply(&o->p, SOCKS_REP_FAILURE));
		return;
	}
	check(o->r == SOCKS_REQUEST);
	check(r->atyp == d[g + 3]);
	check(r->port == (d[total - 2] << 8 | d[total - 1]));
	if (r->atyp == SOCKS_ATYP_DOMAIN) {
		check(strlen(r->host) == d[a] && !memcmp(r->host, d + a + 1, d[a]));
	} else {
		uint8_t back[16];

		check(!memcmp(r->addr, d + a, alen));
		check(inet_pton(alen == 4 ? AF_INET : AF_INET6, r->host, back) == 1 &&
		      !memcmp(back, d + a, alen));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct outcome pieces, whole;
	size_t piece;

	if (size < 1)
		return 0;
	piece = data[0] % 17;
	data++, size--;
	run(data, size, piece ? piece : 1, &pieces);
	run(data, size, 0, &whole);
	check(pieces.r == whole.r && pieces.used == whole.used);
	check(pieces.p.out_len == whole.p.out_len &&
	      !memcmp(pieces.p.out, whole.p.out, whole.p.out_len));
	if (whole.r == SOCKS_REQUEST)
		check(!memcmp(&pieces.p.req, &whole.p.req, sizeof(whole.p.req)));
	model(data, size, &whole);
	model(data, size, &pieces);
	return 0;
}
