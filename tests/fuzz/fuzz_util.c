/* Set-up shared by the fuzz targets and make_corpus; see fuzz_util.h. */
#include "fuzz_util.h"

#include <string.h>

struct fuzz_keys fk;

const uint16_t fuzz_egress[FUZZ_N_EGRESS] = { 22, 8443 };

static void keypair(struct noise_keypair *kp, uint8_t fill)
{
	uint8_t priv[KEY_LEN];

	memset(priv, fill, sizeof(priv));
	check(noise_keypair_init(kp, priv));
}

void fuzz_init(void)
{
	static bool done;

	if (done)
		return;
	done = true;
	check(crypto_init());
	keypair(&fk.server, 0x11);
	keypair(&fk.other, 0x12);
	for (int i = 0; i < FUZZ_CLIENTS; i++)
		keypair(&fk.client[i], (uint8_t)(0x21 + i));
	memset(fk.psk, 0x33, KEY_LEN);
	memset(fk.wrong_psk, 0x34, KEY_LEN);
	memset(fk.e_client, 0x44, KEY_LEN);
	memset(fk.e_server, 0x55, KEY_LEN);
	for (int i = ALICE; i < MALLORY; i++)
		memcpy(fuzz_knock_cfg.clients[i].public_key, fk.client[i].pub,
		       KEY_LEN);
}

uint8_t fz_u8(struct fuzz_in *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

uint16_t fz_u16(struct fuzz_in *in)
{
	uint16_t hi = fz_u8(in);

	return (uint16_t)(hi << 8 | fz_u8(in));
}

size_t fz_take(struct fuzz_in *in, size_t want, const uint8_t **p)
{
	size_t n = want < in->n ? want : in->n;

	*p = in->p;
	in->p += n;
	in->n -= n;
	return n;
}

/* Tunnel */

void fuzz_tunnel_init(struct fuzz_tunnel *t)
{
	struct tunnel_handshake c, s;
	struct tunnel_server_hello hello;
	uint8_t pub[KEY_LEN];

	fuzz_init();
	memset(t, 0, sizeof(*t));
	check(tunnel_client_init(&t->client, &fk.client[ALICE], fk.server.pub,
				 fk.psk) == TUNNEL_OK);
	noise_handshake_set_ephemeral(&t->client.noise, fk.e_client);
	t->msg1_len = sizeof(t->msg1);
	check(tunnel_client_start(&t->client, t->msg1, &t->msg1_len) == TUNNEL_OK);
	check(tunnel_server_read_hello(&t->server, &fk.server, fk.psk, NULL,
				       t->msg1 + TUNNEL_LEN_PREFIX,
				       t->msg1_len - TUNNEL_LEN_PREFIX,
				       pub) == TUNNEL_OK);
	check(memcmp(pub, fk.client[ALICE].pub, KEY_LEN) == 0);
	noise_handshake_set_ephemeral(&t->server.noise, fk.e_server);
	c = t->client;
	s = t->server;
	t->msg2_len = sizeof(t->msg2);
	check(tunnel_server_accept(&s, fuzz_egress, FUZZ_N_EGRESS,
				   FUZZ_SERVER_TIME_MS, t->msg2, &t->msg2_len,
				   &t->server_t) == TUNNEL_OK);
	check(tunnel_client_finish(&c, t->msg2 + TUNNEL_LEN_PREFIX,
				   t->msg2_len - TUNNEL_LEN_PREFIX, &hello,
				   &t->client_t) == TUNNEL_OK);
}

enum tunnel_error fuzz_feed(struct tunnel_reader *r, const uint8_t *data,
			    size_t size, uint8_t cut, fuzz_msg_fn fn, void *ctx)
{
	const uint8_t *msg;
	size_t len;
	enum tunnel_error e = TUNNEL_AGAIN;

	while (size) {
		size_t piece = cut == 255 || cut + 1u > size ? size : cut + 1u;
		size_t left = size - piece;

		while ((e = tunnel_read(r, &data, &piece, &msg, &len)) ==
		       TUNNEL_OK) {
			check(len >= r->min && len <= r->max);
			if (!fn(ctx, msg, len))
				return e;
		}
		if (e != TUNNEL_AGAIN) {
			check(e == TUNNEL_E_FRAME && r->failed);
			return e;
		}
		check(piece == 0);	/* AGAIN: every byte taken */
		size = left;
	}
	return e;
}

/* Knock */

static uint16_t alice_open[] = { 22, 8443 }, bob_open[] = { 8443 },
		carol_open[] = { 22 };
static struct client_entry knock_clients[MALLORY] = {
	[ALICE] = { .name = "alice", .open = alice_open, .n_open = 2 },
	[BOB] = { .name = "bob", .open = bob_open, .n_open = 1,
		  .expires_at = FUZZ_BOB_EXPIRES },
	[CAROL] = { .name = "carol", .open = carol_open, .n_open = 1,
		    .expires_at = FUZZ_NOW_MS / 1000 - 86400 },
};

struct server_config fuzz_knock_cfg = {
	.knock = { .window = 30, .open_seconds = 30, .max_open_seconds = 300,
		   .rate = 2, .burst = 10, .rate_sources = 64, .replay_entries = 16 },
	.clients = knock_clients,
	.n_clients = MALLORY,
};

void fuzz_knock_mac1(uint8_t pkt[KNOCK_LEN], const uint8_t server_pub[KEY_LEN],
		     const uint8_t psk[KEY_LEN])
{
	uint8_t key[HASH_LEN];

	knock_mac1_key(key, server_pub, psk);
	blake2s_128_keyed(pkt + KNOCK_MAC_OFFSET, key, pkt, KNOCK_MAC_OFFSET);
}

bool fuzz_knock_build(uint8_t out[KNOCK_LEN], const struct noise_keypair *client,
		      const uint8_t server_pub[KEY_LEN], const uint8_t psk[KEY_LEN],
		      const uint8_t payload[KNOCK_PAYLOAD_LEN],
		      const uint8_t *e_priv)
{
	struct noise_handshake hs;
	size_t n = KNOCK_NOISE_LEN;
	bool ok;

	out[0] = KNOCK_VERSION;
	ok = noise_handshake_init(&hs, KNOCK_PROTOCOL, NOISE_INITIATOR,
				  KNOCK_PROLOGUE, sizeof(KNOCK_PROLOGUE) - 1,
				  client, server_pub, psk) == NOISE_OK;
	if (ok && e_priv)
		noise_handshake_set_ephemeral(&hs, e_priv);
	ok = ok && noise_handshake_write(&hs, out + 1, &n, payload,
					 KNOCK_PAYLOAD_LEN) == NOISE_OK &&
	     n == KNOCK_NOISE_LEN;
	noise_handshake_wipe(&hs);
	if (ok)
		fuzz_knock_mac1(out, server_pub, psk);
	return ok;
}
