/*
 * Per-source token buckets in a fixed table, so a flood from many addresses
 * costs a bounded amount of memory. Sans-I/O: the time is passed in.
 * An IPv6 source is limited by its /64, which is what one host usually has.
 */
#ifndef POSTERN_RATELIMIT_H
#define POSTERN_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "crypto.h"

#define RATELIMIT_WAYS 4
#define RATELIMIT_SETS 1024

struct ratelimit_slot {
	uint8_t prefix[16];
	uint64_t updated_ms;
	uint32_t millitokens;
	bool used;
};

struct ratelimit {
	uint8_t hash_key[HASH_LEN];	/* random: sources cannot aim at a set */
	uint32_t per_second;		/* refill rate */
	uint32_t burst;			/* bucket size */
	struct ratelimit_slot slots[RATELIMIT_SETS][RATELIMIT_WAYS];
};

void ratelimit_init(struct ratelimit *rl, uint32_t per_second, uint32_t burst);
/* Take one token from src's bucket; false when it is empty. */
bool ratelimit_allow(struct ratelimit *rl, const uint8_t src[16], uint64_t now_ms);

#endif
