/*
 * Tunnel protocol v1: the handshake with its hellos, the framing reader, the
 * transport and the stream request, adversarially; and one known answer that
 * pins every byte of a handshake for an independent implementation to match
 * (docs/PROTOCOL.md shows it worked through).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "bytes.h"
#include "dh_cache.h"
#include "test_util.h"
#include "tunnel.h"
#include "x25519_hook.h"

#define NOW 1800000000000ull	/* ms */
#define FRAME_MAX (TUNNEL_LEN_PREFIX + TUNNEL_HANDSHAKE_MAX)
#define BIG (FRAME_MAX + 64)

static struct noise_keypair server, other_server, alice, mallory;
static uint8_t psk[KEY_LEN], other_psk[KEY_LEN];
static const uint16_t ports[] = { 22, 8443, 3306 };

static int setup(void **state)
{
	(void)state;
	test_keypair(&server);
	test_keypair(&other_server);
	test_keypair(&alice);
	test_keypair(&mallory);
	assert_true(random_bytes(psk, KEY_LEN));
	memcpy(other_psk, psk, KEY_LEN);
	other_psk[31] ^= 0x80;
	return 0;
}

/* A deterministic generator: a failure reproduces. */
static uint32_t rng_state = 0x9e3779b9;

static uint32_t rnd(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* Client side up to message 1 (framed, in msg1). */
static size_t client_hello(struct tunnel_handshake *c,
			   const struct noise_keypair *who,
			   const uint8_t *server_pub, const uint8_t *key,
			   uint8_t msg1[FRAME_MAX])
{
	size_t n = FRAME_MAX;

	assert_int_equal(tunnel_client_init(c, who, server_pub, key), TUNNEL_OK);
	assert_int_equal(tunnel_client_start(c, msg1, &n), TUNNEL_OK);
	assert_int_equal(n, TUNNEL_LEN_PREFIX + TUNNEL_MSG1_LEN);
	assert_int_equal(get_be16(msg1), TUNNEL_MSG1_LEN);
	return n;
}

/* The server reads message 1 through a reader, as the daemon will. */
static enum tunnel_error server_reads(struct tunnel_handshake *s,
				      const uint8_t *key, const uint8_t *frame,
				      size_t len, uint8_t client_pub[KEY_LEN])
{
	struct tunnel_reader *r = malloc(sizeof(*r));
	const uint8_t *msg;
	size_t mlen;
	enum tunnel_error e;

	assert_non_null(r);
	tunnel_reader_init(r, TUNNEL_EXPECT_MSG1);
	e = tunnel_read(r, &frame, &len, &msg, &mlen);
	if (e == TUNNEL_OK) {
		assert_int_equal(len, 0);
		e = tunnel_server_read_hello(s, &server, key, NULL, msg, mlen, client_pub);
	}
	free(r);
	return e;
}

/* A whole handshake with random keys; both transports out. */
static void handshake(struct tunnel_transport *ct, struct tunnel_transport *st,
		      struct tunnel_server_hello *hello,
		      const uint16_t *p, size_t n_ports)
{
	struct tunnel_handshake c, s;
	uint8_t msg1[FRAME_MAX], msg2[FRAME_MAX], client_pub[KEY_LEN];
	size_t n1 = client_hello(&c, &alice, server.pub, psk, msg1);
	size_t n2 = sizeof(msg2);

	assert_int_equal(server_reads(&s, psk, msg1, n1, client_pub), TUNNEL_OK);
	assert_memory_equal(client_pub, alice.pub, KEY_LEN);
	assert_int_equal(s.client_version, 1);
	assert_int_equal(tunnel_server_accept(&s, p, n_ports, NOW, msg2, &n2, st),
			 TUNNEL_OK);
	assert_int_equal(n2, TUNNEL_LEN_PREFIX + TUNNEL_MSG2_MIN + 2 * n_ports);
	assert_int_equal(get_be16(msg2), n2 - TUNNEL_LEN_PREFIX);
	assert_int_equal(tunnel_client_finish(&c, msg2 + 2, n2 - 2, hello, ct),
			 TUNNEL_OK);
	/* Both handshakes are wiped and refuse to go on. */
	assert_true(is_zero_ct(c.noise.s_priv, KEY_LEN) &&
		    is_zero_ct(c.noise.ss.ck, HASH_LEN));
	assert_true(is_zero_ct(s.noise.s_priv, KEY_LEN) &&
		    is_zero_ct(s.noise.psk, KEY_LEN));
	assert_memory_equal(ct->hash, st->hash, HASH_LEN);
}

static void full_handshake(void **state)
{
	struct tunnel_transport ct, st, copy;
	struct tunnel_server_hello hello;
	uint8_t frame[64], plain[64];
	size_t n;

	(void)state;
	handshake(&ct, &st, &hello, ports, 3);
	assert_int_equal(hello.version, 1);
	assert_int_equal(hello.flags, 0);
	assert_int_equal(hello.server_time_ms, NOW);
	assert_int_equal(hello.n_ports, 3);
	assert_memory_equal(hello.ports, ports, sizeof(ports));

	/* Both directions, each with its own key. */
	assert_int_equal(tunnel_seal(&ct, (const uint8_t *)"ping", 4, frame), TUNNEL_OK);
	assert_int_equal(get_be16(frame), 4 + TAG_LEN);
	copy = ct;
	assert_int_equal(tunnel_open(&copy, frame + 2, 20, plain, &n), TUNNEL_E_DECRYPT);
	assert_int_equal(tunnel_open(&st, frame + 2, 20, plain, &n), TUNNEL_OK);
	assert_int_equal(n, 4);
	assert_memory_equal(plain, "ping", 4);
	assert_int_equal(tunnel_seal(&st, (const uint8_t *)"pong", 4, frame), TUNNEL_OK);
	assert_int_equal(tunnel_open(&ct, frame + 2, 20, plain, &n), TUNNEL_OK);
	assert_memory_equal(plain, "pong", 4);
	tunnel_transport_free(&ct);
	tunnel_transport_free(&st);
	assert_true(is_zero_ct(ct.send.k, KEY_LEN) && is_zero_ct(ct.recv.k, KEY_LEN));
	assert_int_equal(tunnel_seal(&ct, plain, 1, frame), TUNNEL_E_STATE);
}

static void port_lists(void **state)
{
	struct tunnel_transport ct, st;
	struct tunnel_server_hello hello;
	static uint16_t many[TUNNEL_MAX_PORTS + 1];
	struct tunnel_handshake c, s;
	uint8_t msg1[FRAME_MAX], msg2[FRAME_MAX], out[FRAME_MAX], pub[KEY_LEN];
	size_t n1, n2 = sizeof(msg2);

	(void)state;
	handshake(&ct, &st, &hello, NULL, 0);
	assert_int_equal(hello.n_ports, 0);
	tunnel_transport_free(&ct);
	tunnel_transport_free(&st);
	for (size_t i = 0; i <= TUNNEL_MAX_PORTS; i++)
		many[i] = (uint16_t)(65535 - i);
	handshake(&ct, &st, &hello, many, TUNNEL_MAX_PORTS);
	assert_int_equal(hello.n_ports, TUNNEL_MAX_PORTS);
	assert_memory_equal(hello.ports, many, sizeof(hello.ports));
	tunnel_transport_free(&ct);
	tunnel_transport_free(&st);

	/* One more does not fit the bound: refused, nothing written. */
	n1 = client_hello(&c, &alice, server.pub, psk, msg1);
	assert_int_equal(server_reads(&s, psk, msg1, n1, pub), TUNNEL_OK);
	memset(msg2, 0xa5, sizeof(msg2));
	memset(out, 0xa5, sizeof(out));
	assert_int_equal(tunnel_server_accept(&s, many, TUNNEL_MAX_PORTS + 1, NOW,
					      msg2, &n2, &st), TUNNEL_E_TOO_LONG);
	assert_memory_equal(msg2, out, sizeof(out));
	assert_int_equal(n2, sizeof(msg2));
	tunnel_handshake_free(&c);
}

/* The server looks the key up, finds it unknown, and says nothing. */
static void unknown_client_refused(void **state)
{
	struct tunnel_handshake c, s;
	struct tunnel_transport st;
	uint8_t msg1[FRAME_MAX], msg2[FRAME_MAX], fill[FRAME_MAX], pub[KEY_LEN];
	size_t n1 = client_hello(&c, &mallory, server.pub, psk, msg1);
	size_t n2 = sizeof(msg2);

	(void)state;
	assert_int_equal(server_reads(&s, psk, msg1, n1, pub), TUNNEL_OK);
	assert_memory_equal(pub, mallory.pub, KEY_LEN);
	assert_memory_not_equal(pub, alice.pub, KEY_LEN);
	tunnel_handshake_free(&s);
	assert_true(is_zero_ct(s.noise.s_priv, KEY_LEN) &&
		    is_zero_ct(s.noise.e_priv, KEY_LEN) &&
		    is_zero_ct(s.noise.ss.ck, HASH_LEN));
	/* Nothing can be written from a refused handshake. */
	memset(msg2, 0x5a, sizeof(msg2));
	memset(fill, 0x5a, sizeof(fill));
	assert_int_equal(tunnel_server_accept(&s, ports, 3, NOW, msg2, &n2, &st),
			 TUNNEL_E_STATE);
	assert_int_equal(n2, sizeof(msg2));
	assert_memory_equal(msg2, fill, sizeof(fill));
	tunnel_handshake_free(&c);
}

/* A client that holds another server's key: that server cannot read it. */
static void wrong_server_key(void **state)
{
	struct tunnel_handshake c, s;
	uint8_t msg1[FRAME_MAX], pub[KEY_LEN];
	size_t n1 = client_hello(&c, &alice, other_server.pub, psk, msg1);

	(void)state;
	assert_int_equal(server_reads(&s, psk, msg1, n1, pub), TUNNEL_E_HANDSHAKE);
	assert_true(s.noise.failed && is_zero_ct(s.noise.s_priv, KEY_LEN));
	tunnel_handshake_free(&c);
}

/*
 * IKpsk2 mixes the PSK in at the end of message 2: the server cannot tell a
 * wrong PSK from message 1 and answers; the client refuses the answer.
 */
static void wrong_psk(void **state)
{
	const uint8_t *client_key[2] = { other_psk, psk };
	const uint8_t *server_key[2] = { psk, other_psk };

	(void)state;
	for (int i = 0; i < 2; i++) {
		struct tunnel_handshake c, s;
		struct tunnel_transport ct, st;
		struct tunnel_server_hello hello;
		uint8_t msg1[FRAME_MAX], msg2[FRAME_MAX], pub[KEY_LEN];
		size_t n1 = client_hello(&c, &alice, server.pub, client_key[i], msg1);
		size_t n2 = sizeof(msg2);

		assert_int_equal(server_reads(&s, server_key[i], msg1, n1, pub),
				 TUNNEL_OK);
		assert_int_equal(tunnel_server_accept(&s, ports, 3, NOW, msg2,
						      &n2, &st), TUNNEL_OK);
		assert_int_equal(tunnel_client_finish(&c, msg2 + 2, n2 - 2,
						      &hello, &ct),
				 TUNNEL_E_HANDSHAKE);
		assert_true(is_zero_ct(c.noise.s_priv, KEY_LEN));
		tunnel_transport_free(&st);
	}
}

static void msg1_bit_flips(void **state)
{
	struct tunnel_handshake c, s;
	uint8_t msg1[FRAME_MAX], pub[KEY_LEN];
	size_t n1 = client_hello(&c, &alice, server.pub, psk, msg1);

	(void)state;
	for (size_t byte = 0; byte < n1; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			enum tunnel_error e;

			msg1[byte] ^= (uint8_t)(1 << bit);
			e = server_reads(&s, psk, msg1, n1, pub);
			msg1[byte] ^= (uint8_t)(1 << bit);
			if (byte >= TUNNEL_LEN_PREFIX)
				assert_int_equal(e, TUNNEL_E_HANDSHAKE);
			else	/* a length out of range, too long or too short */
				assert_true(e == TUNNEL_E_FRAME ||
					    e == TUNNEL_AGAIN ||
					    e == TUNNEL_E_HANDSHAKE);
		}
	}
	assert_int_equal(server_reads(&s, psk, msg1, n1, pub), TUNNEL_OK);
	tunnel_handshake_free(&s);
	tunnel_handshake_free(&c);
}

/* Server side up to the framed message 2, the client state kept aside. */
static size_t exchange(struct tunnel_handshake *c, uint8_t msg2[FRAME_MAX])
{
	struct tunnel_handshake s;
	struct tunnel_transport st;
	uint8_t msg1[FRAME_MAX], pub[KEY_LEN];
	size_t n1 = client_hello(c, &alice, server.pub, psk, msg1);
	size_t n2 = FRAME_MAX;

	assert_int_equal(server_reads(&s, psk, msg1, n1, pub), TUNNEL_OK);
	assert_int_equal(tunnel_server_accept(&s, ports, 3, NOW, msg2, &n2, &st),
			 TUNNEL_OK);
	tunnel_transport_free(&st);
	return n2;
}

static void msg2_bit_flips(void **state)
{
	struct tunnel_handshake c, try;
	struct tunnel_transport ct;
	struct tunnel_server_hello hello;
	uint8_t msg2[FRAME_MAX];
	size_t n2 = exchange(&c, msg2);

	(void)state;
	for (size_t byte = TUNNEL_LEN_PREFIX; byte < n2; byte++) {
		for (int bit = 0; bit < 8; bit++) {
			try = c;
			msg2[byte] ^= (uint8_t)(1 << bit);
			assert_int_equal(tunnel_client_finish(&try, msg2 + 2, n2 - 2,
							      &hello, &ct),
					 TUNNEL_E_HANDSHAKE);
			msg2[byte] ^= (uint8_t)(1 << bit);
		}
	}
	try = c;
	assert_int_equal(tunnel_client_finish(&try, msg2 + 2, n2 - 2, &hello, &ct),
			 TUNNEL_OK);
	tunnel_handshake_free(&c);
	tunnel_transport_free(&ct);
}

static void truncated(void **state)
{
	struct tunnel_handshake c, s, try;
	struct tunnel_transport ct;
	struct tunnel_server_hello hello;
	struct tunnel_reader *r = malloc(sizeof(*r));
	uint8_t msg1[FRAME_MAX], msg2[FRAME_MAX], pub[KEY_LEN];
	size_t n1, n2, len, mlen;
	const uint8_t *in, *msg;

	(void)state;
	assert_non_null(r);
	n1 = client_hello(&c, &alice, server.pub, psk, msg1);
	for (size_t cut = 0; cut < n1 - 2; cut++)
		assert_int_equal(tunnel_server_read_hello(&s, &server, psk, NULL, msg1 + 2,
							  cut, pub),
				 TUNNEL_E_FRAME);
	/* A cut stream never yields a message, and is not at a boundary. */
	for (size_t cut = 1; cut < n1; cut++) {
		tunnel_reader_init(r, TUNNEL_EXPECT_MSG1);
		in = msg1;
		len = cut;
		assert_int_equal(tunnel_read(r, &in, &len, &msg, &mlen), TUNNEL_AGAIN);
		assert_false(tunnel_reader_idle(r));
	}
	tunnel_handshake_free(&c);

	n2 = exchange(&c, msg2);
	for (size_t cut = 0; cut < n2 - 2; cut++) {
		try = c;
		assert_int_equal(tunnel_client_finish(&try, msg2 + 2, cut, &hello, &ct),
				 cut < TUNNEL_MSG2_MIN ? TUNNEL_E_FRAME
						       : TUNNEL_E_HANDSHAKE);
	}
	/* One byte more shifts the tag. */
	try = c;
	msg2[n2] = 0;
	assert_int_equal(tunnel_client_finish(&try, msg2 + 2, n2 - 1, &hello, &ct),
			 TUNNEL_E_HANDSHAKE);
	tunnel_handshake_free(&c);
	free(r);
}

/* Message 1 with any client hello payload, framed into out. */
static size_t custom_hello(struct tunnel_handshake *c, const uint8_t *hello,
			   size_t hlen, uint8_t out[BIG])
{
	size_t n = BIG - 2;

	assert_int_equal(tunnel_client_init(c, &alice, server.pub, psk), TUNNEL_OK);
	assert_int_equal(noise_handshake_write(&c->noise, out + 2, &n, hello, hlen),
			 NOISE_OK);
	put_be16(out, (uint16_t)n);
	return n + 2;
}

/* A later client's longer hello is read as far as v1 knows it. */
static void client_hello_versions(void **state)
{
	struct tunnel_handshake c, s;
	struct tunnel_transport ct, st;
	struct tunnel_server_hello hello;
	uint8_t h[TUNNEL_HANDSHAKE_MAX] = { 1, 0, 0, 0 };
	uint8_t msg1[BIG], msg2[FRAME_MAX], pub[KEY_LEN];
	size_t n1, n2 = sizeof(msg2);
	size_t longest = TUNNEL_HANDSHAKE_MAX - TUNNEL_MSG1_LEN + 4;

	(void)state;
	memset(h + 4, 0xee, sizeof(h) - 4);
	n1 = custom_hello(&c, h, 64, msg1);
	assert_int_equal(server_reads(&s, psk, msg1, n1, pub), TUNNEL_OK);
	assert_int_equal(tunnel_server_accept(&s, ports, 3, NOW, msg2, &n2, &st),
			 TUNNEL_OK);
	assert_int_equal(tunnel_client_finish(&c, msg2 + 2, n2 - 2, &hello, &ct),
			 TUNNEL_OK);
	tunnel_transport_free(&ct);
	tunnel_transport_free(&st);

	/* Reserved bytes set, a version 2: answered in v1. */
	h[0] = 2;
	h[1] = 0xff;
	n1 = custom_hello(&c, h, longest, msg1);
	assert_int_equal(n1, FRAME_MAX);
	assert_int_equal(server_reads(&s, psk, msg1, n1, pub), TUNNEL_OK);
	assert_int_equal(s.client_version, 2);
	tunnel_handshake_free(&s);
	tunnel_handshake_free(&c);

	/* Over the bound, or too short to hold a version. */
	n1 = custom_hello(&c, h, longest + 1, msg1);
	assert_int_equal(server_reads(&s, psk, msg1, n1, pub), TUNNEL_E_FRAME);
	assert_int_equal(tunnel_server_read_hello(&s, &server, psk, NULL, msg1 + 2,
						  n1 - 2, pub), TUNNEL_E_FRAME);
	tunnel_handshake_free(&c);
	n1 = custom_hello(&c, h, 3, msg1);
	assert_int_equal(tunnel_server_read_hello(&s, &server, psk, NULL, msg1 + 2,
						  n1 - 2, pub), TUNNEL_E_FRAME);
	tunnel_handshake_free(&c);

	/* Version 0 does not exist. */
	h[0] = 0;
	n1 = custom_hello(&c, h, 4, msg1);
	assert_int_equal(server_reads(&s, psk, msg1, n1, pub), TUNNEL_E_VERSION);
	assert_true(is_zero_ct(s.noise.s_priv, KEY_LEN));
	tunnel_handshake_free(&c);
}

/* Message 2 with any server hello payload, read by the client. */
static enum tunnel_error client_reads(const uint8_t *payload, size_t plen,
				      struct tunnel_server_hello *hello)
{
	struct tunnel_handshake c, s;
	struct tunnel_transport ct;
	uint8_t msg1[FRAME_MAX], msg2[FRAME_MAX], pub[KEY_LEN];
	size_t n1 = client_hello(&c, &alice, server.pub, psk, msg1);
	size_t n2 = sizeof(msg2);
	enum tunnel_error e;

	assert_int_equal(server_reads(&s, psk, msg1, n1, pub), TUNNEL_OK);
	assert_int_equal(noise_handshake_write(&s.noise, msg2, &n2, payload, plen),
			 NOISE_OK);
	tunnel_handshake_free(&s);
	e = tunnel_client_finish(&c, msg2, n2, hello, &ct);
	if (e == TUNNEL_OK)
		tunnel_transport_free(&ct);
	return e;
}

static void server_hello_forms(void **state)
{
	struct tunnel_server_hello hello;
	uint8_t h[TUNNEL_HANDSHAKE_MAX] = {
		1, 0x80, 0xab, 0xcd, 0, 0, 0, 0, 0, 0, 0x30, 0x39, 0, 2,
		0, 22, 0x20, 0xfb, 0xde, 0xad,
	};

	(void)state;
	/* Unknown flags, reserved bits and trailing bytes are a later
	 * server's: ignored. */
	assert_int_equal(client_reads(h, 20, &hello), TUNNEL_OK);
	assert_int_equal(hello.flags, 0x80);
	assert_int_equal(hello.server_time_ms, 12345);
	assert_int_equal(hello.n_ports, 2);
	assert_int_equal(hello.ports[0], 22);
	assert_int_equal(hello.ports[1], 8443);

	/* n ports that are not there */
	h[13] = 4;
	assert_int_equal(client_reads(h, 20, &hello), TUNNEL_E_HELLO);
	assert_int_equal(hello.n_ports, 0);
	h[13] = 3;
	assert_int_equal(client_reads(h, 20, &hello), TUNNEL_OK);
	h[12] = 0xff;
	assert_int_equal(client_reads(h, TUNNEL_HANDSHAKE_MAX - KEY_LEN - TAG_LEN,
				      &hello), TUNNEL_E_HELLO);
	h[12] = 0;
	/* A v1 client asked for v1. */
	h[0] = 2;
	assert_int_equal(client_reads(h, 20, &hello), TUNNEL_E_VERSION);
	h[0] = 0;
	assert_int_equal(client_reads(h, 20, &hello), TUNNEL_E_VERSION);
	h[0] = 1;
	/* Shorter than a hello: a length no server sends. */
	assert_int_equal(client_reads(h, 13, &hello), TUNNEL_E_FRAME);
	assert_int_equal(client_reads(h, 14, &hello), TUNNEL_E_HELLO);
}

/* The same messages, however the stream is cut. */
static void reader_splits(void **state)
{
	static uint8_t stream[4 * 65540], plain[TUNNEL_MAX_PLAIN];
	static const size_t sizes[] = { 0, 1, 1000, TUNNEL_MAX_PLAIN, 17, 0 };
	struct tunnel_transport ct, st;
	struct tunnel_server_hello hello;
	struct tunnel_reader *r = malloc(sizeof(*r));
	size_t n_msgs = 1 + sizeof(sizes) / sizeof(sizes[0]);
	size_t offs[8], lens[8], total;

	(void)state;
	assert_non_null(r);
	/* msg2, then transport messages from the server in the same bytes */
	{
		struct tunnel_handshake c;

		total = exchange(&c, stream);
		offs[0] = 2;
		lens[0] = total - 2;
		tunnel_handshake_free(&c);
	}
	handshake(&ct, &st, &hello, ports, 3);
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)rnd();
	for (size_t i = 1; i < n_msgs; i++) {
		assert_int_equal(tunnel_seal(&st, plain, sizes[i - 1], stream + total),
				 TUNNEL_OK);
		offs[i] = total + 2;
		lens[i] = sizes[i - 1] + TAG_LEN;
		total += TUNNEL_OVERHEAD + sizes[i - 1];
	}
	for (int round = 0; round < 64; round++) {
		const uint8_t *in = stream, *msg;
		size_t left = total, got = 0, mlen;

		tunnel_reader_init(r, TUNNEL_EXPECT_MSG2);
		while (left) {
			/* round 0: byte at a time; then random splits */
			size_t chunk = round == 0 ? 1 : 1 + rnd() % (round < 32 ? 64 : 70000);
			size_t avail = chunk < left ? chunk : left;
			size_t rest = left - avail;
			enum tunnel_error e;

			while ((e = tunnel_read(r, &in, &avail, &msg, &mlen)) == TUNNEL_OK) {
				assert_true(got < n_msgs);
				assert_int_equal(mlen, lens[got]);
				assert_memory_equal(msg, stream + offs[got], mlen);
				assert_true(tunnel_reader_idle(r));
				got++;
				if (got == 1)	/* after message 2, transport */
					tunnel_reader_init(r, TUNNEL_EXPECT_TRANSPORT);
			}
			assert_int_equal(e, TUNNEL_AGAIN);
			assert_int_equal(avail, 0);
			left = rest;
		}
		assert_int_equal(got, n_msgs);
		assert_true(tunnel_reader_idle(r));
	}

	/* A body that arrives whole is lent, not copied. */
	{
		const uint8_t *in = stream, *msg;
		size_t len = total, mlen;

		tunnel_reader_init(r, TUNNEL_EXPECT_MSG2);
		assert_int_equal(tunnel_read(r, &in, &len, &msg, &mlen), TUNNEL_OK);
		assert_ptr_equal(msg, stream + 2);
		assert_ptr_equal(in, stream + offs[1] - 2);
		/* also when it ends the input exactly */
		len = lens[1] + 2;
		tunnel_reader_init(r, TUNNEL_EXPECT_TRANSPORT);
		assert_int_equal(tunnel_read(r, &in, &len, &msg, &mlen), TUNNEL_OK);
		assert_ptr_equal(msg, stream + offs[1]);
		assert_int_equal(len, 0);
	}
	tunnel_transport_free(&ct);
	tunnel_transport_free(&st);
	free(r);
}

static enum tunnel_error read_prefix(struct tunnel_reader *r,
				     enum tunnel_expect what, uint16_t len)
{
	uint8_t frame[2] = { (uint8_t)(len >> 8), (uint8_t)len };
	const uint8_t *in = frame, *msg;
	size_t n = 2, mlen;

	tunnel_reader_init(r, what);
	return tunnel_read(r, &in, &n, &msg, &mlen);
}

static void reader_lengths(void **state)
{
	struct tunnel_reader *r = malloc(sizeof(*r));
	const uint8_t *in, *msg;
	uint8_t body[32] = { 0 };
	size_t n, mlen;

	(void)state;
	assert_non_null(r);
	assert_int_equal(read_prefix(r, TUNNEL_EXPECT_TRANSPORT, 0), TUNNEL_E_FRAME);
	assert_int_equal(read_prefix(r, TUNNEL_EXPECT_TRANSPORT, 15), TUNNEL_E_FRAME);
	/* A failed reader stays failed. */
	in = body;
	n = sizeof(body);
	assert_int_equal(tunnel_read(r, &in, &n, &msg, &mlen), TUNNEL_E_FRAME);
	assert_int_equal(n, sizeof(body));
	assert_int_equal(read_prefix(r, TUNNEL_EXPECT_TRANSPORT, 16), TUNNEL_AGAIN);
	assert_int_equal(read_prefix(r, TUNNEL_EXPECT_TRANSPORT, 65535), TUNNEL_AGAIN);

	assert_int_equal(read_prefix(r, TUNNEL_EXPECT_MSG1, 0), TUNNEL_E_FRAME);
	assert_int_equal(read_prefix(r, TUNNEL_EXPECT_MSG1, 99), TUNNEL_E_FRAME);
	assert_int_equal(read_prefix(r, TUNNEL_EXPECT_MSG1, 100), TUNNEL_AGAIN);
	assert_int_equal(read_prefix(r, TUNNEL_EXPECT_MSG1, 1024), TUNNEL_AGAIN);
	assert_int_equal(read_prefix(r, TUNNEL_EXPECT_MSG1, 1025), TUNNEL_E_FRAME);
	assert_int_equal(read_prefix(r, TUNNEL_EXPECT_MSG1, 65535), TUNNEL_E_FRAME);
	assert_int_equal(read_prefix(r, TUNNEL_EXPECT_MSG2, 61), TUNNEL_E_FRAME);
	assert_int_equal(read_prefix(r, TUNNEL_EXPECT_MSG2, 62), TUNNEL_AGAIN);
	assert_int_equal(read_prefix(r, TUNNEL_EXPECT_MSG2, 1025), TUNNEL_E_FRAME);

	/* The smallest transport message: an empty plaintext. */
	body[1] = 16;
	in = body;
	n = 18;
	tunnel_reader_init(r, TUNNEL_EXPECT_TRANSPORT);
	assert_true(tunnel_reader_idle(r));
	assert_int_equal(tunnel_read(r, &in, &n, &msg, &mlen), TUNNEL_OK);
	assert_int_equal(mlen, 16);
	assert_int_equal(n, 0);
	assert_int_equal(tunnel_read(r, &in, &n, &msg, &mlen), TUNNEL_AGAIN);
	assert_true(tunnel_reader_idle(r));
	free(r);
}

static void transport_sizes(void **state)
{
	static uint8_t plain[TUNNEL_MAX_PLAIN + 1], frame[TUNNEL_MAX_PLAIN + 64],
		       out[TUNNEL_MAX_PLAIN + 64];
	static const size_t sizes[] = { 0, 1, TUNNEL_MAX_PLAIN };
	struct tunnel_transport ct, st;
	struct tunnel_server_hello hello;
	size_t n;

	(void)state;
	handshake(&ct, &st, &hello, ports, 3);
	for (size_t i = 0; i < sizeof(plain); i++)
		plain[i] = (uint8_t)(i * 7);
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(tunnel_seal(&ct, plain, sizes[i], frame), TUNNEL_OK);
		assert_int_equal(get_be16(frame), sizes[i] + TAG_LEN);
		assert_int_equal(tunnel_open(&st, frame + 2, sizes[i] + TAG_LEN,
					     out, &n), TUNNEL_OK);
		assert_int_equal(n, sizes[i]);
		assert_memory_equal(out, plain, sizes[i]);
	}
	/* One byte more does not fit a message: refused, no harm done. */
	memset(frame, 0, 4);
	assert_int_equal(tunnel_seal(&ct, plain, TUNNEL_MAX_PLAIN + 1, frame),
			 TUNNEL_E_TOO_LONG);
	assert_true(is_zero_ct(frame, 4));
	assert_int_equal(ct.send.n, 3);

	/* Sealing in place, and opening in place. */
	memcpy(frame + 2, "in place", 8);
	assert_int_equal(tunnel_seal(&ct, frame + 2, 8, frame), TUNNEL_OK);
	assert_int_equal(tunnel_open(&st, frame + 2, 24, frame + 2, &n), TUNNEL_OK);
	assert_memory_equal(frame + 2, "in place", 8);
	tunnel_transport_free(&ct);
	tunnel_transport_free(&st);
}

/* One bad message ends the session, whatever comes after. */
static void transport_tamper_is_fatal(void **state)
{
	struct tunnel_transport ct, st, saved;
	struct tunnel_server_hello hello;
	uint8_t a[64], b[64], out[64];
	size_t n;

	(void)state;
	handshake(&ct, &st, &hello, ports, 3);
	saved = st;
	assert_int_equal(tunnel_seal(&ct, (const uint8_t *)"first", 5, a), TUNNEL_OK);
	assert_int_equal(tunnel_seal(&ct, (const uint8_t *)"second", 6, b), TUNNEL_OK);

	for (size_t byte = 2; byte < 2 + 5 + TAG_LEN; byte++) {
		st = saved;
		a[byte] ^= 0x04;
		assert_int_equal(tunnel_open(&st, a + 2, 21, out, &n), TUNNEL_E_DECRYPT);
		a[byte] ^= 0x04;
		/* the good message no longer helps */
		assert_int_equal(tunnel_open(&st, a + 2, 21, out, &n), TUNNEL_E_STATE);
		assert_int_equal(tunnel_seal(&st, out, 1, b), TUNNEL_E_STATE);
	}
	/* Reordered */
	st = saved;
	assert_int_equal(tunnel_open(&st, b + 2, 22, out, &n), TUNNEL_E_DECRYPT);
	assert_int_equal(tunnel_open(&st, a + 2, 21, out, &n), TUNNEL_E_STATE);
	/* Replayed */
	st = saved;
	assert_int_equal(tunnel_open(&st, a + 2, 21, out, &n), TUNNEL_OK);
	assert_int_equal(tunnel_open(&st, a + 2, 21, out, &n), TUNNEL_E_DECRYPT);
	/* Truncated */
	st = saved;
	assert_int_equal(tunnel_open(&st, a + 2, 20, out, &n), TUNNEL_E_DECRYPT);
	st = saved;
	assert_int_equal(tunnel_open(&st, a + 2, 15, out, &n), TUNNEL_E_FRAME);
	assert_int_equal(tunnel_open(&st, a + 2, 21, out, &n), TUNNEL_E_STATE);

	/* The last nonce is Noise's reserved one. */
	ct.send.n = UINT64_MAX - 1;
	assert_int_equal(tunnel_seal(&ct, out, 1, a), TUNNEL_OK);
	assert_int_equal(tunnel_seal(&ct, out, 1, a), TUNNEL_E_NONCE);
	assert_int_equal(tunnel_seal(&ct, out, 1, a), TUNNEL_E_STATE);
	tunnel_transport_free(&ct);
	tunnel_transport_free(&saved);
}

static void out_of_order_calls(void **state)
{
	struct tunnel_handshake c, s;
	struct tunnel_transport t;
	struct tunnel_server_hello hello;
	static const uint8_t zero[KEY_LEN];
	uint8_t msg1[FRAME_MAX], msg2[FRAME_MAX], pub[KEY_LEN];
	size_t n1, n2;

	(void)state;
	/* finish before start, accept on a client, start twice */
	assert_int_equal(tunnel_client_init(&c, &alice, server.pub, psk), TUNNEL_OK);
	assert_int_equal(tunnel_client_finish(&c, msg2, 100, &hello, &t), TUNNEL_E_STATE);
	n1 = client_hello(&c, &alice, server.pub, psk, msg1);
	n2 = sizeof(msg2);
	assert_int_equal(tunnel_server_accept(&c, ports, 3, NOW, msg2, &n2, &t),
			 TUNNEL_E_STATE);
	n1 = client_hello(&c, &alice, server.pub, psk, msg1);
	assert_int_equal(tunnel_client_start(&c, msg1, &n1), TUNNEL_E_STATE);

	/* a client call on the server's handshake */
	n1 = client_hello(&c, &alice, server.pub, psk, msg1);
	assert_int_equal(server_reads(&s, psk, msg1, n1, pub), TUNNEL_OK);
	n1 = sizeof(msg1);
	assert_int_equal(tunnel_client_start(&s, msg1, &n1), TUNNEL_E_STATE);
	assert_int_equal(tunnel_server_accept(&s, ports, 3, NOW, msg2, &n2, &t),
			 TUNNEL_E_STATE);

	/* too little room */
	n1 = TUNNEL_MSG1_LEN + 1;
	assert_int_equal(tunnel_client_init(&c, &alice, server.pub, psk), TUNNEL_OK);
	assert_int_equal(tunnel_client_start(&c, msg1, &n1), TUNNEL_E_SPACE);
	n1 = client_hello(&c, &alice, server.pub, psk, msg1);
	assert_int_equal(server_reads(&s, psk, msg1, n1, pub), TUNNEL_OK);
	n2 = 2 + TUNNEL_MSG2_MIN + 5;
	assert_int_equal(tunnel_server_accept(&s, ports, 3, NOW, msg2, &n2, &t),
			 TUNNEL_E_SPACE);
	tunnel_handshake_free(&c);

	/* a low-order server key in the client's configuration */
	n1 = sizeof(msg1);
	assert_int_equal(tunnel_client_init(&c, &alice, zero, psk), TUNNEL_OK);
	assert_int_equal(tunnel_client_start(&c, msg1, &n1), TUNNEL_E_KEY);
	assert_int_equal(tunnel_client_init(&c, &alice, server.pub, NULL), TUNNEL_E_KEY);
}

static void stream_request_and_status(void **state)
{
	uint8_t req[TUNNEL_REQUEST_LEN];
	uint16_t port = 0;

	(void)state;
	tunnel_request_encode(req, 22);
	assert_memory_equal(req, "\x01\x00\x16", 3);
	assert_true(tunnel_request_decode(req, &port));
	assert_int_equal(port, 22);
	tunnel_request_encode(req, 65535);
	assert_memory_equal(req, "\x01\xff\xff", 3);
	assert_true(tunnel_request_decode(req, &port));
	assert_int_equal(port, 65535);
	for (int cmd = 0; cmd < 256; cmd++) {
		req[0] = (uint8_t)cmd;
		port = 7;
		assert_int_equal(tunnel_request_decode(req, &port), cmd == 1);
		assert_int_equal(port, cmd == 1 ? 65535 : 7);
	}

	assert_string_equal(tunnel_status_str(0x00), "ok");
	assert_string_equal(tunnel_status_str(0x01), "port not allowed");
	assert_string_equal(tunnel_status_str(0x02), "connection refused");
	assert_string_equal(tunnel_status_str(0x03), "unreachable or timed out");
	assert_string_equal(tunnel_status_str(0xff), "internal error");
	for (int s = 0x04; s < 0xff; s++)
		assert_string_equal(tunnel_status_str((uint8_t)s), "unknown status");

	assert_int_equal(tunnel_status_from_errno(0), TUNNEL_STATUS_OK);
	assert_int_equal(tunnel_status_from_errno(ECONNREFUSED), TUNNEL_STATUS_REFUSED);
	assert_int_equal(tunnel_status_from_errno(ETIMEDOUT), TUNNEL_STATUS_UNREACHABLE);
	assert_int_equal(tunnel_status_from_errno(EHOSTUNREACH), TUNNEL_STATUS_UNREACHABLE);
	assert_int_equal(tunnel_status_from_errno(ENETUNREACH), TUNNEL_STATUS_UNREACHABLE);
	assert_int_equal(tunnel_status_from_errno(EMFILE), TUNNEL_STATUS_INTERNAL);

	for (int e = TUNNEL_OK; e <= TUNNEL_E_STATE; e++)
		assert_string_not_equal(tunnel_strerror((enum tunnel_error)e),
					"unknown error");
	assert_string_equal(tunnel_strerror((enum tunnel_error)99), "unknown error");
}

/*
 * Known answer. Keys are bytes repeated 32 times: client static 0x11, server
 * static 0x22, PSK 0x33, client ephemeral 0x44, server ephemeral 0x55. The
 * server allows ports 22 and 8443 and its clock reads 1800000000000 ms. Then
 * the client sends the stream request for port 22 and the server answers
 * status 0. Cross-checked against an independent implementation (Python,
 * pyca/cryptography) before being pinned here.
 */
#define KAT_CLIENT_PUB "7b4e909bbe7ffe44c465a220037d608ee35897d31ef972f07f74892cb0f73f13"
#define KAT_SERVER_PUB "0faa684ed28867b97f4a6a2dee5df8ce974e76b7018e3f22a1c4cf2678570f20"
#define KAT_MSG1 \
	"0064" \
	"ff2ee45601ec1b67310c7790404585ae697331eee1c1f8cf2419731c1fff3e6b" \
	"3b6f1324884f7dfcb616f1440bce015ad114bc97a5052c5972a42150ca66244e" \
	"be5e0955cf80e509b8ea0f63a0d1253e" \
	"4fd41251" \
	"4a753be22956598994ce7596d502a954"
#define KAT_MSG2 \
	"0042" \
	"38ab664bd86f77d7e66bdd9ae0792913a94fd8b33a1260027e4b46c1f4884c67" \
	"d87414d26e118eacc0f89233e603911c857e" \
	"760be4cbcbf6c86fe7738886625ee61a"
#define KAT_HASH "85156d109115274fae295802f65745f65a1f9c0e9df885b842cedeea68ea4381"
#define KAT_T_CLIENT "0013" "0a1fe0" "0dd830d36081934ebc82eb9390aa7d9c"
#define KAT_T_SERVER "0011" "4d" "5806afc7b92b1c593d76a89f5a86fe88"

static void expect_hex(const uint8_t *got, size_t len, const char *hex)
{
	size_t n;
	uint8_t *want = hex_decode(hex, &n);

	assert_non_null(want);
	assert_int_equal(len, n);
	assert_memory_equal(got, want, n);
	free(want);
}

static void known_answer(void **state)
{
	static const uint16_t kat_ports[] = { 22, 8443 };
	struct noise_keypair c_kp, s_kp;
	struct tunnel_handshake c, s;
	struct tunnel_transport ct, st;
	struct tunnel_server_hello hello;
	uint8_t k[KEY_LEN], e_c[KEY_LEN], e_s[KEY_LEN], key[KEY_LEN];
	uint8_t msg1[FRAME_MAX], msg2[FRAME_MAX], pub[KEY_LEN], frame[64], out[64];
	uint8_t req[TUNNEL_REQUEST_LEN], status = TUNNEL_STATUS_OK;
	size_t n1 = sizeof(msg1), n2 = sizeof(msg2), n;
	uint16_t port;

	(void)state;
	memset(k, 0x11, KEY_LEN);
	assert_true(noise_keypair_init(&c_kp, k));
	memset(k, 0x22, KEY_LEN);
	assert_true(noise_keypair_init(&s_kp, k));
	memset(key, 0x33, KEY_LEN);
	memset(e_c, 0x44, KEY_LEN);
	memset(e_s, 0x55, KEY_LEN);
	expect_hex(c_kp.pub, KEY_LEN, KAT_CLIENT_PUB);
	expect_hex(s_kp.pub, KEY_LEN, KAT_SERVER_PUB);

	assert_int_equal(tunnel_client_init(&c, &c_kp, s_kp.pub, key), TUNNEL_OK);
	noise_handshake_set_ephemeral(&c.noise, e_c);
	assert_int_equal(tunnel_client_start(&c, msg1, &n1), TUNNEL_OK);
	expect_hex(msg1, n1, KAT_MSG1);

	assert_int_equal(tunnel_server_read_hello(&s, &s_kp, key, NULL, msg1 + 2, n1 - 2,
						  pub), TUNNEL_OK);
	assert_memory_equal(pub, c_kp.pub, KEY_LEN);
	noise_handshake_set_ephemeral(&s.noise, e_s);
	assert_int_equal(tunnel_server_accept(&s, kat_ports, 2, NOW, msg2, &n2, &st),
			 TUNNEL_OK);
	expect_hex(msg2, n2, KAT_MSG2);

	assert_int_equal(tunnel_client_finish(&c, msg2 + 2, n2 - 2, &hello, &ct),
			 TUNNEL_OK);
	assert_int_equal(hello.server_time_ms, NOW);
	assert_int_equal(hello.n_ports, 2);
	expect_hex(ct.hash, HASH_LEN, KAT_HASH);
	expect_hex(st.hash, HASH_LEN, KAT_HASH);

	tunnel_request_encode(req, 22);
	assert_int_equal(tunnel_seal(&ct, req, sizeof(req), frame), TUNNEL_OK);
	expect_hex(frame, TUNNEL_OVERHEAD + 3, KAT_T_CLIENT);
	assert_int_equal(tunnel_open(&st, frame + 2, 19, out, &n), TUNNEL_OK);
	assert_true(n == 3 && tunnel_request_decode(out, &port) && port == 22);
	assert_int_equal(tunnel_seal(&st, &status, 1, frame), TUNNEL_OK);
	expect_hex(frame, TUNNEL_OVERHEAD + 1, KAT_T_SERVER);
	tunnel_transport_free(&ct);
	tunnel_transport_free(&st);
	wipe(&c_kp, sizeof(c_kp));
	wipe(&s_kp, sizeof(s_kp));
}

/* One handshake for `who` through a server with dh (or none): the X25519
 * operations the server took, message 1 and message 2 apart; the client
 * key it learnt and the transports, checked to agree. */
static void counted_handshake(const struct noise_keypair *who,
			      struct dh_cache *dh, unsigned long cost[2])
{
	struct tunnel_handshake c, s;
	struct tunnel_transport ct, st;
	struct tunnel_server_hello hello;
	uint8_t msg1[FRAME_MAX], msg2[FRAME_MAX], pub[KEY_LEN];
	uint8_t plain[5] = "hello", sealed[5 + TUNNEL_OVERHEAD], out[5];
	size_t n1 = client_hello(&c, who, server.pub, psk, msg1), n2 = sizeof(msg2);
	size_t got;
	unsigned long before = x25519_calls();

	assert_int_equal(tunnel_server_read_hello(&s, &server, psk, dh_cache_source(dh), msg1 + 2,
						  n1 - 2, pub), TUNNEL_OK);
	cost[0] = x25519_calls() - before;
	assert_memory_equal(pub, who->pub, KEY_LEN);
	before = x25519_calls();
	assert_int_equal(tunnel_server_accept(&s, ports, 3, NOW, msg2, &n2, &st),
			 TUNNEL_OK);
	cost[1] = x25519_calls() - before;
	assert_int_equal(tunnel_client_finish(&c, msg2 + 2, n2 - 2, &hello, &ct),
			 TUNNEL_OK);
	assert_memory_equal(ct.hash, st.hash, HASH_LEN);
	assert_int_equal(tunnel_seal(&ct, plain, sizeof(plain), sealed), TUNNEL_OK);
	assert_int_equal(tunnel_open(&st, sealed + 2, sizeof(sealed) - 2, out, &got),
			 TUNNEL_OK);
	assert_memory_equal(out, plain, sizeof(plain));
	tunnel_transport_free(&ct);
	tunnel_transport_free(&st);
}

/* Once the ss of a listed client is kept, the server's message 1 costs one
 * X25519 (es) instead of two; message 2 stays e, ee, se. A key not in the
 * cache costs what it did, and still authenticates as far as message 1 can
 * (tunneld refuses it by its configuration). */
static void dh_cache_saves_one_x25519(void **state)
{
	struct client_entry listed = { .name = "alice" };
	struct server_config cfg = { .clients = &listed, .n_clients = 1 };
	struct dh_cache *dh, *other;
	unsigned long cost[2];

	(void)state;
	memcpy(listed.public_key, alice.pub, KEY_LEN);
	assert_non_null(dh = dh_cache_new(&server, &cfg));
	assert_int_equal(dh_cache_size(dh), 1);
	counted_handshake(&alice, NULL, cost);
	assert_int_equal(cost[0], 2);
	assert_int_equal(cost[1], 3);
	assert_int_equal(dh_cache_computed(dh), 0);
	counted_handshake(&alice, dh, cost);
	assert_int_equal(cost[0], 2);		/* computed, and kept */
	assert_int_equal(dh_cache_computed(dh), 1);
	for (int i = 0; i < 3; i++) {
		counted_handshake(&alice, dh, cost);
		assert_int_equal(cost[0], 1);
		assert_int_equal(cost[1], 3);
	}
	counted_handshake(&mallory, dh, cost);
	assert_int_equal(cost[0], 2);
	counted_handshake(&mallory, dh, cost);
	assert_int_equal(cost[0], 2);
	/* a cache made for another server key is not used, nor wrong */
	assert_non_null(other = dh_cache_new(&other_server, &cfg));
	counted_handshake(&alice, other, cost);
	assert_int_equal(cost[0], 2);
	assert_int_equal(dh_cache_computed(other), 0);
	dh_cache_free(other);
	dh_cache_free(dh);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_handshake),
		cmocka_unit_test(port_lists),
		cmocka_unit_test(unknown_client_refused),
		cmocka_unit_test(wrong_server_key),
		cmocka_unit_test(wrong_psk),
		cmocka_unit_test(msg1_bit_flips),
		cmocka_unit_test(msg2_bit_flips),
		cmocka_unit_test(truncated),
		cmocka_unit_test(client_hello_versions),
		cmocka_unit_test(server_hello_forms),
		cmocka_unit_test(reader_splits),
		cmocka_unit_test(reader_lengths),
		cmocka_unit_test(transport_sizes),
		cmocka_unit_test(transport_tamper_is_fatal),
		cmocka_unit_test(out_of_order_calls),
		cmocka_unit_test(stream_request_and_status),
		cmocka_unit_test(known_answer),
		cmocka_unit_test(dh_cache_saves_one_x25519),
	};

	if (!crypto_init())
		return 1;
	return cmocka_run_group_tests(tests, setup, NULL);
}
