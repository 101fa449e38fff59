/* One log line per subject and minute: see log_throttle.h. */
#include "log_throttle.h"

#include <stdlib.h>
#include <string.h>

bool log_throttle_init(struct log_throttle *t, size_t subjects)
{
	t->slots = calloc(subjects ? subjects : 1, sizeof(*t->slots));
	t->n = subjects;
	return t->slots != NULL;
}

void log_throttle_free(struct log_throttle *t)
{
	free(t->slots);
	memset(t, 0, sizeof(*t));
}

bool log_throttle_burst(struct log_throttle *t, size_t i, uint64_t now,
			unsigned int burst, uint64_t *held)
{
	struct log_throttle_slot *s = &t->slots[i];

	if (s->used && now - s->last_ms < LOG_THROTTLE_MS) {
		if (s->lines < burst) {
			s->lines++;
			*held = 0;
			return true;
		}
		s->held++;
		return false;
	}
	*held = s->held;
	s->held = 0;
	s->last_ms = now;
	s->lines = 1;
	s->used = true;
	return true;
}

bool log_throttle_event(struct log_throttle *t, size_t i, uint64_t now,
			uint64_t *held)
{
	return log_throttle_burst(t, i, now, 1, held);
}

bool log_throttle_spent(const struct log_throttle *t, size_t i,
			unsigned int burst)
{
	return t->slots[i].lines >= burst;
}

bool log_throttle_due(struct log_throttle *t, size_t i, uint64_t now,
		      uint64_t *held)
{
	struct log_throttle_slot *s = &t->slots[i];

	if (!s->held || now - s->last_ms < LOG_THROTTLE_MS)
		return false;
	*held = s->held;
	s->held = 0;
	s->last_ms = now;
	s->lines = 1;
	return true;
}
