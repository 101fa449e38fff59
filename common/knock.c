/* Knock protocol v1: building and opening the 145-byte knock. */
#include "knock.h"

#include <string.h>

#include "bytes.h"
#include "noise.h"

static const char *const reason_names[KNOCK_REASONS] = {
	[KNOCK_OK] = "ok",
	[KNOCK_TRUNCATED] = "truncated",
	[KNOCK_BAD_LENGTH] = "bad_length",
	[KNOCK_BAD_VERSION] = "bad_version",
	[KNOCK_BAD_MAC1] = "bad_mac1",
	[KNOCK_RATE_LIMITED] = "rate_limited",
	[KNOCK_BAD_NOISE] = "bad_noise",
	[KNOCK_BAD_PAYLOAD] = "bad_payload",
	[KNOCK_UNKNOWN_KEY] = "unknown_key",
	[KNOCK_EXPIRED] = "expired",
	[KNOCK_SKEW] = "clock_skew",
	[KNOCK_REPLAY] = "replay",
	[KNOCK_TARGET_REFUSED] = "target_refused",
};

const char *knock_reason_name(enum knock_reason r)
{
	return (unsigned int)r < KNOCK_REASONS ? reason_names[r] : "unknown";
}

void knock_payload_encode(uint8_t out[KNOCK_PAYLOAD_LEN],
			  const struct knock_payload *p)
{
	put_be64(out, p->timestamp_ms);
	memcpy(out + 8, p->target, 16);
	put_be16(out + 24, p->open_seconds);
	put_be16(out + 26, p->flags);
	memset(out + 28, 0, 4);
}

bool knock_payload_decode(struct knock_payload *p,
			  const uint8_t in[KNOCK_PAYLOAD_LEN])
{
	p->timestamp_ms = get_be64(in);
	memcpy(p->target, in + 8, 16);
	p->open_seconds = get_be16(in + 24);
	p->flags = get_be16(in + 26);
	/* v1 defines no flag: a knock that sets one expects a behaviour this
	 * server does not have, so it is refused rather than half-obeyed. */
	return p->flags == 0 && is_zero_ct(in + 28, 4);
}

void knock_mac1_key(uint8_t key[HASH_LEN], const uint8_t server_pub[KEY_LEN],
		    const uint8_t psk[KEY_LEN])
{
	static const char label[] = "postern/mac1";
	uint8_t in[KEY_LEN * 2];

	memcpy(in, server_pub, KEY_LEN);
	memcpy(in + KEY_LEN, psk, KEY_LEN);
	blake2s(key, label, sizeof(label) - 1, in, sizeof(in));
	wipe(in, sizeof(in));
}

bool knock_build(uint8_t out[KNOCK_LEN], const struct noise_keypair *client,
		 const uint8_t server_pub[KEY_LEN], const uint8_t psk[KEY_LEN],
		 const struct knock_payload *p)
{
	struct noise_handshake hs;
	uint8_t payload[KNOCK_PAYLOAD_LEN], mac1_key[HASH_LEN];
	size_t n = KNOCK_NOISE_LEN;
	bool ok;

	knock_payload_encode(payload, p);
	out[0] = KNOCK_VERSION;
	ok = noise_handshake_init(&hs, KNOCK_PROTOCOL, NOISE_INITIATOR,
				  KNOCK_PROLOGUE, sizeof(KNOCK_PROLOGUE) - 1,
				  client, server_pub, psk) == NOISE_OK &&
	     noise_handshake_write(&hs, out + 1, &n, payload,
				   sizeof(payload)) == NOISE_OK &&
	     n == KNOCK_NOISE_LEN;
	noise_handshake_wipe(&hs);
	wipe(payload, sizeof(payload));
	if (!ok)
		return false;
	knock_mac1_key(mac1_key, server_pub, psk);
	blake2s_128_keyed(out + KNOCK_MAC_OFFSET, mac1_key, out, KNOCK_MAC_OFFSET);
	wipe(mac1_key, sizeof(mac1_key));
	return true;
}

enum knock_reason knock_check_outer(struct keyed_blake2s *mac1_ctx,
				    const uint8_t *pkt, size_t len)
{
	uint8_t mac1[KNOCK_MAC_LEN];

	if (len != KNOCK_LEN)
		return KNOCK_BAD_LENGTH;
	if (pkt[0] != KNOCK_VERSION)
		return KNOCK_BAD_VERSION;
	keyed_blake2s_128(mac1_ctx, mac1, pkt, KNOCK_MAC_OFFSET);
	if (!equal_ct(mac1, pkt + KNOCK_MAC_OFFSET, KNOCK_MAC_LEN))
		return KNOCK_BAD_MAC1;
	return KNOCK_OK;
}

enum knock_reason knock_open(const struct noise_keypair *server,
			     const uint8_t psk[KEY_LEN],
			     const struct noise_ss_source *ss,
			     const uint8_t pkt[KNOCK_LEN],
			     uint8_t client_pub[KEY_LEN],
			     struct knock_payload *p)
{
	struct noise_handshake hs;
	uint8_t payload[KNOCK_NOISE_LEN];
	size_t n = sizeof(payload);
	enum knock_reason r = KNOCK_BAD_NOISE;

	if (noise_handshake_init(&hs, KNOCK_PROTOCOL, NOISE_RESPONDER,
				 KNOCK_PROLOGUE, sizeof(KNOCK_PROLOGUE) - 1,
				 server, NULL, psk) != NOISE_OK)
		return r;
	/* Xpsk1 message 1 is e, es, s, ss, psk: es is new in every knock,
	 * ss is the same for every knock of a client. */
	if (ss)
		noise_handshake_set_ss_lookup(&hs, ss->fn, ss->ctx);
	if (noise_handshake_read(&hs, payload, &n, pkt + 1,
				 KNOCK_NOISE_LEN) == NOISE_OK &&
	    n == KNOCK_PAYLOAD_LEN) {
		memcpy(client_pub, hs.rs, KEY_LEN);
		r = knock_payload_decode(p, payload) ? KNOCK_OK : KNOCK_BAD_PAYLOAD;
	}
	noise_handshake_wipe(&hs);
	wipe(payload, sizeof(payload));
	return r;
}
