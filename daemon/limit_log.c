/*
 * Log lines for events a peer can repeat at will (caps hit, handshakes
 * left unconfirmed): at most one a minute per reason and source, the
 * next one saying how many were not logged. The counters in STATUS= count
 * every one; this only keeps a flood from flooding the journal.
 */
#include <string.h>

#include "tunneld.h"

#define LIMIT_LOG_SLOTS 64
#define LIMIT_LOG_INTERVAL_MS 60000

struct slot {
	const char *reason;		/* a string constant: compared by address */
	struct source_key src;
	uint64_t last_ms;
	uint64_t suppressed;
	bool used;
};

static struct slot slots[LIMIT_LOG_SLOTS];

static struct slot *find(const char *reason, const struct source_key *src)
{
	struct slot *oldest = &slots[0];

	for (size_t i = 0; i < LIMIT_LOG_SLOTS; i++) {
		struct slot *s = &slots[i];

		if (s->used && s->reason == reason &&
		    memcmp(&s->src, src, sizeof(*src)) == 0)
			return s;
		if (!s->used || (oldest->used && s->last_ms < oldest->last_ms))
			oldest = s;
	}
	/* A source not seen lately takes the slot unused the longest: what
	 * it had not logged is lost to the journal, not to the counters. */
	memset(oldest, 0, sizeof(*oldest));
	oldest->reason = reason;
	oldest->src = *src;
	return oldest;
}

bool limit_log_allow(const char *reason, const struct source_key *src,
		     uint64_t now_ms, uint64_t *suppressed)
{
	struct slot *s = find(reason, src);

	if (s->used && now_ms - s->last_ms < LIMIT_LOG_INTERVAL_MS) {
		s->suppressed++;
		return false;
	}
	*suppressed = s->suppressed;
	s->used = true;
	s->last_ms = now_ms;
	s->suppressed = 0;
	return true;
}
