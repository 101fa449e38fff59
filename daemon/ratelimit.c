/* Per-source token buckets. */
#include "ratelimit.h"

#include <string.h>

#include "ip_udp.h"

void ratelimit_init(struct ratelimit *rl, uint32_t per_second, uint32_t burst)
{
	memset(rl, 0, sizeof(*rl));
	random_bytes(rl->hash_key, sizeof(rl->hash_key));
	rl->per_second = per_second;
	rl->burst = burst;
}

static void source_prefix(uint8_t prefix[16], const uint8_t src[16])
{
	memcpy(prefix, src, 16);
	if (!addr_is_v4(src))
		memset(prefix + 8, 0, 8);	/* the /64 */
}

static struct ratelimit_slot *find_slot(struct ratelimit *rl,
					const uint8_t prefix[16])
{
	uint8_t h[16];
	struct ratelimit_slot *set, *oldest;

	blake2s_128_keyed(h, rl->hash_key, prefix, 16);
	set = rl->slots[(h[0] | h[1] << 8) % RATELIMIT_SETS];
	oldest = &set[0];
	for (int i = 0; i < RATELIMIT_WAYS; i++) {
		if (set[i].used && !memcmp(set[i].prefix, prefix, 16))
			return &set[i];
		if (!set[i].used || (oldest->used &&
				     set[i].updated_ms < oldest->updated_ms))
			oldest = &set[i];
	}
	/* A new source takes a free way or the least recently seen one.
	 * The evicted source starts again with a full bucket: eviction can
	 * only ever loosen a limit, never lock a source out. */
	memset(oldest, 0, sizeof(*oldest));
	memcpy(oldest->prefix, prefix, 16);
	oldest->used = true;
	oldest->millitokens = rl->burst * 1000;
	return oldest;
}

bool ratelimit_allow(struct ratelimit *rl, const uint8_t src[16], uint64_t now_ms)
{
	uint8_t prefix[16];
	struct ratelimit_slot *s;
	uint64_t refill, tokens;

	source_prefix(prefix, src);
	s = find_slot(rl, prefix);
	if (now_ms > s->updated_ms) {
		refill = (now_ms - s->updated_ms) * rl->per_second;
		tokens = s->millitokens + refill;
		s->millitokens = tokens > rl->burst * 1000ull ?
				 rl->burst * 1000 : (uint32_t)tokens;
	}
	s->updated_ms = now_ms;
	if (s->millitokens < 1000)
		return false;
	s->millitokens -= 1000;
	return true;
}
