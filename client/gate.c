/* Reaching a tunnel port through the gate: the state machine of gate.h. */
#include "gate.h"

#include <errno.h>
#include <stdlib.h>

enum gate_state {
	PROBING,		/* believed open: one connect, no knock yet */
	KNOCKING,		/* knocked: attempts in bursts, re-knocks */
	OPENING,		/* one connected: abandon the rest, then open */
	ENDING,			/* refused or timed out: abandon, then fail */
	DONE,
};

struct attempt {
	uint32_t id;
	uint64_t started_ms;
	bool live;
};

struct gate {
	struct gate_params p;
	enum gate_state state;
	uint64_t start_ms, probe_end_ms;
	uint64_t knock_ms, next_knock_ms;	/* the last knock, the next */
	uint64_t reknock_ms;			/* the interval after the next */
	uint64_t next_attempt_ms;
	unsigned int knocks, burst;		/* burst: attempts since knock_ms */
	struct attempt att[GATE_ATTEMPTS];
	uint32_t next_id, open_id;
	uint64_t connect_ms;
	enum gate_failure failure;
	int last_error;
};

struct gate *gate_new(const struct gate_params *p, uint64_t now_ms)
{
	struct gate *g = calloc(1, sizeof(*g));

	if (!g)
		return NULL;
	g->p = *p;
	g->start_ms = g->knock_ms = now_ms;
	g->next_attempt_ms = now_ms;
	g->reknock_ms = GATE_REKNOCK_MS;
	if (p->probe_ms) {
		g->state = PROBING;
		g->probe_end_ms = now_ms + p->probe_ms;
		g->next_knock_ms = GATE_NEVER;
	} else {
		g->state = KNOCKING;
		g->next_knock_ms = now_ms;
	}
	return g;
}

void gate_free(struct gate *g)
{
	free(g);
}

static struct attempt *find(struct gate *g, uint32_t id)
{
	for (size_t i = 0; i < GATE_ATTEMPTS; i++)
		if (g->att[i].live && g->att[i].id == id)
			return &g->att[i];
	return NULL;
}

static struct attempt *any_live(struct gate *g)
{
	for (size_t i = 0; i < GATE_ATTEMPTS; i++)
		if (g->att[i].live)
			return &g->att[i];
	return NULL;
}

static struct gate_action act(enum gate_do what, uint32_t attempt)
{
	return (struct gate_action){ .what = what, .attempt = attempt };
}

static struct gate_action abandon(struct attempt *a)
{
	a->live = false;
	return act(GATE_ABANDON, a->id);
}

/* The n-th attempt after a knock starts 2^(n−1) ms after it (the first
 * with it): the server adds us within a millisecond or two of the knock,
 * so the attempt that gets in is one of the first few. */
static uint64_t burst_time(const struct gate *g)
{
	if (g->burst >= GATE_BURST)
		return GATE_NEVER;
	return g->knock_ms + (g->burst ? 1ull << (g->burst - 1) : 0);
}

static struct gate_action knock(struct gate *g, uint64_t now)
{
	g->state = KNOCKING;
	g->knocks++;
	g->knock_ms = now;
	g->burst = 0;
	g->next_attempt_ms = now;
	g->next_knock_ms = now + g->reknock_ms;
	g->reknock_ms *= 2;
	if (g->reknock_ms > GATE_REKNOCK_MAX_MS)
		g->reknock_ms = GATE_REKNOCK_MAX_MS;
	return act(GATE_KNOCK, 0);
}

/* A new attempt, in the oldest free slot, or (GATE_ABANDON) first make
 * room by dropping the oldest in flight. */
static struct gate_action start_attempt(struct gate *g, uint64_t now)
{
	struct attempt *slot = NULL;

	for (size_t i = 0; i < GATE_ATTEMPTS; i++) {
		struct attempt *a = &g->att[i];

		if (!a->live) {
			slot = a;
			break;
		}
		if (!slot || a->started_ms < slot->started_ms)
			slot = a;
	}
	if (slot->live)
		return abandon(slot);
	*slot = (struct attempt){ .id = ++g->next_id, .started_ms = now, .live = true };
	g->burst++;
	g->next_attempt_ms = g->state == PROBING ? GATE_NEVER : burst_time(g);
	return act(GATE_CONNECT, slot->id);
}

static uint64_t min_time(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

struct gate_action gate_next(struct gate *g, uint64_t now)
{
	struct gate_action wait = { .what = GATE_WAIT, .deadline = GATE_NEVER };
	struct attempt *a;

	switch (g->state) {
	case DONE:
		return wait;
	case OPENING:
		if ((a = any_live(g)))
			return abandon(a);
		g->state = DONE;
		return act(GATE_OPEN, g->open_id);
	case ENDING:
		if ((a = any_live(g)))
			return abandon(a);
		g->state = DONE;
		return (struct gate_action){ .what = GATE_FAILED, .failure = g->failure };
	case PROBING:
	case KNOCKING:
		break;
	}
	if (now - g->start_ms >= g->p.total_ms) {
		g->state = ENDING;
		g->failure = GATE_TIMED_OUT;
		return gate_next(g, now);
	}
	if (g->state == PROBING && now >= g->probe_end_ms)
		return knock(g, now);
	if (now >= g->next_knock_ms)
		return knock(g, now);
	if (now >= g->next_attempt_ms)
		return start_attempt(g, now);
	wait.deadline = min_time(g->start_ms + g->p.total_ms, g->next_attempt_ms);
	wait.deadline = min_time(wait.deadline, g->next_knock_ms);
	if (g->state == PROBING)
		wait.deadline = min_time(wait.deadline, g->probe_end_ms);
	return wait;
}

bool gate_connected(struct gate *g, uint32_t id, uint64_t now)
{
	struct attempt *a = find(g, id);

	if (!a || (g->state != PROBING && g->state != KNOCKING))
		return false;
	a->live = false;
	g->open_id = id;
	g->connect_ms = now - a->started_ms;
	g->state = OPENING;
	return true;
}

void gate_connect_failed(struct gate *g, uint32_t id, int err, uint64_t now)
{
	struct attempt *a = find(g, id);

	if (!a)
		return;
	a->live = false;
	if (g->state != PROBING && g->state != KNOCKING)
		return;
	if (err == ECONNREFUSED) {
		g->state = ENDING;
		g->failure = GATE_REFUSED;
		return;
	}
	g->last_error = err;
	/* Errors that come back at once (an ICMP unreachable) must not
	 * leave nothing in flight until the next knock, nor spin. */
	if (!any_live(g) && g->next_attempt_ms == GATE_NEVER)
		g->next_attempt_ms = now + GATE_RETRY_MS;
	if (g->state == PROBING && !any_live(g))
		g->probe_end_ms = now;	/* no answer coming: knock */
}

unsigned int gate_knocks(const struct gate *g)
{
	return g->knocks;
}

int gate_last_error(const struct gate *g)
{
	return g->last_error;
}

uint64_t gate_connect_ms(const struct gate *g)
{
	return g->connect_ms;
}
