/*
 * The tunnel core with attacker-chosen bytes. The first byte picks a mode:
 *
 *   0  stream bytes into a server: reader, read_hello, accept, then the
 *      rest as transport messages: reader, open, until an error
 *   1  the same into a client that sent message 1: reader, finish, open
 *   2  stream bytes into an established session: reader, open
 *   3  an authentic message 1 carrying any client hello: the server must
 *      take exactly the well-formed ones, and the handshake then completes
 *   4  an authentic message 2 carrying any server hello: the client must
 *      never report a forgery, and what it parses must fit the bytes
 *   5  any plaintext sealed into messages, the stream cut anywhere and
 *      maybe one bit flipped: what opens is exactly what was sealed
 *
 * The second byte, where used, sets how the stream is cut.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tunnel.h"

#define FRAME_MAX (TUNNEL_LEN_PREFIX + TUNNEL_HANDSHAKE_MAX)

static struct noise_keypair server, client;
static uint8_t psk[KEY_LEN];
/* A client after message 1, a server after reading it, and the session
 * they make: each run works on copies. */
static struct tunnel_handshake client_hs, server_hs;
static struct tunnel_transport client_t, server_t;
static struct tunnel_reader reader;
static uint8_t plain[TUNNEL_MAX_MSG];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(x) do { if (!(x)) __builtin_trap(); } while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const uint16_t ports[] = { 22, 8443 };
	struct tunnel_handshake c, s;
	struct tunnel_server_hello hello;
	uint8_t priv[KEY_LEN], msg1[FRAME_MAX], msg2[FRAME_MAX], pub[KEY_LEN];
	size_t n1 = sizeof(msg1), n2 = sizeof(msg2);

	(void)argc;
	(void)argv;
	check(crypto_init());
	memset(priv, 0x11, KEY_LEN);
	check(noise_keypair_init(&client, priv));
	memset(priv, 0x22, KEY_LEN);
	check(noise_keypair_init(&server, priv));
	memset(psk, 0x33, KEY_LEN);

	check(tunnel_client_init(&client_hs, &client, server.pub, psk) == TUNNEL_OK);
	memset(priv, 0x44, KEY_LEN);
	noise_handshake_set_ephemeral(&client_hs.noise, priv);
	check(tunnel_client_start(&client_hs, msg1, &n1) == TUNNEL_OK);
	check(tunnel_server_read_hello(&server_hs, &server, psk, msg1 + 2, n1 - 2,
				       pub) == TUNNEL_OK);
	memset(priv, 0x55, KEY_LEN);
	noise_handshake_set_ephemeral(&server_hs.noise, priv);
	c = client_hs;
	s = server_hs;
	check(tunnel_server_accept(&s, ports, 2, 1, msg2, &n2, &server_t) == TUNNEL_OK);
	check(tunnel_client_finish(&c, msg2 + 2, n2 - 2, &hello, &client_t) ==
	      TUNNEL_OK);
	return 0;
}

/* Feed the stream to the reader in pieces of 1..cut+1 bytes (cut 255: all
 * at once); call each complete message with fn until fn says stop. */
static void feed(const uint8_t *data, size_t size, uint8_t cut,
		 enum tunnel_expect what,
		 bool (*fn)(const uint8_t *msg, size_t len))
{
	const uint8_t *msg;
	size_t len;

	tunnel_reader_init(&reader, what);
	while (size) {
		size_t piece = cut == 255 || cut + 1u > size ? size : cut + 1u;
		size_t left = size - piece;
		enum tunnel_error e;

		while ((e = tunnel_read(&reader, &data, &piece, &msg, &len)) ==
		       TUNNEL_OK) {
			check(len >= reader.min && len <= reader.max);
			if (!fn(msg, len))
				return;
		}
		if (e != TUNNEL_AGAIN)
			return;
		check(piece == 0);
		size = left;
	}
}

/* Modes 0-2: whatever reads goes on to the next step, so that a seed with
 * real messages (the known answer uses these keys) reaches the transport. */
static struct tunnel_transport session;
static bool has_session;

static bool session_reads(const uint8_t *msg, size_t len)
{
	size_t n;
	enum tunnel_error e = tunnel_open(&session, msg, len, plain, &n);

	check(e == TUNNEL_OK || session.failed);
	check(e != TUNNEL_OK || n == len - TAG_LEN);
	return e == TUNNEL_OK;
}

static bool server_reads(const uint8_t *msg, size_t len)
{
	static const uint16_t ports[] = { 22 };
	struct tunnel_handshake s;
	uint8_t pub[KEY_LEN], msg2[FRAME_MAX];
	size_t n2 = sizeof(msg2);

	if (has_session)
		return session_reads(msg, len);
	if (tunnel_server_read_hello(&s, &server, psk, msg, len, pub) != TUNNEL_OK) {
		check(s.noise.failed);
		return false;
	}
	check(tunnel_server_accept(&s, ports, 1, 0, msg2, &n2, &session) ==
	      TUNNEL_OK);
	has_session = true;
	tunnel_reader_init(&reader, TUNNEL_EXPECT_TRANSPORT);
	return true;
}

static bool client_reads(const uint8_t *msg, size_t len)
{
	struct tunnel_handshake c = client_hs;
	struct tunnel_server_hello hello;

	if (has_session)
		return session_reads(msg, len);
	if (tunnel_client_finish(&c, msg, len, &hello, &session) != TUNNEL_OK) {
		check(c.noise.failed);
		return false;
	}
	check(hello.n_ports <= TUNNEL_MAX_PORTS);
	has_session = true;
	tunnel_reader_init(&reader, TUNNEL_EXPECT_TRANSPORT);
	return true;
}

static void any_client_hello(const uint8_t *h, size_t hlen)
{
	struct tunnel_handshake c, s;
	struct tunnel_server_hello hello;
	struct tunnel_transport ct, st;
	uint8_t msg1[2 * FRAME_MAX], msg2[FRAME_MAX], pub[KEY_LEN];
	size_t n1 = sizeof(msg1), n2 = sizeof(msg2);
	enum tunnel_error e, want;

	if (hlen > TUNNEL_HANDSHAKE_MAX)
		return;
	check(tunnel_client_init(&c, &client, server.pub, psk) == TUNNEL_OK);
	check(noise_handshake_write(&c.noise, msg1, &n1, h, hlen) == NOISE_OK);
	e = tunnel_server_read_hello(&s, &server, psk, msg1, n1, pub);
	if (n1 < TUNNEL_MSG1_LEN || n1 > TUNNEL_HANDSHAKE_MAX)
		want = TUNNEL_E_FRAME;
	else if (h[0] == 0)
		want = TUNNEL_E_VERSION;
	else
		want = TUNNEL_OK;
	check(e == want);
	if (e != TUNNEL_OK) {
		tunnel_handshake_free(&c);
		return;
	}
	check(s.client_version == h[0] && memcmp(pub, client.pub, KEY_LEN) == 0);
	check(tunnel_server_accept(&s, NULL, 0, 7, msg2, &n2, &st) == TUNNEL_OK);
	check(tunnel_client_finish(&c, msg2 + 2, n2 - 2, &hello, &ct) == TUNNEL_OK);
	check(memcmp(ct.hash, st.hash, HASH_LEN) == 0);
	tunnel_transport_free(&ct);
	tunnel_transport_free(&st);
}

static void any_server_hello(const uint8_t *h, size_t hlen)
{
	struct tunnel_handshake c = client_hs, s = server_hs;
	struct tunnel_server_hello hello;
	struct tunnel_transport t;
	uint8_t msg2[2 * FRAME_MAX];
	size_t n2 = sizeof(msg2);
	enum tunnel_error e;

	if (hlen > TUNNEL_HANDSHAKE_MAX)
		return;
	check(noise_handshake_write(&s.noise, msg2, &n2, h, hlen) == NOISE_OK);
	tunnel_handshake_free(&s);
	e = tunnel_client_finish(&c, msg2, n2, &hello, &t);
	check(e != TUNNEL_E_HANDSHAKE);
	if (n2 < TUNNEL_MSG2_MIN || n2 > TUNNEL_HANDSHAKE_MAX) {
		check(e == TUNNEL_E_FRAME);
		return;
	}
	check(e == (h[0] != TUNNEL_VERSION ? TUNNEL_E_VERSION :
		    TUNNEL_SERVER_HELLO_MIN + 2u * (h[12] << 8 | h[13]) > hlen ?
		    TUNNEL_E_HELLO : TUNNEL_OK));
	if (e != TUNNEL_OK)
		return;
	check(hello.n_ports <= TUNNEL_MAX_PORTS && hello.flags == h[1]);
	for (size_t i = 0; i < hello.n_ports; i++)
		check(hello.ports[i] == (h[14 + 2 * i] << 8 | h[15 + 2 * i]));
	tunnel_transport_free(&t);
}

/* Mode 5: the plaintext, sealed in pieces, must come out whole. */
static uint8_t stream[4096 * (TUNNEL_OVERHEAD + 1)];
static size_t opened;
static const uint8_t *expect;

static bool session_opens(const uint8_t *msg, size_t len)
{
	size_t n;

	if (tunnel_open(&session, msg, len, plain, &n) != TUNNEL_OK)
		return false;
	check(memcmp(plain, expect + opened, n) == 0);
	opened += n;
	return true;
}

static void round_trip(const uint8_t *data, size_t size, uint8_t cut)
{
	struct tunnel_transport sender = client_t;
	size_t total = 0, flip;
	uint8_t piece;

	if (size < 3)
		return;
	piece = data[0];
	flip = data[1] | (size_t)data[2] << 8;
	data += 3;
	size -= 3;
	for (size_t off = 0; off < size; ) {
		size_t n = size - off < (size_t)piece + 1 ? size - off : (size_t)piece + 1;

		check(total + TUNNEL_OVERHEAD + n <= sizeof(stream));
		check(tunnel_seal(&sender, data + off, n, stream + total) == TUNNEL_OK);
		total += TUNNEL_OVERHEAD + n;
		off += n;
	}
	/* flip ≥ total: leave the stream alone */
	if (flip < total)
		stream[flip] ^= 0x01;
	session = server_t;
	opened = 0;
	expect = data;
	feed(stream, total, cut, TUNNEL_EXPECT_TRANSPORT, session_opens);
	if (flip >= total)
		check(opened == size && !session.failed);
	else	/* every message holds a byte: the altered one is lost */
		check(opened < size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t cut;

	if (size < 2 || size > 2 + 4096)
		return 0;
	cut = data[1];
	has_session = false;
	switch (data[0] % 6) {
	case 0:
		feed(data + 2, size - 2, cut, TUNNEL_EXPECT_MSG1, server_reads);
		break;
	case 1:
		feed(data + 2, size - 2, cut, TUNNEL_EXPECT_MSG2, client_reads);
		break;
	case 2:
		session = server_t;
		has_session = true;
		feed(data + 2, size - 2, cut, TUNNEL_EXPECT_TRANSPORT, server_reads);
		break;
	case 3:
		any_client_hello(data + 1, size - 1);
		break;
	case 4:
		any_server_hello(data + 1, size - 1);
		break;
	case 5:
		round_trip(data + 2, size - 2, cut);
		break;
	}
	return 0;
}
