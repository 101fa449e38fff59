/*
 * client/socks_proto.c: the SOCKS5 greeting and request, fed whole, byte
 * by byte and with bytes after them; every refusal with the reply it
 * sends (or none), and never a byte taken past the request.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "socks_proto.h"

static const uint8_t hello[] = { 5, 1, 0 };
static const uint8_t method_ok[] = { 5, 0 };

/* Feed all of in at once; *used gets what the parser took in all. */
static enum socks_result feed(struct socks_parser *p, const uint8_t *in,
			      size_t n, size_t *used)
{
	enum socks_result r;
	size_t u, total = 0;

	do {
		r = socks_input(p, in + total, n - total, &u);
		total += u;
	} while (r == SOCKS_SEND && total < n);
	*used = total;
	return r;
}

/* Greeting, then request, one byte at a time: each call takes one byte,
 * and socks_want never asks for more than the message still holds. */
static enum socks_result feed_bytes(struct socks_parser *p, const uint8_t *in,
				    size_t n)
{
	enum socks_result r = SOCKS_MORE;
	size_t used;

	for (size_t i = 0; i < n; i++) {
		assert_true(socks_want(p) >= 1);
		r = socks_input(p, in + i, 1, &used);
		assert_int_equal(used, 1);
		if (r == SOCKS_REQUEST || r == SOCKS_REFUSE) {
			assert_int_equal(i, n - 1);
			break;
		}
	}
	return r;
}

static size_t build(uint8_t *out, uint8_t cmd, uint8_t atyp,
		    const void *addr, size_t alen, uint16_t port)
{
	size_t n = 0;

	memcpy(out, hello, sizeof(hello));
	n += sizeof(hello);
	out[n++] = 5;
	out[n++] = cmd;
	out[n++] = 0;
	out[n++] = atyp;
	if (atyp == SOCKS_ATYP_DOMAIN)
		out[n++] = (uint8_t)alen;
	memcpy(out + n, addr, alen);
	n += alen;
	out[n++] = (uint8_t)(port >> 8);
	out[n++] = (uint8_t)port;
	return n;
}

static void domain_request(void **state)
{
	struct socks_parser p;
	uint8_t b[600];
	size_t n = build(b, SOCKS_CMD_CONNECT, SOCKS_ATYP_DOMAIN, "web1", 4, 8080);
	size_t used;

	(void)state;
	socks_parser_init(&p);
	assert_int_equal(socks_input(&p, b, n, &used), SOCKS_SEND);
	assert_int_equal(used, sizeof(hello));
	assert_int_equal(p.out_len, 2);
	assert_memory_equal(p.out, method_ok, 2);
	assert_int_equal(socks_input(&p, b + used, n - used, &used), SOCKS_REQUEST);
	assert_int_equal(used, n - sizeof(hello));
	assert_int_equal(p.req.atyp, SOCKS_ATYP_DOMAIN);
	assert_string_equal(p.req.host, "web1");
	assert_int_equal(p.req.port, 8080);
	assert_int_equal(socks_want(&p), 0);
}

static void ipv4_and_ipv6_requests(void **state)
{
	static const uint8_t v4[] = { 198, 51, 100, 1 };
	static const uint8_t v6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x51, [15] = 1 };
	struct socks_parser p;
	uint8_t b[600];
	size_t n, used;

	(void)state;
	n = build(b, SOCKS_CMD_CONNECT, SOCKS_ATYP_IPV4, v4, 4, 22);
	socks_parser_init(&p);
	assert_int_equal(feed(&p, b, n, &used), SOCKS_REQUEST);
	assert_int_equal(used, n);
	assert_string_equal(p.req.host, "198.51.100.1");
	assert_memory_equal(p.req.addr, v4, 4);
	assert_int_equal(p.req.port, 22);

	n = build(b, SOCKS_CMD_CONNECT, SOCKS_ATYP_IPV6, v6, 16, 443);
	socks_parser_init(&p);
	assert_int_equal(feed(&p, b, n, &used), SOCKS_REQUEST);
	assert_string_equal(p.req.host, "2001:db8:51::1");
	assert_memory_equal(p.req.addr, v6, 16);
	assert_int_equal(p.req.port, 443);
}

/* Every prefix asks for more, never for a byte beyond the message. */
static void truncated(void **state)
{
	static const uint8_t v6[16] = { 0xfe, 0x80 };
	uint8_t b[600];
	size_t lens[3];
	char name[255];

	(void)state;
	memset(name, 'a', sizeof(name));
	lens[0] = build(b, SOCKS_CMD_CONNECT, SOCKS_ATYP_DOMAIN, name, 255, 80);
	assert_int_equal(lens[0], sizeof(hello) + SOCKS_REQUEST_MAX);
	for (size_t cut = 0; cut < lens[0]; cut++) {
		struct socks_parser p;
		size_t used;

		socks_parser_init(&p);
		assert_int_equal(feed(&p, b, cut, &used),
				 cut < sizeof(hello) ? SOCKS_MORE :
				 cut == sizeof(hello) ? SOCKS_SEND : SOCKS_MORE);
		assert_int_equal(used, cut);
		assert_true(socks_want(&p) >= 1);
		assert_true(socks_want(&p) <= lens[0] - cut);
	}
	lens[1] = build(b, SOCKS_CMD_CONNECT, SOCKS_ATYP_IPV6, v6, 16, 80);
	for (size_t cut = sizeof(hello) + 1; cut < lens[1]; cut++) {
		struct socks_parser p;
		size_t used;

		socks_parser_init(&p);
		assert_int_equal(feed(&p, b, cut, &used), SOCKS_MORE);
		assert_int_equal(socks_want(&p) <= lens[1] - cut, true);
	}
	/* And byte by byte, to the end. */
	lens[2] = build(b, SOCKS_CMD_CONNECT, SOCKS_ATYP_DOMAIN, name, 255, 80);
	{
		struct socks_parser p;

		socks_parser_init(&p);
		assert_int_equal(feed_bytes(&p, b, lens[2]), SOCKS_REQUEST);
		assert_int_equal(strlen(p.req.host), 255);
	}
}

/* Bytes past the request (early data, or a client that never stops) are
 * not the parser's: it takes the request and no more, then nothing. */
static void oversized(void **state)
{
	struct socks_parser p;
	uint8_t b[2000];
	size_t n = build(b, SOCKS_CMD_CONNECT, SOCKS_ATYP_DOMAIN, "db1", 3, 5432);
	size_t used;

	(void)state;
	memset(b + n, 'x', sizeof(b) - n);
	socks_parser_init(&p);
	assert_int_equal(feed(&p, b, sizeof(b), &used), SOCKS_REQUEST);
	assert_int_equal(used, n);
	assert_int_equal(socks_want(&p), 0);
	assert_int_equal(socks_input(&p, b + n, sizeof(b) - n, &used), SOCKS_REFUSE);
	assert_int_equal(used, 0);

	/* A greeting of 255 methods, the last one ours, is the largest. */
	socks_parser_init(&p);
	b[0] = 5;
	b[1] = 255;
	memset(b + 2, 0x80, 254);
	b[256] = 0;
	assert_int_equal(socks_input(&p, b, sizeof(b), &used), SOCKS_SEND);
	assert_int_equal(used, SOCKS_GREETING_MAX);
}

static void bad_version(void **state)
{
	static const uint8_t socks4[] = { 4, 1, 0, 80, 198, 51, 100, 1, 0 };
	struct socks_parser p;
	uint8_t b[600];
	size_t n, used;

	(void)state;
	socks_parser_init(&p);
	assert_int_equal(socks_input(&p, socks4, sizeof(socks4), &used), SOCKS_REFUSE);
	assert_int_equal(used, 1);	/* no further than the version */
	assert_int_equal(p.out_len, 0);	/* not ours to answer */
	assert_string_equal(p.err, "not SOCKS version 5");

	/* A greeting of version 5, then a request of version 4. */
	n = build(b, SOCKS_CMD_CONNECT, SOCKS_ATYP_DOMAIN, "web1", 4, 80);
	b[sizeof(hello)] = 4;
	socks_parser_init(&p);
	assert_int_equal(feed(&p, b, n, &used), SOCKS_REFUSE);
	assert_int_equal(used, sizeof(hello) + 1);
	assert_int_equal(p.out_len, 0);
}

static void bad_method(void **state)
{
	static const uint8_t userpass[] = { 5, 2, 1, 2 }, none[] = { 5, 0 };
	static const uint8_t refused[] = { 5, SOCKS_METHOD_REFUSED };
	struct socks_parser p;
	size_t used;

	(void)state;
	socks_parser_init(&p);
	assert_int_equal(socks_input(&p, userpass, sizeof(userpass), &used), SOCKS_REFUSE);
	assert_int_equal(used, sizeof(userpass));	/* all read before the reply */
	assert_int_equal(p.out_len, 2);
	assert_memory_equal(p.out, refused, 2);

	socks_parser_init(&p);
	assert_int_equal(socks_input(&p, none, sizeof(none), &used), SOCKS_REFUSE);
	assert_memory_equal(p.out, refused, 2);
}

static void bad_command(void **state)
{
	static const uint8_t v4[] = { 127, 0, 0, 1 };
	uint8_t b[600], want[SOCKS_REPLY_LEN];
	struct socks_parser p;

	(void)state;
	socks_reply_encode(want, SOCKS_REP_CMD_UNSUPPORTED);
	for (uint8_t cmd = 2; cmd <= 4; cmd++) {	/* BIND, UDP ASSOCIATE, none */
		size_t n = build(b, cmd, SOCKS_ATYP_IPV4, v4, 4, 80), used;

		socks_parser_init(&p);
		assert_int_equal(feed(&p, b, n, &used), SOCKS_REFUSE);
		assert_int_equal(used, n);	/* the whole request, then the reply */
		assert_int_equal(p.out_len, SOCKS_REPLY_LEN);
		assert_memory_equal(p.out, want, SOCKS_REPLY_LEN);
	}
}

static void bad_atyp(void **state)
{
	uint8_t b[600], want[SOCKS_REPLY_LEN];
	struct socks_parser p;

	(void)state;
	socks_reply_encode(want, SOCKS_REP_ATYP_UNSUPPORTED);
	for (uint8_t atyp = 0; atyp < 8; atyp++) {
		size_t n, used;

		if (atyp == SOCKS_ATYP_IPV4 || atyp == SOCKS_ATYP_DOMAIN ||
		    atyp == SOCKS_ATYP_IPV6)
			continue;
		n = build(b, SOCKS_CMD_CONNECT, atyp, "abcd", 4, 80);
		socks_parser_init(&p);
		assert_int_equal(feed(&p, b, n, &used), SOCKS_REFUSE);
		assert_int_equal(used, sizeof(hello) + 4);	/* its length is unknown */
		assert_memory_equal(p.out, want, SOCKS_REPLY_LEN);
	}
}

static void zero_length_domain(void **state)
{
	uint8_t b[600], want[SOCKS_REPLY_LEN];
	struct socks_parser p;
	size_t n = build(b, SOCKS_CMD_CONNECT, SOCKS_ATYP_DOMAIN, "", 0, 80), used;

	(void)state;
	socks_reply_encode(want, SOCKS_REP_FAILURE);
	socks_parser_init(&p);
	assert_int_equal(feed(&p, b, n, &used), SOCKS_REFUSE);
	assert_int_equal(used, n);
	assert_memory_equal(p.out, want, SOCKS_REPLY_LEN);
	assert_string_equal(p.err, "an empty domain name");

	n = build(b, SOCKS_CMD_CONNECT, SOCKS_ATYP_DOMAIN, "we\0b1", 5, 80);
	socks_parser_init(&p);
	assert_int_equal(feed(&p, b, n, &used), SOCKS_REFUSE);
	assert_string_equal(p.err, "a NUL byte in the domain name");

	n = build(b, SOCKS_CMD_CONNECT, SOCKS_ATYP_DOMAIN, "web1", 4, 0);
	socks_parser_init(&p);
	assert_int_equal(feed(&p, b, n, &used), SOCKS_REFUSE);
	assert_string_equal(p.err, "port 0");
}

static void reply_bytes(void **state)
{
	static const uint8_t ok[] = { 5, 0, 0, 1, 0, 0, 0, 0, 0, 0 };
	uint8_t out[SOCKS_REPLY_LEN];

	(void)state;
	socks_reply_encode(out, SOCKS_REP_OK);
	assert_memory_equal(out, ok, sizeof(ok));
	socks_reply_encode(out, SOCKS_REP_NOT_ALLOWED);
	assert_int_equal(out[1], 2);
	assert_string_equal(socks_rep_str(4), "host unreachable");
	assert_string_equal(socks_rep_str(9), "unknown reply");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(domain_request),
		cmocka_unit_test(ipv4_and_ipv6_requests),
		cmocka_unit_test(truncated),
		cmocka_unit_test(oversized),
		cmocka_unit_test(bad_version),
		cmocka_unit_test(bad_method),
		cmocka_unit_test(bad_command),
		cmocka_unit_test(bad_atyp),
		cmocka_unit_test(zero_length_domain),
		cmocka_unit_test(reply_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
