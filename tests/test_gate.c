/*
 * client/gate.c without sockets: the order and timing of knocks and
 * connect attempts, the cap on attempts in flight, what ends it, and a
 * simulated link (delay, loss, TCP's SYN retransmits, a gate that opens a
 * moment after the knock arrives) from a LAN to a second of round trip.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "gate.h"

#define T0 1000000ull

static const struct gate_params knock_now = { .total_ms = 10000 };

/* Take every action due at now; the counts and ids land in *log. */
struct log {
	unsigned int knocks, connects, abandons;
	uint32_t last_connect, last_abandon, opened;
	bool failed;
	enum gate_failure failure;
	uint64_t deadline;
};

static void run(struct gate *g, uint64_t now, struct log *log)
{
	for (int i = 0; i < 100; i++) {
		struct gate_action a = gate_next(g, now);

		switch (a.what) {
		case GATE_WAIT:
			log->deadline = a.deadline;
			return;
		case GATE_KNOCK: log->knocks++; break;
		case GATE_CONNECT: log->connects++; log->last_connect = a.attempt; break;
		case GATE_ABANDON: log->abandons++; log->last_abandon = a.attempt; break;
		case GATE_OPEN: log->opened = a.attempt; break;
		case GATE_FAILED: log->failed = true; log->failure = a.failure; break;
		}
	}
	fail_msg("gate_next never said wait");
}

static void knocks_with_the_first_connect(void **state)
{
	struct gate *g = gate_new(&knock_now, T0);
	struct gate_action a;

	(void)state;
	a = gate_next(g, T0);
	assert_int_equal(a.what, GATE_KNOCK);
	a = gate_next(g, T0);
	assert_int_equal(a.what, GATE_CONNECT);
	assert_int_equal(a.attempt, 1);
	a = gate_next(g, T0);
	assert_int_equal(a.what, GATE_WAIT);
	assert_int_equal(a.deadline, T0 + 1);
	gate_free(g);
}

/* Attempts at 0, 1, 2, 4, … 256 ms after a knock, none later until the
 * next knock; knocks at 0, 1, 3, 7 s (then every 4 s). */
static void schedule(void **state)
{
	static const uint64_t at[] = { 0, 1, 2, 4, 8, 16, 32, 64, 128, 256 };
	struct gate *g = gate_new(&knock_now, T0);
	struct log log = { 0 };

	(void)state;
	for (size_t i = 0; i < GATE_BURST; i++) {
		run(g, T0 + at[i], &log);
		assert_int_equal(log.connects, i + 1);
		assert_int_equal(log.deadline, i < GATE_BURST - 1 ? T0 + at[i + 1] : T0 + 1000);
	}
	assert_int_equal(log.knocks, 1);
	run(g, T0 + 999, &log);
	assert_int_equal(log.knocks, 1);
	run(g, T0 + 1000, &log);
	assert_int_equal(log.knocks, 2);
	/* The cap: the 11th attempt takes the place of the oldest. */
	assert_int_equal(log.connects, GATE_BURST + 1);
	assert_int_equal(log.abandons, 1);
	assert_int_equal(log.last_abandon, 1);
	assert_int_equal(log.deadline, T0 + 1001);
	run(g, T0 + 2999, &log);
	assert_int_equal(log.knocks, 2);
	run(g, T0 + 3000, &log);
	run(g, T0 + 7000, &log);
	assert_int_equal(log.knocks, 4);
	assert_int_equal(log.deadline, T0 + 7001);
	run(g, T0 + 9999, &log);
	assert_int_equal(log.knocks, 4);	/* the next would be at 11 s */
	assert_false(log.failed);
	gate_free(g);
}

static void never_more_than_the_cap_in_flight(void **state)
{
	struct gate *g = gate_new(&knock_now, T0);
	struct log log = { 0 };

	(void)state;
	for (uint64_t t = 0; t < 9990; t += 1)
		run(g, T0 + t, &log);
	assert_int_equal(log.connects - log.abandons, GATE_ATTEMPTS);
	assert_int_equal(log.knocks, 4);
	assert_int_equal(log.connects, 4 * GATE_BURST);
	assert_false(log.failed);
	gate_free(g);
}

static void the_first_connect_wins(void **state)
{
	struct gate *g = gate_new(&knock_now, T0);
	struct log log = { 0 };

	(void)state;
	run(g, T0, &log);
	run(g, T0 + 1, &log);
	run(g, T0 + 2, &log);
	assert_int_equal(log.connects, 3);
	assert_true(gate_connected(g, 2, T0 + 40));
	assert_false(gate_connected(g, 3, T0 + 41));	/* too late */
	run(g, T0 + 41, &log);
	assert_int_equal(log.abandons, 2);		/* 1 and 3 */
	assert_int_equal(log.opened, 2);
	assert_int_equal(log.deadline, GATE_NEVER);
	assert_int_equal(gate_connect_ms(g), 39);
	assert_int_equal(gate_knocks(g), 1);
	run(g, T0 + 20000, &log);			/* done: no time-out */
	assert_false(log.failed);
	gate_free(g);
}

static void a_reset_is_the_answer(void **state)
{
	struct gate *g = gate_new(&knock_now, T0);
	struct log log = { 0 };

	(void)state;
	run(g, T0, &log);
	run(g, T0 + 1, &log);
	gate_connect_failed(g, 1, ECONNREFUSED, T0 + 3);
	run(g, T0 + 3, &log);
	assert_true(log.failed);
	assert_int_equal(log.failure, GATE_REFUSED);
	assert_int_equal(log.abandons, 1);	/* attempt 2 */
	assert_int_equal(log.last_abandon, 2);
	assert_false(gate_connected(g, 2, T0 + 4));
	gate_free(g);
}

static void time_is_up(void **state)
{
	struct gate *g = gate_new(&(struct gate_params){ .total_ms = 5000 }, T0);
	struct log log = { 0 };

	(void)state;
	for (uint64_t t = 0; !log.failed && t < 6000; t = log.deadline - T0)
		run(g, T0 + t, &log);
	assert_true(log.failed);
	assert_int_equal(log.failure, GATE_TIMED_OUT);
	assert_int_equal(log.knocks, 3);		/* 0, 1, 3 s */
	assert_int_equal(log.connects - log.abandons, 0);
	assert_int_equal(gate_last_error(g), 0);
	gate_free(g);
}

/* Errors that come back at once: bounded attempts, the error kept. */
static void errors_do_not_spin(void **state)
{
	struct gate *g = gate_new(&knock_now, T0);
	struct log log = { 0 };
	uint32_t seen = 0;

	(void)state;
	for (uint64_t t = 0; !log.failed && t < 11000; t = log.deadline - T0) {
		run(g, T0 + t, &log);
		for (; seen < log.last_connect; seen++)
			gate_connect_failed(g, seen + 1, EHOSTUNREACH, T0 + t);
	}
	assert_true(log.failed);
	assert_int_equal(log.failure, GATE_TIMED_OUT);
	assert_int_equal(gate_last_error(g), EHOSTUNREACH);
	/* 4 bursts, plus one every 250 ms between them at most */
	assert_true(log.connects <= 4 * GATE_BURST + 10000 / GATE_RETRY_MS);
	assert_true(log.connects >= 4 * GATE_BURST);
	gate_free(g);
}

static void believed_open_connects_first(void **state)
{
	struct gate_params p = { .total_ms = 10000, .probe_ms = 50 };
	struct gate *g = gate_new(&p, T0);
	struct log log = { 0 };

	(void)state;
	run(g, T0, &log);
	assert_int_equal(log.knocks, 0);
	assert_int_equal(log.connects, 1);
	assert_int_equal(log.deadline, T0 + 50);
	assert_true(gate_connected(g, 1, T0 + 9));
	run(g, T0 + 9, &log);
	assert_int_equal(log.opened, 1);
	assert_int_equal(gate_knocks(g), 0);
	gate_free(g);

	/* It was not open: knock at probe_ms, keeping the first connect. */
	memset(&log, 0, sizeof(log));
	g = gate_new(&p, T0);
	run(g, T0, &log);
	run(g, T0 + 50, &log);
	assert_int_equal(log.knocks, 1);
	assert_int_equal(log.connects, 2);
	assert_int_equal(log.abandons, 0);
	assert_true(gate_connected(g, 1, T0 + 60));	/* the probe, late */
	run(g, T0 + 60, &log);
	assert_int_equal(log.opened, 1);
	gate_free(g);

	/* A probe that fails at once knocks at once. */
	memset(&log, 0, sizeof(log));
	g = gate_new(&p, T0);
	run(g, T0, &log);
	gate_connect_failed(g, 1, EHOSTUNREACH, T0 + 1);
	run(g, T0 + 1, &log);
	assert_int_equal(log.knocks, 1);
	gate_free(g);
}

/*
 * A link: each packet (knock, SYN, SYN-ACK) takes rtt/2 and is lost with
 * probability loss; the server opens the gate 1 ms after a knock arrives;
 * TCP sends a SYN again 1, 3, 7, 15 s after the connect started.
 */
struct link {
	uint64_t rtt, loss_permille;
	uint32_t rng;
	uint64_t open_at;
};

static bool lost(struct link *l)
{
	l->rng = l->rng * 1103515245u + 12345u;
	return (l->rng >> 16) % 1000 < l->loss_permille;
}

/* When an attempt started at s connects, or GATE_NEVER. */
static uint64_t answered_at(struct link *l, uint64_t s)
{
	static const uint64_t syn[] = { 0, 1000, 3000, 7000, 15000 };

	for (size_t i = 0; i < sizeof(syn) / sizeof(syn[0]); i++) {
		uint64_t arrives = s + syn[i] + l->rtt / 2;

		if (lost(l) || arrives < l->open_at)
			continue;
		if (!lost(l))
			return arrives + l->rtt / 2;
	}
	return GATE_NEVER;
}

/* Drive a gate over the link; the time it took, or GATE_NEVER. */
static uint64_t over_link(struct link *l, struct gate_params p)
{
	struct gate *g = gate_new(&p, T0);
	uint64_t when[128] = { 0 }, now = T0, took = GATE_NEVER;
	uint32_t n = 0;

	l->open_at = GATE_NEVER;
	for (int steps = 0; steps < 10000; steps++) {
		struct gate_action a = gate_next(g, now);
		uint64_t next;

		if (a.what == GATE_KNOCK && !lost(l) && now + l->rtt / 2 + 1 < l->open_at)
			l->open_at = now + l->rtt / 2 + 1;
		if (a.what == GATE_CONNECT) {
			assert_true(a.attempt < 128);
			when[a.attempt] = answered_at(l, now);
			n = a.attempt;
		}
		if (a.what == GATE_ABANDON)
			when[a.attempt] = 0;
		if (a.what == GATE_OPEN) {
			took = now - T0;
			break;
		}
		if (a.what == GATE_FAILED)
			break;
		if (a.what != GATE_WAIT)
			continue;
		next = a.deadline;
		for (uint32_t i = 1; i <= n; i++)
			if (when[i] && when[i] < next)
				next = when[i];
		now = next;
		for (uint32_t i = 1; i <= n; i++)
			if (when[i] && when[i] == now) {
				when[i] = 0;
				gate_connected(g, i, now);
			}
	}
	gate_free(g);
	return took;
}

/* No loss: the first SYN beats the gate by a millisecond; the next
 * attempt, 1 ms later, arrives as the gate opens and is answered one
 * round trip after it left. */
static void opens_at_any_round_trip(void **state)
{
	static const uint64_t rtts[] = { 2, 20, 100, 330, 520, 1000 };

	(void)state;
	for (size_t i = 0; i < sizeof(rtts) / sizeof(rtts[0]); i++) {
		struct link l = { .rtt = rtts[i] };

		assert_int_equal(over_link(&l, knock_now), 1 + rtts[i]);
	}
}

/* 1 s of round trip, 10 % loss each way: out of 1,000 setups, none
 * fails inside the default 10 s, and a lost knock costs about a second. */
static void opens_through_loss(void **state)
{
	unsigned int failed = 0, slow = 0;

	(void)state;
	for (uint32_t seed = 1; seed <= 1000; seed++) {
		struct link l = { .rtt = 1000, .loss_permille = 100, .rng = seed };
		uint64_t took = over_link(&l, knock_now);

		if (took == GATE_NEVER)
			failed++;
		else if (took > 4 * 1000)
			slow++;
	}
	print_message("1 s round trip, 10 %% loss: %u of 1000 failed, %u took over 4 s\n",
		      failed, slow);
	assert_int_equal(failed, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(knocks_with_the_first_connect),
		cmocka_unit_test(schedule),
		cmocka_unit_test(never_more_than_the_cap_in_flight),
		cmocka_unit_test(the_first_connect_wins),
		cmocka_unit_test(a_reset_is_the_answer),
		cmocka_unit_test(time_is_up),
		cmocka_unit_test(errors_do_not_spin),
		cmocka_unit_test(believed_open_connects_first),
		cmocka_unit_test(opens_at_any_round_trip),
		cmocka_unit_test(opens_through_loss),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
