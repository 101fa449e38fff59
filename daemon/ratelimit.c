/* Per-source token buckets. */
#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

bool ratelimit_init(struct ratelimit *rl, uint32_t per_second, uint32_t burst,
		    size_t sources)
{
	size_t sets = 1;

	memset(rl, 0, sizeof(*rl));
	while (sets * RATELIMIT_WAYS < sources)
		sets *= 2;
	rl->slots = calloc(sets, sizeof(*rl->slots));
	if (!rl->slots)
		return false;
	random_bytes(rl->hash_key, sizeof(rl->hash_key));
	rl->n_sets = sets;
	rl->per_second = per_second;
	rl->burst = burst;
	return true;
}

void ratelimit_free(struct ratelimit *rl)
{
	free(rl->slots);
	memset(rl, 0, sizeof(*rl));
}

size_t ratelimit_capacity(const struct ratelimit *rl)
{
	return rl->n_sets * RATELIMIT_WAYS;
}

/* What one bucket covers: the address, or an IPv6 address's /64. */
static void source_prefix(struct ip_addr *prefix, const struct ip_addr *src)
{
	*prefix = *src;
	if (src->v6)
		memset(prefix->b + 8, 0, 8);
}

static bool same_prefix(const struct ip_addr *a, const struct ip_addr *b)
{
	return a->v6 == b->v6 && !memcmp(a->b, b->b, sizeof(a->b));
}

static struct ratelimit_slot *find_slot(struct ratelimit *rl,
					const struct ip_addr *prefix)
{
	uint8_t in[17], h[16];
	struct ratelimit_slot *set, *oldest;

	in[0] = prefix->v6;
	memcpy(in + 1, prefix->b, 16);
	blake2s_128_keyed(h, rl->hash_key, in, sizeof(in));
	set = rl->slots[(h[0] | h[1] << 8 | (size_t)h[2] << 16) & (rl->n_sets - 1)];
	oldest = &set[0];
	for (int i = 0; i < RATELIMIT_WAYS; i++) {
		if (set[i].used && same_prefix(&set[i].prefix, prefix))
			return &set[i];
		if (!set[i].used || (oldest->used &&
				     set[i].updated_ms < oldest->updated_ms))
			oldest = &set[i];
	}
	/* A new source takes a free way or the least recently seen one.
	 * The evicted source starts again with a full bucket: eviction can
	 * only ever loosen a limit, never lock a source out. */
	memset(oldest, 0, sizeof(*oldest));
	oldest->prefix = *prefix;
	oldest->used = true;
	oldest->millitokens = rl->burst * 1000;
	return oldest;
}

bool ratelimit_allow(struct ratelimit *rl, const struct ip_addr *src,
		     uint64_t now_ms)
{
	struct ip_addr prefix;
	struct ratelimit_slot *s;
	uint64_t refill, tokens;

	source_prefix(&prefix, src);
	s = find_slot(rl, &prefix);
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
