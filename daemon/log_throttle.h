/*
 * At most one log line per subject and interval: the first event writes a
 * line at once, the ones after it within the interval are only counted,
 * and the count is written with the next line or by log_throttle_due once
 * the interval is over. A replayed knock sent a thousand times is one line
 * a minute, however many sources it comes from. Sans-I/O.
 */
#ifndef POSTERN_LOG_THROTTLE_H
#define POSTERN_LOG_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_THROTTLE_MS 60000

struct log_throttle_slot {
	uint64_t last_ms;	/* of the last line written */
	uint64_t held;		/* events since, not written */
	bool used;
};

struct log_throttle {
	struct log_throttle_slot *slots;
	size_t n;
};

bool log_throttle_init(struct log_throttle *t, size_t subjects);
void log_throttle_free(struct log_throttle *t);

/* An event of subject i at now: true if a line is to be written, with
 * *held the events counted since the last line (and then forgotten). */
bool log_throttle_event(struct log_throttle *t, size_t i, uint64_t now,
			uint64_t *held);

/* Whether subject i holds events whose interval is over: true once, with
 * *held their number, for a summary line. */
bool log_throttle_due(struct log_throttle *t, size_t i, uint64_t now,
		      uint64_t *held);

#endif
