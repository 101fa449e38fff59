/*
 * Reaching a server's tunnel port through its gate, without I/O: fed the
 * time and what became of each connect attempt, it says what to do next
 * (knock, start or abandon a connect, done) and when to ask again.
 * postern knock --wait, pipe, forward and the pool all drive one.
 *
 * The strategy, for anything from a LAN to a second of round trip with
 * loss on the way:
 *
 * - Knock at once, with the first connect in flight, unless the gate is
 *   believed open (a knock of ours opened it a moment ago): then connect
 *   first and knock only if no answer comes within probe_ms. A closed
 *   gate drops the SYN without a word, so waiting to find out costs every
 *   setup that time.
 * - After each knock, new connect attempts at 0, 1, 2, 4, … 256 ms: the
 *   first SYN may beat the server's set update, and TCP would send it
 *   again only after a second. Every attempt is kept until one connects
 *   or time is up, since on a slow link any of them may be the one that
 *   is answered; at most GATE_ATTEMPTS are in flight, and a new one then
 *   takes the place of the oldest.
 * - While no attempt connected, the knock is sent again 1, 2, 4, 4, … s
 *   after the last: a lost knock costs a second, not the setup.
 * - A refused connect (a TCP reset) means the gate let us through and
 *   nothing listens: that is the answer at once. Anything else is given
 *   total_ms before it is called a failure.
 */
#ifndef POSTERN_GATE_H
#define POSTERN_GATE_H

#include <stdbool.h>
#include <stdint.h>

#define GATE_ATTEMPTS 10		/* connects in flight at most */
#define GATE_BURST 10			/* new attempts after each knock */
#define GATE_REKNOCK_MS 1000		/* first re-knock, then doubled … */
#define GATE_REKNOCK_MAX_MS 4000	/* … up to this */
#define GATE_RETRY_MS 250		/* after errors, with nothing in flight */
#define GATE_NEVER UINT64_MAX

struct gate;

struct gate_params {
	uint64_t total_ms;		/* give up this long after the start
					 * (the CLI's connect_timeout) */
	uint64_t probe_ms;		/* 0: knock at once; else the gate is
					 * believed open: connect, and knock
					 * if no answer within this */
};

enum gate_do {
	GATE_WAIT,		/* nothing until deadline or an event */
	GATE_KNOCK,		/* send a knock */
	GATE_CONNECT,		/* start connect attempt `attempt` */
	GATE_ABANDON,		/* close attempt `attempt` */
	GATE_OPEN,		/* attempt `attempt` connected: use it */
	GATE_FAILED,		/* give up, for `failure` */
};

enum gate_failure {
	GATE_REFUSED,		/* through the gate, nothing listens */
	GATE_TIMED_OUT,		/* no attempt connected in total_ms */
};

struct gate_action {
	enum gate_do what;
	uint32_t attempt;
	uint64_t deadline;		/* GATE_WAIT: ask again by then */
	enum gate_failure failure;
};

/* NULL when out of memory. Times are milliseconds on one monotonic
 * clock, the caller's. */
struct gate *gate_new(const struct gate_params *p, uint64_t now_ms);
void gate_free(struct gate *g);

/* The next thing to do; call until GATE_WAIT, then again at its
 * deadline or after an event. After GATE_OPEN or GATE_FAILED it only
 * says GATE_WAIT, with GATE_NEVER. */
struct gate_action gate_next(struct gate *g, uint64_t now_ms);

/* Attempt `attempt` connected. True: it is the one (GATE_OPEN follows);
 * false: close it, another was first or it was abandoned. */
bool gate_connected(struct gate *g, uint32_t attempt, uint64_t now_ms);
/* Attempt `attempt` failed with errno err (ECONNREFUSED: a reset). */
void gate_connect_failed(struct gate *g, uint32_t attempt, int err,
			 uint64_t now_ms);

/* For messages and logs. */
unsigned int gate_knocks(const struct gate *g);
/* The last error other than ECONNREFUSED an attempt ended with, or 0. */
int gate_last_error(const struct gate *g);
/* Time from the start of the attempt that connected to its connect. */
uint64_t gate_connect_ms(const struct gate *g);

#endif
