/*
 * A yamux server session reading attacker-chosen bytes, with an
 * application that opens, writes, echoes, consumes, closes and resets as
 * the bytes suggest.
 *
 *   data[0]  where the input is cut in two: a header or payload straddles
 *            two yamux_input() calls, with output drained and a tick between
 *   data[1]  behaviour bits: refuse opens, never consume, echo, reset or
 *            close on data, a small output queue, tight limits, one byte
 *            per call
 *   rest     the transport's bytes
 *
 * Never a crash, a leak (ASan), an error that is not sticky, or an output
 * queue beyond its bound.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "yamux.h"

#define REFUSE 0x01
#define NO_CONSUME 0x02
#define ECHO 0x04
#define RESET_ON_DATA 0x08
#define CLOSE_ON_DATA 0x10
#define SMALL_QUEUE 0x20
#define TIGHT_LIMITS 0x40
#define BYTEWISE 0x80

#define OUTPUT_RESERVE (128u * 1024)	/* as in yamux.c */

struct app {
	struct yamux_session *s;
	uint8_t mode;
	uint64_t now;
	size_t max_output;
	unsigned int open_streams;
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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

	yamux_write(a->s, id, more, sizeof(more));
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

static const struct yamux_events events = {
	.on_open = on_open,
	.on_data = on_data,
	.on_fin = on_fin,
	.on_writable = on_writable,
	.on_closed = on_closed,
};

static void check_queue(const struct app *a)
{
	if (yamux_output_pending(a->s) > a->max_output + OUTPUT_RESERVE)
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct yamux_config cfg = yamux_config_default(false);
	struct app a = { 0 };
	uint8_t first;
	size_t cut;
	int rc1, rc2;

	if (size < 2)
		return 0;
	first = data[0];
	a.mode = data[1];
	cut = size > 2 ? first % (size - 1) : 0;
	data += 2;
	size -= 2;
	if (a.mode & SMALL_QUEUE)
		cfg.max_output = 200;
	if (a.mode & TIGHT_LIMITS) {
		cfg.max_streams = 3;
		cfg.max_pending_opens = 1;
		cfg.max_window = cfg.initial_window;
	}
	a.max_output = cfg.max_output;
	a.now = 1000;
	a.s = yamux_new(&cfg, &events, &a);
	if (!a.s)
		__builtin_trap();

	/* Streams of ours for the input to ACK, reset or credit. */
	open_and_write(&a, size);
	open_and_write(&a, cut);

	rc1 = feed(&a, data, cut);
	check_queue(&a);
	drain(&a, true);
	a.now += first * 100u;
	if (yamux_tick(a.s, a.now) != rc1 && rc1 != 0)
		__builtin_trap();
	open_and_write(&a, cut * 7);
	rc2 = feed(&a, data + cut, size - cut);
	check_queue(&a);
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
	return 0;
}
