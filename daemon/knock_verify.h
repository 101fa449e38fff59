/*
 * posternd's knock pipeline, sans-I/O: a packet, its source and the time go
 * in; a verdict with its reason comes out. The checks run cheapest first, so
 * garbage costs one hash and a valid knock one X25519 (the "ss" of each
 * listed client is computed at its first knock and kept, dh_cache.h):
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
#include "dh_cache.h"
#include "ip_udp.h"
#include "knock.h"
#include "noise.h"
#include "ratelimit.h"
#include "replay.h"
#include "replay_file.h"
#include "secrets.h"

/* Knocks accepted lately, by their mac1 (a keyed hash of all the rest of
 * the packet): a byte-for-byte replay is known from it before it takes a
 * token or a Noise read. Direct-mapped: a slot taken by a newer knock only
 * sends a replay the long way, to the exact check. */
#define KNOCK_RECENT_SLOTS 4096

struct knock_recent {
	uint8_t mac1[KNOCK_MAC_LEN];
	uint32_t client;		/* index + 1 in the config; 0: empty */
};

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
	struct dh_cache *dh;		/* DH(server, client) of cfg's clients */
};

struct knock_verifier {
	struct knock_keys *keys;
	uint64_t start_boot_ms;		/* when the daemon started */
	bool history;			/* the last run's replay state is loaded */
	const struct server_config *cfg;
	struct replay_table replay;	/* per cfg->clients[i] */
	struct knock_recent *recent;	/* KNOCK_RECENT_SLOTS */
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
 * remaining client key's replay state (and a removed key's, in case it
 * comes back); knocks made for the old key or PSK fail from now on. A
 * window that grows raises the floor for every key, as knocks forgotten
 * after two of the old windows may be inside the new one. All or nothing:
 * false when out of memory, and v still uses the old ones. The old config
 * must be alive during the call. */
bool knock_verifier_reload(struct knock_verifier *v,
			   const struct server_config *cfg,
			   const struct noise_keypair *server,
			   const uint8_t psk[KEY_LEN],
			   const struct knock_clock *now);

/* What the state file must say besides the knocks. A run that started
 * without the last run's state refuses knocks made before it started:
 * its file must tell the next run so for two windows, or that run would
 * accept again what the lost run accepted. */
void knock_verifier_file_header(const struct knock_verifier *v,
				const struct knock_clock *now,
				struct replay_header *h);

/* The header of a state file just loaded: its floor (never above the
 * present, in case the clock went back since) and, if the window grew
 * since it was written, a floor for the knocks forgotten under the old
 * window. */
void knock_verifier_file_loaded(struct knock_verifier *v,
				const struct replay_header *h,
				const struct knock_clock *now);

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
