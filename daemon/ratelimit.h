/*
 * Per-source token buckets in a fixed table, so a flood from many addresses
 * costs a bounded amount of memory (knock.rate_sources entries). Sans-I/O:
 * the time is passed in, from a clock that never steps (CLOCK_BOOTTIME), so
 * a wall clock set back cannot leave a bucket unfilled.
 * An IPv6 source is limited by its /64, which is what one host usually has.
 */
#ifndef POSTERN_RATELIMIT_H
#define POSTERN_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"
#include "ip_udp.h"

#define RATELIMIT_WAYS 4

struct ratelimit_slot {
	struct ip_addr prefix;
	uint64_t updated_ms;
	uint32_t millitokens;
	bool used;
};

struct ratelimit {
	uint8_t hash_key[HASH_LEN];	/* random: sources cannot aim at a set */
	uint32_t per_second;		/* refill rate */
	uint32_t burst;			/* bucket size */
	size_t n_sets;			/* a power of two */
	struct ratelimit_slot (*slots)[RATELIMIT_WAYS];
};

/* A table for at least `sources` sources (rounded up to a power of two
 * times RATELIMIT_WAYS). False when out of memory. */
bool ratelimit_init(struct ratelimit *rl, uint32_t per_second, uint32_t burst,
		    size_t sources);
void ratelimit_free(struct ratelimit *rl);
/* Entries the table holds. */
size_t ratelimit_capacity(const struct ratelimit *rl);
/* Take one token from src's bucket; false when it is empty. */
bool ratelimit_allow(struct ratelimit *rl, const struct ip_addr *src,
		     uint64_t now_ms);

#endif
