/*
 * Knock protocol v1: one 145-byte UDP payload.
 *
 *   0    1    version = 1
 *   1    128  Noise_Xpsk1_25519_ChaChaPoly_BLAKE2s message 1, prologue
 *             "postern/knock/1": e (32) ‖ enc s (48) ‖ enc payload (48)
 *   129  16   mac1 = BLAKE2s-128 keyed with BLAKE2s-256("postern/mac1" ‖
 *             server public key ‖ PSK), over bytes 0..128
 *
 * Payload (32 bytes, big-endian): timestamp_ms u64 ‖ target [16] ‖
 * open_seconds u16 ‖ flags u16 ‖ reserved [4].
 *
 * Sans-I/O: bytes and the time in, verdicts out.
 */
#ifndef POSTERN_KNOCK_H
#define POSTERN_KNOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "ip_udp.h"
#include "noise.h"

#define KNOCK_LEN 145
#define KNOCK_VERSION 1
#define KNOCK_NOISE_LEN 128
#define KNOCK_MAC_OFFSET 129
#define KNOCK_MAC_LEN 16
#define KNOCK_PAYLOAD_LEN 32
#define KNOCK_PROLOGUE "postern/knock/1"
#define KNOCK_PROTOCOL "Noise_Xpsk1_25519_ChaChaPoly_BLAKE2s"
#define KNOCK_UDP_LEN (8 + KNOCK_LEN)	/* what nft's "udp length" sees */

struct knock_payload {
	uint64_t timestamp_ms;	/* Unix time of the knock, in ms */
	uint8_t target[16];	/* IPv6 or ::ffff:a.b.c.d; zero: the source */
	uint16_t open_seconds;	/* 0: the server's default */
	uint16_t flags;		/* 0 in v1 */
};

/* A datagram as the server received it: perhaps cut short by the queue. */
struct knock_packet {
	struct ip_addr src;		/* the packet's source and family */
	size_t len;			/* the UDP payload's true length */
	size_t captured;		/* bytes of it the queue copied */
	uint8_t data[KNOCK_LEN];	/* the first of them; the rest is zero */
};

/* Why a knock was refused, cheapest check first. */
enum knock_reason {
	KNOCK_OK = 0,
	KNOCK_TRUNCATED,	/* the queue did not copy the whole datagram */
	KNOCK_BAD_LENGTH,
	KNOCK_BAD_VERSION,
	KNOCK_BAD_MAC1,
	KNOCK_RATE_LIMITED,
	KNOCK_BAD_NOISE,	/* handshake failed: wrong server, key or PSK */
	KNOCK_BAD_PAYLOAD,	/* authenticated, but flags/reserved not zero */
	KNOCK_UNKNOWN_KEY,
	KNOCK_EXPIRED,
	KNOCK_SKEW,
	KNOCK_REPLAY,
	KNOCK_TARGET_REFUSED,
	KNOCK_REASONS		/* count */
};

const char *knock_reason_name(enum knock_reason r);

/* The mac1 key of a server in a fleet:
 * BLAKE2s-256("postern/mac1" ‖ server_pub ‖ psk). */
void knock_mac1_key(uint8_t key[HASH_LEN], const uint8_t server_pub[KEY_LEN],
		    const uint8_t psk[KEY_LEN]);

/* Client: build a knock for server_pub. */
bool knock_build(uint8_t out[KNOCK_LEN], const struct noise_keypair *client,
		 const uint8_t server_pub[KEY_LEN], const uint8_t psk[KEY_LEN],
		 const struct knock_payload *p);

/* Server, step 1, no public-key work: length, version and mac1 (constant
 * time). */
enum knock_reason knock_check_outer(struct keyed_blake2s *mac1,
				    const uint8_t *pkt, size_t len);

/* Server, step 2: the Noise read (two X25519, or one when ss gives the
 * client's "ss"; ss may be NULL). On success gives the client's static
 * public key and the payload. */
enum knock_reason knock_open(const struct noise_keypair *server,
			     const uint8_t psk[KEY_LEN],
			     const struct noise_ss_source *ss,
			     const uint8_t pkt[KNOCK_LEN],
			     uint8_t client_pub[KEY_LEN],
			     struct knock_payload *p);

void knock_payload_encode(uint8_t out[KNOCK_PAYLOAD_LEN],
			  const struct knock_payload *p);
/* False when flags or reserved bytes are not zero. */
bool knock_payload_decode(struct knock_payload *p,
			  const uint8_t in[KNOCK_PAYLOAD_LEN]);

#endif
