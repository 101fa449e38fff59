/*
 * posternd's knock pipeline, sans-I/O: a packet, its source and the time go
 * in; a verdict with its reason comes out. The checks run cheapest first, so
 * garbage costs one hash and a valid knock two X25519:
 *
 *   length, version → mac1 (constant time) → per-source token bucket →
 *   Noise read → key allowed and not expired → |now − timestamp| ≤ window →
 *   timestamp newer than the key's last and than the daemon's start →
 *   target allowed
 *
 * Replay state changes only once a knock has authenticated.
 */
#ifndef POSTERN_KNOCK_VERIFY_H
#define POSTERN_KNOCK_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "knock.h"
#include "noise.h"
#include "ratelimit.h"

#define KNOCK_RATE_PER_SECOND 2
#define KNOCK_RATE_BURST 10

struct knock_verifier {
	struct noise_keypair server;
	uint8_t psk[KEY_LEN];
	struct keyed_blake2s mac1;	/* keyed with the server's mac1 key */
	uint64_t start_ms;		/* knocks made before this open nothing */
	const struct server_config *cfg;
	uint64_t *last_ms;		/* per cfg->clients[i]: last timestamp */
	struct ratelimit rl;
	uint64_t counters[KNOCK_REASONS];
};

struct knock_decision {
	const struct client_entry *client;	/* set once authenticated */
	uint8_t target[16];			/* address to open for */
	unsigned int open_seconds;
	uint64_t timestamp_ms;
};

/* The verifier keeps pointers to cfg; cfg must outlive it or a reload. */
bool knock_verifier_init(struct knock_verifier *v,
			 const struct noise_keypair *server,
			 const uint8_t psk[KEY_LEN],
			 const struct server_config *cfg, uint64_t now_ms);

/* Switch to a new client list, keeping each remaining key's replay state.
 * The old config must still be alive during the call. */
bool knock_verifier_reload(struct knock_verifier *v,
			   const struct server_config *cfg);

enum knock_reason knock_verify(struct knock_verifier *v, const uint8_t *pkt,
			       size_t len, const uint8_t src[16],
			       uint64_t now_ms, struct knock_decision *d);

void knock_verifier_free(struct knock_verifier *v);

#endif
