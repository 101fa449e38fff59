/*
 * At most one log line (or a burst of them) per subject and interval: the
 * first event writes a line at once, the ones after it within the
 * interval are only counted, and the count is written with the next line
 * or by log_throttle_due once the interval is over. A replayed knock sent
 * a thousand times is one line a minute, however many sources it comes
 * from. Sans-I/O.
 */
#ifndef POSTERN_LOG_THROTTLE_H
#define POSTERN_LOG_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOG_THROTTLE_MS 60000

struct log_throttle_slot {
	uint64_t last_ms;	/* the interval's first line */
	uint64_t held;		/* events since, not written */
	unsigned int lines;	/* written in the interval */
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
/* The same with up to burst lines per interval (log_throttle_event: 1);
 * *held is 0 but on the interval's first line. */
bool log_throttle_burst(struct log_throttle *t, size_t i, uint64_t now,
			unsigned int burst, uint64_t *held);
/* After a line of subject i: it was the last its interval allows. */
bool log_throttle_spent(const struct log_throttle *t, size_t i,
			unsigned int burst);

/* Whether subject i holds events whose interval is over: true once, with
 * *held their number, for a summary line (which starts a new interval).
 * now = UINT64_MAX takes what is held at once: for a subject that goes. */
bool log_throttle_due(struct log_throttle *t, size_t i, uint64_t now,
		      uint64_t *held);

#endif
