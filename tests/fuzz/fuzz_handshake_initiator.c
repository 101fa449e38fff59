/*
 * Message 2 of the tunnel handshake as the client reads it, after it sent
 * a real message 1 (ALICE, fixed ephemeral): the framing (tunnel_reader,
 * TUNNEL_EXPECT_MSG2) over reads of any size, then tunnel_client_finish()
 * and the server hello parser in it. Bit 0 of the first byte picks a mode:
 *
 *   0  the server's bytes as they come, the second byte setting the read
 *      size. Seeds: the real server's replies with a few port lists.
 *   1  a real reply, written by the server that read message 1, carrying
 *      a server hello the fuzzer gives: version, flags, reserved, time,
 *      the port count and ports, bytes beyond them. With bit 1 set, the
 *      server holds another fleet's PSK.
 *
 * Invariants: a message the reader hands over has a length in range; the
 * handshake is over and wiped after any reply; a parsed hello never lists
 * more ports than its bytes hold, nor more than TUNNEL_MAX_PORTS; an
 * authentic reply never fails to authenticate, a reply under another PSK
 * never authenticates, and an authentic hello is refused exactly when its
 * version or its port list calls for it, else read field by field.
 */
#include <string.h>

#include "bytes.h"
#include "fuzz_util.h"

static struct fuzz_tunnel ft;
static struct tunnel_handshake server_wrong_psk;	/* message 1 read */
static struct tunnel_reader reader;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t pub[KEY_LEN];

	(void)argc;
	(void)argv;
	fuzz_tunnel_init(&ft);
	check(tunnel_server_read_hello(&server_wrong_psk, &fk.server,
				       fk.wrong_psk, NULL,
				       ft.msg1 + TUNNEL_LEN_PREFIX,
				       ft.msg1_len - TUNNEL_LEN_PREFIX,
				       pub) == TUNNEL_OK);
	return 0;
}

/* Mode 0: whatever the server sends. */
static bool read_msg2(void *ctx, const uint8_t *msg, size_t len)
{
	struct tunnel_handshake c = ft.client;
	struct tunnel_server_hello hello;
	struct tunnel_transport t;
	enum tunnel_error e;

	(void)ctx;
	e = tunnel_client_finish(&c, msg, len, &hello, &t);
	check(c.noise.failed);
	check(tunnel_strerror(e)[0] != '\0');
	if (e != TUNNEL_OK) {
		check(e == TUNNEL_E_HANDSHAKE || e == TUNNEL_E_HELLO ||
		      e == TUNNEL_E_VERSION);
		return false;
	}
	check(hello.version == TUNNEL_VERSION);
	check(hello.n_ports <= TUNNEL_MAX_PORTS);
	check(len >= TUNNEL_MSG2_MIN + 2u * hello.n_ports);
	tunnel_transport_free(&t);
	return false;	/* what follows is transport */
}

/* Mode 1: an authentic reply around any server hello. */
static void authentic(bool wrong_psk, const uint8_t *h, size_t n)
{
	struct tunnel_handshake c = ft.client;
	struct tunnel_handshake s = wrong_psk ? server_wrong_psk : ft.server;
	struct tunnel_server_hello hello;
	struct tunnel_transport t;
	uint8_t msg[2 * FUZZ_FRAME_MAX];
	size_t len = sizeof(msg);
	enum tunnel_error e, want;

	noise_handshake_set_ephemeral(&s.noise, fk.e_server);
	check(noise_handshake_write(&s.noise, msg, &len, h, n) == NOISE_OK);
	tunnel_handshake_free(&s);
	e = tunnel_client_finish(&c, msg, len, &hello, &t);
	check(c.noise.failed);
	if (len < TUNNEL_MSG2_MIN || len > TUNNEL_HANDSHAKE_MAX)
		want = TUNNEL_E_FRAME;
	else if (wrong_psk)
		want = TUNNEL_E_HANDSHAKE;
	else if (h[0] != TUNNEL_VERSION)
		want = TUNNEL_E_VERSION;
	else if (TUNNEL_SERVER_HELLO_MIN + 2u * get_be16(h + 12) > n)
		want = TUNNEL_E_HELLO;
	else
		want = TUNNEL_OK;
	check(e == want);
	if (e != TUNNEL_OK)
		return;
	check(hello.flags == h[1]);
	for (int i = 0; i < 8; i++)
		check((uint8_t)(hello.server_time_ms >> (56 - 8 * i)) == h[4 + i]);
	check(hello.n_ports == get_be16(h + 12) && hello.n_ports <= TUNNEL_MAX_PORTS);
	for (size_t i = 0; i < hello.n_ports; i++)
		check(hello.ports[i] == get_be16(h + TUNNEL_SERVER_HELLO_MIN + 2 * i));
	tunnel_transport_free(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 2 + 4 * FUZZ_FRAME_MAX)
		return 0;
	if (data[0] & 1) {
		if (size - 2 <= TUNNEL_HANDSHAKE_MAX)
			authentic(data[0] & 2, data + 2, size - 2);
		return 0;
	}
	tunnel_reader_init(&reader, TUNNEL_EXPECT_MSG2);
	fuzz_feed(&reader, data + 2, size - 2, data[1], read_msg2, NULL);
	return 0;
}
