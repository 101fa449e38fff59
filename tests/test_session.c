/*
 * An established tunnel, sans-I/O: two sessions (Noise transport + yamux)
 * joined in memory. Bytes move between them in arbitrary pieces, so yamux
 * frames span Noise messages and Noise messages arrive split; a tampered or
 * replayed message ends the session.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "test_util.h"

#include "session.h"

#define WIRE_MAX (4 << 20)

struct side {
	struct session *s;
	uint8_t *got;		/* stream bytes received, in order */
	size_t got_len;
	uint32_t stream;	/* the last opened or accepted stream */
	bool fin;
};

static struct side client, server;
static uint8_t *wire;		/* sealed bytes in flight */

static bool on_open(void *user, uint32_t id)
{
	((struct side *)user)->stream = id;
	return true;
}

static void on_data(void *user, uint32_t id, const uint8_t *p, size_t n)
{
	struct side *x = user;

	x->got = realloc(x->got, x->got_len + n);
	memcpy(x->got + x->got_len, p, n);
	x->got_len += n;
	yamux_consumed(x->s->mux, id, n, 0);
}

static void on_fin(void *user, uint32_t id)
{
	(void)id;
	((struct side *)user)->fin = true;
}

static const struct yamux_events events = {
	.on_open = on_open, .on_data = on_data, .on_fin = on_fin,
};

/* A real handshake, then a session on each side. */
static int setup(void **state)
{
	struct tunnel_transport ct, st;
	struct yamux_config cc = yamux_config_default(true);
	struct yamux_config sc = yamux_config_default(false);

	(void)state;
	test_transport_pair(&ct, &st);
	memset(&client, 0, sizeof(client));
	memset(&server, 0, sizeof(server));
	client.s = session_new(&ct, &cc, &events, &client);
	server.s = session_new(&st, &sc, &events, &server);
	assert_non_null(client.s);
	assert_non_null(server.s);
	assert_true(is_zero_ct(&ct, sizeof(ct)));	/* taken over and wiped */
	wire = malloc(WIRE_MAX);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	session_free(client.s);
	session_free(server.s);
	free(client.got);
	free(server.got);
	free(wire);
	return 0;
}

static uint32_t rng = 12345;

static size_t rnd(size_t max)
{
	rng = rng * 1103515245 + 12345;
	return 1 + (rng >> 8) % max;
}

/* Seal what from has queued (cap bytes per output call) and feed it to
 * to in pieces of 1..piece bytes. */
static size_t move(struct side *from, struct side *to, size_t cap, size_t piece)
{
	size_t n = session_output(from->s, wire, cap), off = 0;

	while (off < n) {
		size_t k = rnd(piece);

		if (k > n - off)
			k = n - off;
		assert_int_equal(session_input(to->s, wire + off, k, 0), SESSION_OK);
		off += k;
	}
	return n;
}

static void pump(size_t cap, size_t piece)
{
	for (int i = 0; i < 10000; i++) {
		size_t a = move(&client, &server, cap, piece);
		size_t b = move(&server, &client, cap, piece);

		if (!a && !b)
			return;
	}
	fail_msg("the sessions never went quiet");
}

static void stream_round_trip(void **state)
{
	uint8_t data[300000];
	size_t sent = 0;

	(void)state;
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + (i >> 9));
	client.stream = yamux_open(client.s->mux);
	assert_int_not_equal(client.stream, 0);
	/* Small output calls make many Noise messages; small input pieces
	 * split them, and yamux frames straddle their boundaries. */
	while (sent < sizeof(data)) {
		sent += yamux_write(client.s->mux, client.stream, data + sent,
				    sizeof(data) - sent);
		pump(1000, 333);
	}
	yamux_close(client.s->mux, client.stream);
	pump(70000, 70000);
	assert_int_equal(server.got_len, sizeof(data));
	assert_memory_equal(server.got, data, sizeof(data));
	assert_true(server.fin);
	/* and back */
	assert_int_equal(yamux_write(server.s->mux, server.stream, data, 1000), 1000);
	pump(65536 + 18, 1);
	assert_int_equal(client.got_len, 1000);
	assert_memory_equal(client.got, data, 1000);
}

static void output_fits_whole_messages(void **state)
{
	uint8_t small[TUNNEL_OVERHEAD + 1];
	uint8_t data[1000] = { 1 };

	(void)state;
	client.stream = yamux_open(client.s->mux);
	yamux_write(client.s->mux, client.stream, data, sizeof(data));
	/* Room for one plaintext byte: one message of one byte. */
	assert_int_equal(session_output(client.s, small, sizeof(small)), sizeof(small));
	assert_int_equal(small[0] << 8 | small[1], 1 + TAG_LEN);
	assert_int_equal(session_input(server.s, small, sizeof(small), 0), SESSION_OK);
	pump(65536, 65536);
	assert_int_equal(server.got_len, sizeof(data));
}

static void tampered_message_ends_session(void **state)
{
	uint8_t data[100] = { 9 };
	size_t n;

	(void)state;
	client.stream = yamux_open(client.s->mux);
	yamux_write(client.s->mux, client.stream, data, sizeof(data));
	n = session_output(client.s, wire, WIRE_MAX);
	assert_true(n > 20);
	wire[n - 1] ^= 1;
	assert_int_equal(session_input(server.s, wire, n, 0), SESSION_E_DECRYPT);
	/* and stays ended */
	assert_int_equal(session_input(server.s, wire, 1, 0), SESSION_E_DECRYPT);
	assert_string_equal(session_strerror(server.s), "a message failed to authenticate");
}

static void replayed_message_ends_session(void **state)
{
	uint8_t data[10] = { 9 };
	size_t n;

	(void)state;
	client.stream = yamux_open(client.s->mux);
	yamux_write(client.s->mux, client.stream, data, sizeof(data));
	n = session_output(client.s, wire, WIRE_MAX);
	assert_int_equal(session_input(server.s, wire, n, 0), SESSION_OK);
	assert_int_equal(session_input(server.s, wire, n, 0), SESSION_E_DECRYPT);
}

static void garbage_length_ends_session(void **state)
{
	uint8_t bad[2] = { 0, 3 };	/* a body shorter than a tag */

	(void)state;
	assert_int_equal(session_input(server.s, bad, 2, 0), SESSION_E_FRAME);
}

/* Valid Noise, invalid yamux: a protocol error, reported as such. */
static void yamux_garbage_ends_session(void **state)
{
	uint8_t plain[12] = { 7 };	/* version 7 */
	uint8_t msg[12 + TUNNEL_OVERHEAD];

	(void)state;
	assert_int_equal(tunnel_seal(&client.s->transport, plain, sizeof(plain), msg),
			 TUNNEL_OK);
	assert_int_equal(session_input(server.s, msg, sizeof(msg), 0), SESSION_E_YAMUX);
	assert_int_equal(yamux_error(server.s->mux), YAMUX_E_VERSION);
	/* The server queued a go-away before it stopped. */
	assert_true(session_output(server.s, wire, WIRE_MAX) > 0);
}

static int confirms;
static bool confirm_answer;

static bool count_confirm(void *user)
{
	assert_ptr_equal(user, &server);
	assert_int_equal(server.stream, 0);	/* yamux saw nothing yet */
	confirms++;
	return confirm_answer;
}

/* The responder hears of the first message that decrypts, once, before
 * yamux sees it: a SYN in that message is not yet a stream. */
static void confirm_once_before_yamux(void **state)
{
	size_t n;

	(void)state;
	confirms = 0;
	confirm_answer = true;
	session_on_confirm(server.s, count_confirm, &server);
	client.stream = yamux_open(client.s->mux);
	n = session_output(client.s, wire, WIRE_MAX);
	assert_int_equal(confirms, 0);
	assert_int_equal(session_input(server.s, wire, n, 0), SESSION_OK);
	assert_int_equal(confirms, 1);
	assert_int_equal(server.stream, client.stream);
	yamux_write(client.s->mux, client.stream, (const uint8_t *)"x", 1);
	pump(70000, 70000);
	assert_int_equal(confirms, 1);
	assert_int_equal(server.got_len, 1);
}

/* A refusal: the message that would have opened a stream opens none. */
static void refused_confirm_reaches_no_yamux(void **state)
{
	size_t n;

	(void)state;
	confirms = 0;
	confirm_answer = false;
	session_on_confirm(server.s, count_confirm, &server);
	client.stream = yamux_open(client.s->mux);
	n = session_output(client.s, wire, WIRE_MAX);
	assert_int_equal(session_input(server.s, wire, n, 0), SESSION_E_REFUSED);
	assert_int_equal(confirms, 1);
	assert_int_equal(server.stream, 0);
	assert_int_equal(session_output_pending(server.s), false);
	assert_int_equal(session_input(server.s, wire, 1, 0), SESSION_E_REFUSED);
}

/* A message that does not decrypt confirms nothing. */
static void no_confirm_without_a_valid_message(void **state)
{
	size_t n;

	(void)state;
	confirms = 0;
	confirm_answer = true;
	session_on_confirm(server.s, count_confirm, &server);
	yamux_open(client.s->mux);
	n = session_output(client.s, wire, WIRE_MAX);
	wire[n - 1] ^= 1;
	assert_int_equal(session_input(server.s, wire, n, 0), SESSION_E_DECRYPT);
	assert_int_equal(confirms, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(stream_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(output_fits_whole_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(tampered_message_ends_session, setup, teardown),
		cmocka_unit_test_setup_teardown(replayed_message_ends_session, setup, teardown),
		cmocka_unit_test_setup_teardown(garbage_length_ends_session, setup, teardown),
		cmocka_unit_test_setup_teardown(yamux_garbage_ends_session, setup, teardown),
		cmocka_unit_test_setup_teardown(confirm_once_before_yamux, setup, teardown),
		cmocka_unit_test_setup_teardown(refused_confirm_reaches_no_yamux, setup, teardown),
		cmocka_unit_test_setup_teardown(no_confirm_without_a_valid_message, setup, teardown),
	};

	if (!crypto_init())
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
