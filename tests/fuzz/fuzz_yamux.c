/*
 * The yamux session under attacker-chosen input, two ways; bit 0 of the
 * first byte picks which.
 *
 * Raw: a server session reads the bytes, with an application that opens,
 * writes, echoes, consumes, closes and resets as they suggest.
 *
 *   data[0]  bits 1-7: where the input is cut in two, so a header or a
 *            payload straddles two yamux_input() calls, with output
 *            drained and a tick between
 *   data[1]  behaviour bits: refuse opens, never consume, echo, reset or
 *            close on data, a small output queue, tight limits, one byte
 *            per call
 *   rest     the transport's bytes
 *
 * Script: a client and a server session wired together; each pair of
 * bytes is an operation (open, write, consume, close, reset, deliver some
 * or all queued bytes, let time pass, go away, or slip raw bytes into the
 * wire).
 * Raw input is limited to a few KiB, too little to move a 256 KiB window;
 * the script moves MiBs, and checks every byte that arrives.
 *
 * Never a crash, a leak (ASan), an error that is not sticky, an output
 * queue beyond its bound, or stream bytes other than those written.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "yamux.h"

#define OUTPUT_RESERVE (128u * 1024)	/* as in yamux.c */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Raw mode */

#define REFUSE 0x01
#define NO_CONSUME 0x02
#define ECHO 0x04
#define RESET_ON_DATA 0x08
#define CLOSE_ON_DATA 0x10
#define SMALL_QUEUE 0x20
#define TIGHT_LIMITS 0x40
#define BYTEWISE 0x80

struct app {
	struct yamux_session *s;
	uint8_t mode;
	uint64_t now;
	size_t max_output;
	size_t write_budget;	/* the peer may grant GiBs: write less */
	unsigned int open_streams;
};

static bool on_open(void *user, uint32_t id)
{
	struct app *a = user;

	if (a->mode & REFUSE && id % 3 == 0)
		return false;
	yamux_set_stream_user(a->s, id, a);
	a->open_streams++;
	return true;
}

static void on_data(void *user, uint32_t id, const uint8_t *p, size_t n)
{
	struct app *a = user;

	if (a->mode & ECHO)
		yamux_write(a->s, id, p, n);
	if (!(a->mode & NO_CONSUME))
		yamux_consumed(a->s, id, n, a->now);
	if (n > 0 && a->mode & RESET_ON_DATA && p[0] == 'R')
		yamux_reset(a->s, id);
	else if (n > 0 && a->mode & CLOSE_ON_DATA && p[0] == 'C')
		yamux_close(a->s, id);
}

static void on_fin(void *user, uint32_t id)
{
	struct app *a = user;

	yamux_close(a->s, id);
}

static void on_writable(void *user, uint32_t id)
{
	struct app *a = user;
	static const uint8_t more[300] = "more";

	if (a->write_budget >= sizeof(more))
		a->write_budget -= yamux_write(a->s, id, more, sizeof(more));
}

static void on_closed(void *user, uint32_t id, void *stream_user)
{
	struct app *a = user;

	(void)id;
	if (stream_user) {
		if (stream_user != a || a->open_streams == 0)
			__builtin_trap();
		a->open_streams--;
	}
}

static const struct yamux_events raw_events = {
	.on_open = on_open,
	.on_data = on_data,
	.on_fin = on_fin,
	.on_writable = on_writable,
	.on_closed = on_closed,
};

static void check_queue(struct yamux_session *s, size_t max_output)
{
	if (yamux_output_pending(s) > max_output + OUTPUT_RESERVE)
		__builtin_trap();
}

/* Drain what the transport would take: all of it, or half. */
static void drain(struct app *a, bool half)
{
	size_t goal = half ? yamux_output_pending(a->s) / 2 : 0;
	const uint8_t *p;
	size_t n;

	while (yamux_output_pending(a->s) > goal &&
	       (n = yamux_output_peek(a->s, &p)) > 0) {
		size_t take = yamux_output_pending(a->s) - goal;

		yamux_output_consume(a->s, n < take ? n : take);
	}
}

static int feed(struct app *a, const uint8_t *p, size_t len)
{
	int rc = 0;

	if (!(a->mode & BYTEWISE) || len == 0)
		return yamux_input(a->s, p, len, a->now);
	for (size_t i = 0; i < len && rc == 0; i++)
		rc = yamux_input(a->s, p + i, 1, a->now);
	return rc;
}

static void open_and_write(struct app *a, size_t n)
{
	static const uint8_t hello[2000] = "hello";
	uint32_t id = yamux_open(a->s);

	if (id) {
		yamux_set_stream_user(a->s, id, a);
		a->open_streams++;
		yamux_write(a->s, id, hello, n % sizeof(hello));
	}
}

static void raw(uint8_t first, uint8_t mode, const uint8_t *data, size_t size)
{
	struct yamux_config cfg = yamux_config_default(false);
	struct app a = { 0 };
	size_t cut = (size_t)(first >> 1) * size / 128;
	int rc1, rc2;

	a.mode = mode;
	if (a.mode & SMALL_QUEUE)
		cfg.max_output = 200;
	if (a.mode & TIGHT_LIMITS) {
		cfg.max_streams = 3;
		cfg.max_pending_opens = 1;
		cfg.max_window = cfg.initial_window;
	}
	a.max_output = cfg.max_output;
	a.write_budget = 64 * 1024;
	a.now = 1000;
	a.s = yamux_new(&cfg, &raw_events, &a);
	if (!a.s)
		__builtin_trap();

	/* Streams of ours for the input to ACK, reset or credit. */
	open_and_write(&a, size);
	open_and_write(&a, cut);

	rc1 = feed(&a, data, cut);
	check_queue(a.s, a.max_output);
	drain(&a, true);
	a.now += first * 100u;
	if (rc1 != 0 && yamux_tick(a.s, a.now) != rc1)
		__builtin_trap();
	open_and_write(&a, cut * 7);
	rc2 = feed(&a, data + cut, size - cut);
	check_queue(a.s, a.max_output);
	/* An error is sticky: the second half reports the first's. */
	if (rc1 != 0 && rc2 != rc1)
		__builtin_trap();
	if (rc2 != 0 && (yamux_error(a.s) != (enum yamux_error)-rc2 ||
			 yamux_open(a.s) != 0))
		__builtin_trap();

	drain(&a, false);
	open_and_write(&a, size * 3);
	a.now += 60 * 1000;
	yamux_tick(a.s, a.now);
	a.now += 60 * 1000;
	yamux_tick(a.s, a.now);
	drain(&a, false);
	yamux_free(a.s);
	if (a.open_streams != 0)
		__builtin_trap();
}

/* Script mode */

#define MAX_STREAMS 32
#define SCRIPT_IDS 256		/* byte checks for ids below this */
#define WRITE_BUDGET (2u << 20)

struct side {
	struct yamux_session *s;
	struct side *peer;
	uint64_t *now;
	uint32_t ids[MAX_STREAMS];	/* open streams we know of */
	unsigned int n_ids;
	bool lazy;		/* consume only when told */
	bool tainted;		/* raw bytes reached it: no byte checks */
	uint64_t sent[SCRIPT_IDS], received[SCRIPT_IDS];
	size_t budget;
};

/* Byte o of stream id is pattern[(o + 13·id) mod PERIOD], whoever wrote
 * it. The table runs a write's length past the period, so any write or
 * delivery (at most 64 KiB here) is one memcpy or memcmp. */
#define PERIOD 65521u		/* prime: streams and offsets do not align */
#define MAX_CHUNK (64u * 1024)
static uint8_t pattern[PERIOD + MAX_CHUNK];

static const uint8_t *pattern_at(uint32_t id, uint64_t o)
{
	if (!pattern[1])
		for (size_t i = 0; i < sizeof(pattern); i++)
			pattern[i] = (uint8_t)((i % PERIOD) * 7 + (i % PERIOD >> 9) + 1);
	return pattern + (o + 13u * (uint64_t)id) % PERIOD;
}

static void forget(struct side *x, uint32_t id)
{
	for (unsigned int i = 0; i < x->n_ids; i++)
		if (x->ids[i] == id)
			x->ids[i] = x->ids[--x->n_ids];
}

static void remember(struct side *x, uint32_t id)
{
	if (x->n_ids < MAX_STREAMS)
		x->ids[x->n_ids++] = id;
	if (id < SCRIPT_IDS)
		x->sent[id] = x->received[id] = 0;
}

static bool sc_open(void *user, uint32_t id)
{
	struct side *x = user;

	if (x->n_ids == MAX_STREAMS || id % 7 == 0)
		return false;
	remember(x, id);
	return true;
}

static void sc_data(void *user, uint32_t id, const uint8_t *p, size_t n)
{
	struct side *x = user;

	if (id < SCRIPT_IDS && !x->tainted) {
		/* Untainted, every frame is one of sc_write's: ≤ MAX_CHUNK. */
		if (n > MAX_CHUNK ||
		    memcmp(p, pattern_at(id, x->received[id]), n) != 0)
			__builtin_trap();
		x->received[id] += n;
		if (x->received[id] > x->peer->sent[id])
			__builtin_trap();
	}
	if (!x->lazy)
		yamux_consumed(x->s, id, n, *x->now);
}

static void sc_closed(void *user, uint32_t id, void *stream_user)
{
	(void)stream_user;
	forget(user, id);
}

static const struct yamux_events script_events = {
	.on_open = sc_open,
	.on_data = sc_data,
	.on_closed = sc_closed,
};

static void sc_write(struct side *x, uint32_t id, size_t n)
{
	uint64_t off = id < SCRIPT_IDS ? x->sent[id] : 0;
	size_t done;

	if (n > x->budget)
		n = x->budget;
	if (n > MAX_CHUNK)
		n = MAX_CHUNK;
	done = yamux_write(x->s, id, pattern_at(id, off), n);
	if (done > n)
		__builtin_trap();
	x->budget -= done;
	if (id < SCRIPT_IDS)
		x->sent[id] += done;
}

/* Deliver up to n queued bytes of x to its peer. */
static void sc_move(struct side *x, size_t n)
{
	const uint8_t *p;
	size_t k;

	while (n > 0 && (k = yamux_output_peek(x->s, &p)) > 0) {
		if (k > n)
			k = n;
		yamux_input(x->peer->s, p, k, *x->now);
		yamux_output_consume(x->s, k);
		n -= k;
	}
}

/* Both ways until quiet; the applications do not write from callbacks,
 * so this ends. */
static void sc_pump(struct side *c, struct side *s)
{
	while (yamux_output_pending(c->s) + yamux_output_pending(s->s) > 0) {
		sc_move(c, SIZE_MAX);
		sc_move(s, SIZE_MAX);
	}
}

static size_t script_step(struct side *c, struct side *s, const uint8_t *p,
			  size_t len)
{
	uint8_t op = p[0], arg = p[1];
	struct side *x = op & 0x80 ? s : c;
	uint32_t id = x->n_ids ? x->ids[arg % x->n_ids] : 0;
	size_t used = 2, n;

	switch (op & 7) {
	case 0:
		id = yamux_open(x->s);
		if (id)
			remember(x, id);
		break;
	case 1:
		sc_write(x, id, ((size_t)arg + 1) * 512);
		break;
	case 2:
		yamux_consumed(x->s, id, ((size_t)arg + 1) * 4096, *x->now);
		break;
	case 3:
		yamux_close(x->s, id);
		break;
	case 4:
		yamux_reset(x->s, id);
		break;
	case 5:
		if (arg == 0xff)
			sc_pump(c, s);
		else
			sc_move(x, ((size_t)arg + 1) * 97);
		break;
	case 6:
		if (arg == 0xff) {
			yamux_goaway(x->s, YAMUX_GOAWAY_NORMAL);
			break;
		}
		*x->now += arg;
		yamux_tick(c->s, *x->now);
		yamux_tick(s->s, *x->now);
		break;
	case 7:
		/* Raw bytes straight into the peer: framing may break. */
		n = arg < len - 2 ? arg : len - 2;
		x->peer->tainted = true;
		yamux_input(x->peer->s, p + 2, n, *x->now);
		used += n;
		break;
	}
	check_queue(c->s, yamux_config_default(true).max_output);
	check_queue(s->s, yamux_config_default(false).max_output);
	return used;
}

static void script(uint8_t flags, const uint8_t *data, size_t size)
{
	struct yamux_config cc = yamux_config_default(true);
	struct yamux_config sc = yamux_config_default(false);
	static struct side c, s;
	uint64_t now = 1000;

	memset(&c, 0, sizeof(c));
	memset(&s, 0, sizeof(s));
	c.peer = &s;
	s.peer = &c;
	c.now = s.now = &now;
	c.lazy = flags & 0x02;
	s.lazy = flags & 0x04;
	c.budget = s.budget = WRITE_BUDGET;
	cc.max_window = sc.max_window = 1u << 20;
	c.s = yamux_new(&cc, &script_events, &c);
	s.s = yamux_new(&sc, &script_events, &s);
	if (!c.s || !s.s)
		__builtin_trap();
	while (size >= 2) {
		size_t used = script_step(&c, &s, data, size);

		data += used;
		size -= used;
	}
	sc_pump(&c, &s);
	yamux_free(c.s);
	yamux_free(s.s);
	if (c.n_ids || s.n_ids)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	if (data[0] & 1)
		script(data[1], data + 2, size - 2);
	else
		raw(data[0], data[1], data + 2, size - 2);
	return 0;
}
