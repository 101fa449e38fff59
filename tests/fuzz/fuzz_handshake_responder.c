/*
 * Message 1 of the tunnel handshake as postern-tunneld reads it from a new
 * connection: the framing (tunnel_reader, TUNNEL_EXPECT_MSG1) over reads
 * of any size, tunnel_server_read_hello(), and for an allow-listed key the
 * answer, tunnel_server_accept(). Bit 0 of the first byte picks a mode:
 *
 *   0  the connection's bytes as they come; the second byte sets the size
 *      of each read. Seeds: real messages 1 from tunnel_client_start().
 *   1  an authentic message 1, written here around a client hello the
 *      fuzzer gives, so that the hello parser behind the AEAD is reached.
 *      The second byte picks the writer: ALICE, MALLORY (not allowed),
 *      ALICE for another server, ALICE with another fleet's PSK.
 *
 * Invariants: a message the reader hands over has a length in range; a
 * failed read_hello says why in one of its words for a hostile message and
 * leaves the handshake wiped; an authentic message 1 gives exactly the
 * writer's key and version, or the error its length or version calls for;
 * message 2 is as long as its port list says; the handshake then completes
 * with the writer only if it holds the PSK, and the first transport
 * message opens.
 */
#include <string.h>

#include "dh_cache.h"
#include "fuzz_util.h"

static struct tunnel_reader reader;
/* The ss of the allow-listed keys, as postern-tunneld holds them. */
static struct dh_cache *dh;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_init();
	dh = dh_cache_new(&fk.server, &fuzz_knock_cfg);
	check(dh != NULL);
	return 0;
}

/* The allow-listed key's answer: message 2 (framed) and the session keys. */
static void answer(struct tunnel_handshake *hs, uint8_t out[FUZZ_FRAME_MAX],
		   size_t *len, struct tunnel_transport *t)
{
	*len = FUZZ_FRAME_MAX;
	noise_handshake_set_ephemeral(&hs->noise, fk.e_server);
	check(tunnel_server_accept(hs, fuzz_egress, FUZZ_N_EGRESS,
				   FUZZ_SERVER_TIME_MS, out, len, t) == TUNNEL_OK);
	check(*len == TUNNEL_LEN_PREFIX + TUNNEL_MSG2_MIN + 2 * FUZZ_N_EGRESS);
	check((size_t)(out[0] << 8 | out[1]) == *len - TUNNEL_LEN_PREFIX);
	check(hs->noise.failed);	/* wiped */
}

/* Mode 0: whatever arrives. */
static bool read_msg1(void *ctx, const uint8_t *msg, size_t len)
{
	struct tunnel_handshake hs;
	struct tunnel_transport t;
	uint8_t pub[KEY_LEN];
	enum tunnel_error e;

	(void)ctx;
	e = tunnel_server_read_hello(&hs, &fk.server, fk.psk, dh_cache_source(dh), msg, len, pub);
	check(tunnel_strerror(e)[0] != '\0');
	if (e != TUNNEL_OK) {
		check(e == TUNNEL_E_HANDSHAKE || e == TUNNEL_E_HELLO ||
		      e == TUNNEL_E_VERSION);
		check(hs.noise.failed);
		return false;
	}
	check(hs.client_version >= TUNNEL_VERSION);
	if (server_config_find_client(&fuzz_knock_cfg, pub)) {
		uint8_t msg2[FUZZ_FRAME_MAX];
		size_t len2;

		answer(&hs, msg2, &len2, &t);
		tunnel_transport_free(&t);
	} else {
		tunnel_handshake_free(&hs);
	}
	return false;	/* one message 1; the session reads the rest */
}

/* Mode 1: an authentic message around any client hello. */
static void authentic(uint8_t writer, const uint8_t *hello, size_t n)
{
	enum fuzz_client who = writer % 4 == 1 ? MALLORY : ALICE;
	const uint8_t *server = writer % 4 == 2 ? fk.other.pub : fk.server.pub;
	const uint8_t *psk = writer % 4 == 3 ? fk.wrong_psk : fk.psk;
	struct tunnel_handshake c, s;
	struct tunnel_transport ct, st;
	struct tunnel_server_hello sh;
	uint8_t msg[2 * FUZZ_FRAME_MAX], pub[KEY_LEN];
	size_t len = sizeof(msg);
	enum tunnel_error e, want;

	check(tunnel_client_init(&c, &fk.client[who], server, psk) == TUNNEL_OK);
	noise_handshake_set_ephemeral(&c.noise, fk.e_client);
	check(noise_handshake_write(&c.noise, msg, &len, hello, n) == NOISE_OK);
	e = tunnel_server_read_hello(&s, &fk.server, fk.psk, dh_cache_source(dh), msg, len, pub);
	if (len < TUNNEL_MSG1_LEN || len > TUNNEL_HANDSHAKE_MAX)
		want = TUNNEL_E_FRAME;
	else if (server != fk.server.pub)
		want = TUNNEL_E_HANDSHAKE;
	else if (n < TUNNEL_CLIENT_HELLO_LEN)
		want = TUNNEL_E_HELLO;
	else if (hello[0] < TUNNEL_VERSION)
		want = TUNNEL_E_VERSION;
	else
		want = TUNNEL_OK;
	check(e == want);
	if (e != TUNNEL_OK) {
		check(s.noise.failed);
		tunnel_handshake_free(&c);
		return;
	}
	check(s.client_version == hello[0]);
	check(memcmp(pub, fk.client[who].pub, KEY_LEN) == 0);
	if (!server_config_find_client(&fuzz_knock_cfg, pub)) {
		check(who == MALLORY);
		tunnel_handshake_free(&s);
		tunnel_handshake_free(&c);
		return;
	}
	answer(&s, msg, &len, &st);
	/* The reply as the client reads it: only the fleet's PSK opens it. */
	e = tunnel_client_finish(&c, msg + TUNNEL_LEN_PREFIX,
				 len - TUNNEL_LEN_PREFIX, &sh, &ct);
	check(c.noise.failed);	/* wiped */
	if (psk != fk.psk) {
		check(e == TUNNEL_E_HANDSHAKE);
		tunnel_transport_free(&st);
		return;
	}
	check(e == TUNNEL_OK && sh.n_ports == FUZZ_N_EGRESS);
	check(memcmp(ct.hash, st.hash, HASH_LEN) == 0);
	/* The first transport message is what proves the PSK to the server. */
	check(tunnel_seal(&ct, hello, 0, msg) == TUNNEL_OK);
	check(tunnel_open(&st, msg + TUNNEL_LEN_PREFIX, TAG_LEN, msg, &len) ==
	      TUNNEL_OK && len == 0);
	tunnel_transport_free(&ct);
	tunnel_transport_free(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 2 + 4 * FUZZ_FRAME_MAX)
		return 0;
	if (data[0] & 1) {
		if (size - 2 <= TUNNEL_HANDSHAKE_MAX)
			authentic(data[1], data + 2, size - 2);
		return 0;
	}
	tunnel_reader_init(&reader, TUNNEL_EXPECT_MSG1);
	fuzz_feed(&reader, data + 2, size - 2, data[1], read_msg1, NULL);
	return 0;
}
