/*
 * posternd's knock pipeline, sans-I/O: a packet, its source and the time go
 * in; a verdict with its reason comes out. The checks run cheapest first, so
 * garbage costs one hash and a valid knock two X25519:
 *
 *   whole datagram captured → length, version → mac1 (constant time) →
 *   per-source token bucket → Noise read → key allowed and not expired →
 *   |now − timestamp| ≤ window → not a replay (replay.h), and not made
 *   before the daemon started unless the last run's replay state was
 *   loaded → target allowed
 *
 * Replay state changes only once a knock has authenticated.
 */
#ifndef POSTERN_KNOCK_VERIFY_H
#define POSTERN_KNOCK_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "ip_udp.h"
#include "knock.h"
#include "noise.h"
#include "ratelimit.h"
#include "replay.h"
#include "secrets.h"

/* Both clocks, read together. Knocks carry wall-clock timestamps; the
 * rate limiter and the start floor run on the clock that never steps, so
 * that setting the wall clock back or forward locks no one out. */
struct knock_clock {
	uint64_t wall_ms;	/* CLOCK_REALTIME, Unix ms */
	uint64_t boot_ms;	/* CLOCK_BOOTTIME */
};

/* The secrets of a verifier, in memory of their own (secmem.h). */
struct knock_keys {
	struct secrets s;		/* the server's key pair and the PSK */
	struct keyed_blake2s mac1;	/* keyed with the server's mac1 key */
};

struct knock_verifier {
	struct knock_keys *keys;
	uint64_t start_boot_ms;		/* when the daemon started */
	bool history;			/* the last run's replay state is loaded */
	const struct server_config *cfg;
	struct replay_table replay;	/* per cfg->clients[i] */
	struct ratelimit rl;
	uint64_t counters[KNOCK_REASONS];
};

struct knock_decision {
	bool authenticated;			/* the Noise read succeeded */
	uint8_t key[KEY_LEN];			/* then: the sender's public key */
	const struct client_entry *client;	/* and its client, if listed */
	struct ip_addr target;			/* address to open for */
	unsigned int open_seconds;
	uint64_t timestamp_ms;
};

/* The verifier keeps pointers to cfg; cfg must outlive it or a reload. */
bool knock_verifier_init(struct knock_verifier *v,
			 const struct noise_keypair *server,
			 const uint8_t psk[KEY_LEN],
			 const struct server_config *cfg,
			 const struct knock_clock *now);

/* Switch to a new configuration, server key and PSK, keeping each
 * remaining client key's replay state; knocks made for the old key or PSK
 * fail from now on. All or nothing: false when out of memory, and v still
 * uses the old ones. The old config must be alive during the call. */
bool knock_verifier_reload(struct knock_verifier *v,
			   const struct server_config *cfg,
			   const struct noise_keypair *server,
			   const uint8_t psk[KEY_LEN]);

/* The wall-clock time the daemon started, as the wall clock reads now:
 * it follows the clock when it is stepped. */
uint64_t knock_verifier_start_floor(const struct knock_verifier *v,
				    const struct knock_clock *now);

enum knock_reason knock_verify(struct knock_verifier *v,
			       const struct knock_packet *pkt,
			       const struct knock_clock *now,
			       struct knock_decision *d);

void knock_verifier_free(struct knock_verifier *v);

#endif
