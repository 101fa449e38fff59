/*
 * The yamux session: two sessions wired back to back in memory, a client
 * and a server, driven through every behaviour of docs/YAMUX.md; frames
 * made by hand for what a well-behaved peer never sends; and the bytes
 * hashicorp/yamux puts on the wire, written out in hex.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "yamux.h"

#define KIB 1024u
#define MIB (1024u * 1024)
#define MAX_ID 4096
#define ALL SIZE_MAX		/* deliver output in one piece */

/* What one side's application saw of one stream. */
struct record {
	uint8_t *data;
	size_t len, cap;
	bool opened, established, fin, reset, writable;
	int closed;
	void *closed_user;
};

struct peer {
	struct yamux_session *s;
	struct record rec[MAX_ID];
	bool refuse;		/* on_open answer */
	bool consume;		/* yamux_consumed() from on_data */
	uint32_t reset_on_data;	/* yamux_reset() this id from on_data */
	bool got_goaway;
	uint32_t goaway_code;
	uint32_t opens;		/* on_open calls */
	int closed_total;
	char log[512];		/* events in order, while there is room */
	size_t data_mark;	/* where the log's last entry, a data one,
				 * starts; SIZE_MAX if it is not data */
	uint32_t data_id;
	size_t data_n;
};

static struct peer client, server;
static uint64_t now;

static void note(struct peer *p, const char *fmt, ...)
{
	size_t used = strlen(p->log);
	va_list ap;

	p->data_mark = SIZE_MAX;
	if (used + 32 >= sizeof(p->log))
		return;
	va_start(ap, fmt);
	vsnprintf(p->log + used, sizeof(p->log) - used, fmt, ap);
	va_end(ap);
}

/* Consecutive pieces of one stream's data log as one entry, so a log
 * does not depend on how the input was cut. */
static void note_data(struct peer *p, uint32_t id, size_t n)
{
	if (p->data_mark != SIZE_MAX && p->data_id == id) {
		p->log[p->data_mark] = '\0';
		n += p->data_n;
	}
	size_t mark = strlen(p->log);

	note(p, "data %u %zu;", id, n);
	p->data_mark = mark;
	p->data_id = id;
	p->data_n = n;
}

static struct record *rec(struct peer *p, uint32_t id)
{
	assert_true(id < MAX_ID);
	return &p->rec[id];
}

static bool on_open(void *user, uint32_t id)
{
	struct peer *p = user;

	p->opens++;
	note(p, "open %u;", id);
	if (p->refuse)
		return false;
	rec(p, id)->opened = true;
	yamux_set_stream_user(p->s, id, rec(p, id));
	return true;
}

static void on_established(void *user, uint32_t id)
{
	struct peer *p = user;

	note(p, "est %u;", id);
	rec(p, id)->established = true;
}

static void on_data(void *user, uint32_t id, const uint8_t *d, size_t n)
{
	struct peer *p = user;
	struct record *r = rec(p, id);

	note_data(p, id, n);
	if (r->len + n > r->cap) {
		r->cap = (r->len + n) * 2;
		r->data = realloc(r->data, r->cap);
		assert_non_null(r->data);
	}
	memcpy(r->data + r->len, d, n);
	r->len += n;
	if (p->consume)
		yamux_consumed(p->s, id, n, now);
	if (p->reset_on_data == id)
		yamux_reset(p->s, id);
}

static void on_fin(void *user, uint32_t id)
{
	struct peer *p = user;

	note(p, "fin %u;", id);
	rec(p, id)->fin = true;
}

static void on_reset(void *user, uint32_t id)
{
	struct peer *p = user;

	note(p, "rst %u;", id);
	rec(p, id)->reset = true;
}

static void on_writable(void *user, uint32_t id)
{
	struct peer *p = user;

	note(p, "writable %u;", id);
	rec(p, id)->writable = true;
}

static void on_goaway(void *user, uint32_t code)
{
	struct peer *p = user;

	note(p, "goaway %u;", code);
	p->got_goaway = true;
	p->goaway_code = code;
}

static void on_closed(void *user, uint32_t id, void *stream_user)
{
	struct peer *p = user;

	note(p, "closed %u;", id);
	rec(p, id)->closed++;
	rec(p, id)->closed_user = stream_user;
	p->closed_total++;
	/* Calls from here must not disturb the session. */
	assert_int_equal(yamux_write(p->s, id, (const uint8_t *)"x", 1), 0);
}

static const struct yamux_events events = {
	.on_open = on_open,
	.on_established = on_established,
	.on_data = on_data,
	.on_fin = on_fin,
	.on_reset = on_reset,
	.on_writable = on_writable,
	.on_goaway = on_goaway,
	.on_closed = on_closed,
};

static void peer_start(struct peer *p, const struct yamux_config *cfg)
{
	for (size_t i = 0; i < MAX_ID; i++)
		free(p->rec[i].data);
	memset(p, 0, sizeof(*p));
	p->consume = true;
	p->data_mark = SIZE_MAX;
	p->s = yamux_new(cfg, &events, p);
	assert_non_null(p->s);
}

static void peer_stop(struct peer *p)
{
	yamux_free(p->s);
	p->s = NULL;
	for (size_t i = 0; i < MAX_ID; i++) {
		free(p->rec[i].data);
		p->rec[i].data = NULL;
	}
}

static void start_pair(const struct yamux_config *c, const struct yamux_config *s)
{
	struct yamux_config cd = yamux_config_default(true);
	struct yamux_config sd = yamux_config_default(false);

	now = 1000;
	peer_start(&client, c ? c : &cd);
	peer_start(&server, s ? s : &sd);
}

static int teardown(void **state)
{
	(void)state;
	peer_stop(&client);
	peer_stop(&server);
	return 0;
}

/* Move what from has queued into to, chunk bytes per yamux_input() call.
 * Returns the bytes moved; *rc gets the first error. */
static size_t transfer(struct peer *from, struct peer *to, size_t chunk, int *rc)
{
	const uint8_t *p;
	size_t n, moved = 0;

	while ((n = yamux_output_peek(from->s, &p)) > 0) {
		int r;

		n = n < chunk ? n : chunk;
		r = yamux_input(to->s, p, n, now);
		if (r != 0 && *rc == 0)
			*rc = r;
		yamux_output_consume(from->s, n);
		moved += n;
	}
	return moved;
}

/* Both ways until neither side has anything to say. */
static int pump_chunked(size_t chunk)
{
	int rc = 0;

	while (transfer(&client, &server, chunk, &rc) +
	       transfer(&server, &client, chunk, &rc) > 0)
		;
	return rc;
}

static void pump(void)
{
	assert_int_equal(pump_chunked(ALL), 0);
}

/* Hex with spaces allowed, into buf; returns the length. */
static size_t unhex(uint8_t *buf, size_t cap, const char *hex)
{
	size_t n = 0;

	for (; *hex; hex++) {
		unsigned int b;

		if (*hex == ' ')
			continue;
		assert_int_equal(sscanf(hex, "%2x", &b), 1);
		assert_true(n < cap);
		buf[n++] = (uint8_t)b;
		hex++;
	}
	return n;
}

/* Everything p has queued, taken out of its queue. */
static size_t drain(struct peer *p, uint8_t *buf, size_t cap)
{
	const uint8_t *q;
	size_t n, total = 0;

	while ((n = yamux_output_peek(p->s, &q)) > 0) {
		assert_true(total + n <= cap);
		memcpy(buf + total, q, n);
		total += n;
		yamux_output_consume(p->s, n);
	}
	return total;
}

static void expect_output(struct peer *p, const char *hex)
{
	uint8_t want[256], got[256];
	size_t want_len = unhex(want, sizeof(want), hex);
	size_t got_len = drain(p, got, sizeof(got));

	assert_int_equal(got_len, want_len);
	assert_memory_equal(got, want, want_len);
}

/* Move exactly n queued bytes of from into to. */
static void forward(struct peer *from, struct peer *to, size_t n)
{
	while (n > 0) {
		const uint8_t *p;
		size_t k = yamux_output_peek(from->s, &p);

		assert_true(k > 0);
		k = k < n ? k : n;
		assert_int_equal(yamux_input(to->s, p, k, now), 0);
		yamux_output_consume(from->s, k);
		n -= k;
	}
}

static int feed_hex(struct peer *p, const char *hex)
{
	uint8_t buf[256];
	size_t n = unhex(buf, sizeof(buf), hex);

	return yamux_input(p->s, buf, n, now);
}

static void frame(uint8_t out[YAMUX_HEADER_LEN], uint8_t type, uint16_t flags,
		  uint32_t id, uint32_t length)
{
	struct yamux_header h = { 0, type, flags, id, length };

	yamux_header_encode(out, &h);
}

static int feed_frame(struct peer *p, uint8_t type, uint16_t flags,
		      uint32_t id, uint32_t length)
{
	uint8_t raw[YAMUX_HEADER_LEN];

	frame(raw, type, flags, id, length);
	return yamux_input(p->s, raw, sizeof(raw), now);
}

static uint32_t open_accepted(void)
{
	uint32_t id = yamux_open(client.s);

	assert_int_not_equal(id, 0);
	pump();
	assert_true(rec(&server, id)->opened);
	assert_true(rec(&client, id)->established);
	return id;
}

static size_t write_all(struct peer *p, uint32_t id, const void *d, size_t n)
{
	size_t done = 0, w;

	while (done < n && (w = yamux_write(p->s, id, (const uint8_t *)d + done,
					    n - done)) > 0)
		done += w;
	return done;
}

static struct yamux_config roomy(bool is_client)
{
	struct yamux_config c = yamux_config_default(is_client);

	c.max_output = 64 * MIB;	/* the queue is never the limit */
	return c;
}

/* Known answers: what hashicorp/yamux sends, byte for byte. */

static void header_codec(void **state)
{
	struct yamux_header h;
	uint8_t raw[YAMUX_HEADER_LEN], want[YAMUX_HEADER_LEN];

	(void)state;
	frame(raw, YAMUX_WINDOW_UPDATE, YAMUX_SYN | YAMUX_FIN, 0x01020304, 0xa0b0c0d0);
	unhex(want, sizeof(want), "00 01 0005 01020304 a0b0c0d0");
	assert_memory_equal(raw, want, sizeof(raw));
	yamux_header_decode(&h, want);
	assert_int_equal(h.version, 0);
	assert_int_equal(h.type, YAMUX_WINDOW_UPDATE);
	assert_int_equal(h.flags, YAMUX_SYN | YAMUX_FIN);
	assert_int_equal(h.stream_id, 0x01020304);
	assert_int_equal(h.length, 0xa0b0c0d0);
	assert_string_equal(yamux_strerror(-YAMUX_E_WINDOW),
			    "peer overran the receive window");
	assert_string_equal(yamux_strerror(YAMUX_E_WINDOW),
			    "peer overran the receive window");
	assert_string_equal(yamux_strerror(-1000), "unknown yamux error");
}

static void known_answer_session(void **state)
{
	(void)state;
	start_pair(NULL, NULL);

	/* Open: a window update with SYN, delta 0 (hashicorp's OpenStream
	 * with the default MaxStreamWindowSize of 256 KiB). */
	assert_int_equal(yamux_open(client.s), 1);
	expect_output(&client, "00 01 0001 00000001 00000000");
	assert_int_equal(feed_hex(&server, "00 01 0001 00000001 00000000"), 0);
	/* Accept: a window update with ACK, delta 0. */
	expect_output(&server, "00 01 0002 00000001 00000000");
	assert_int_equal(feed_hex(&client, "00 01 0002 00000001 00000000"), 0);
	assert_string_equal(client.log, "est 1;");

	/* Data: no flags once open. */
	assert_int_equal(yamux_write(client.s, 1, (const uint8_t *)"hello", 5), 5);
	expect_output(&client, "00 00 0000 00000001 00000005 68656c6c6f");
	/* Half-close and reset: window updates with FIN or RST. */
	yamux_close(client.s, 1);
	expect_output(&client, "00 01 0004 00000001 00000000");
	assert_int_equal(yamux_open(client.s), 3);
	yamux_reset(client.s, 3);
	expect_output(&client, "00 01 0001 00000003 00000000"
			       "00 01 0008 00000003 00000000");

	/* Ping: SYN with an opaque value, answered with ACK and the same. */
	assert_int_equal(yamux_tick(client.s, now), 0);
	expect_output(&client, "00 02 0001 00000000 00000001");
	assert_int_equal(feed_hex(&server, "00 02 0001 00000000 0000beef"), 0);
	expect_output(&server, "00 02 0002 00000000 0000beef");

	/* Go-away: stream 0, the code in the length. */
	yamux_goaway(server.s, YAMUX_GOAWAY_NORMAL);
	expect_output(&server, "00 03 0000 00000000 00000000");
}

/* A larger initial window goes out as the delta of the SYN or ACK, as
 * hashicorp does with a MaxStreamWindowSize above 256 KiB. */
static void known_answer_big_window(void **state)
{
	struct yamux_config c = roomy(true), s = roomy(false);

	(void)state;
	c.initial_window = 1 * MIB;
	s.initial_window = 512 * KIB;
	start_pair(&c, &s);
	assert_int_equal(yamux_open(client.s), 1);
	expect_output(&client, "00 01 0001 00000001 000c0000");
	assert_int_equal(feed_hex(&server, "00 01 0001 00000001 000c0000"), 0);
	expect_output(&server, "00 01 0002 00000001 00040000");
	assert_int_equal(feed_hex(&client, "00 01 0002 00000001 00040000"), 0);
	assert_int_equal(yamux_writable(client.s, 1), 512 * KIB);
	assert_int_equal(yamux_writable(server.s, 1), 1 * MIB);
}

/* Open, accept, data both ways, half-close each way, closed. */

static void open_data_close(void **state)
{
	uint32_t id;

	(void)state;
	start_pair(NULL, NULL);
	id = open_accepted();
	assert_int_equal(id, 1);
	assert_int_equal(yamux_write(client.s, id, (const uint8_t *)"ping?", 5), 5);
	pump();
	assert_int_equal(rec(&server, id)->len, 5);
	assert_memory_equal(rec(&server, id)->data, "ping?", 5);
	assert_int_equal(yamux_write(server.s, id, (const uint8_t *)"pong!!", 6), 6);
	pump();
	assert_memory_equal(rec(&client, id)->data, "pong!!", 6);

	/* Client half-closes; the server can still send. */
	yamux_close(client.s, id);
	assert_int_equal(yamux_write(client.s, id, (const uint8_t *)"x", 1), 0);
	pump();
	assert_true(rec(&server, id)->fin);
	assert_int_equal(rec(&server, id)->closed, 0);
	assert_int_equal(yamux_write(server.s, id, (const uint8_t *)"more", 4), 4);
	pump();
	assert_int_equal(rec(&client, id)->len, 10);
	assert_int_equal(rec(&client, id)->closed, 0);

	yamux_close(server.s, id);
	assert_int_equal(rec(&server, id)->closed, 1);
	assert_ptr_equal(rec(&server, id)->closed_user, rec(&server, id));
	pump();
	assert_true(rec(&client, id)->fin);
	assert_int_equal(rec(&client, id)->closed, 1);
	assert_null(yamux_stream_user(server.s, id));
	assert_string_equal(server.log, "open 1;data 1 5;fin 1;closed 1;");
	/* Consecutive data of one stream shows as one entry. */
	assert_string_equal(client.log, "est 1;data 1 10;fin 1;closed 1;");
	/* A second close is a no-op. */
	yamux_close(client.s, id);
	assert_int_equal(yamux_output_pending(client.s), 0);
}

/* The server opens too, with even ids, and a FIN can ride a data frame. */
static void server_opens_and_fin_with_data(void **state)
{
	uint32_t id;

	(void)state;
	start_pair(NULL, NULL);
	id = yamux_open(server.s);
	assert_int_equal(id, 2);
	assert_int_equal(yamux_open(server.s), 4);
	pump();
	assert_true(rec(&client, 2)->opened);
	assert_true(rec(&server, 2)->established);
	/* hashicorp never does, but spec.md allows SYN, data and FIN in one
	 * frame: open, data, then fin. */
	assert_int_equal(feed_hex(&server, "00 00 0005 00000007 00000002 6869"), 0);
	assert_string_equal(server.log, "est 2;est 4;open 7;data 7 2;fin 7;");
	expect_output(&server, "00 01 0002 00000007 00000000");
}

static void reset_both_ways(void **state)
{
	uint32_t a, b;

	(void)state;
	start_pair(NULL, NULL);
	a = open_accepted();
	b = open_accepted();
	yamux_reset(client.s, a);
	assert_int_equal(rec(&client, a)->closed, 1);
	assert_false(rec(&client, a)->reset);	/* our own reset: closed only */
	pump();
	assert_true(rec(&server, a)->reset);
	assert_int_equal(rec(&server, a)->closed, 1);
	assert_int_equal(yamux_write(server.s, a, (const uint8_t *)"x", 1), 0);

	yamux_reset(server.s, b);
	pump();
	assert_true(rec(&client, b)->reset);
	assert_int_equal(rec(&client, b)->closed, 1);
	/* The reset stream is forgotten: data for it is answered with RST. */
	assert_int_equal(feed_hex(&client, "00 00 0000 00000003 00000001 41"), 0);
	expect_output(&client, "00 01 0008 00000003 00000000");
}

static void refused_open(void **state)
{
	uint32_t id;

	(void)state;
	start_pair(NULL, NULL);
	server.refuse = true;
	id = yamux_open(client.s);
	/* Data may follow the SYN before the answer; it is dropped. */
	assert_int_equal(yamux_write(client.s, id, (const uint8_t *)"early", 5), 5);
	pump();
	assert_string_equal(server.log, "open 1;");
	assert_int_equal(rec(&server, id)->closed, 0);
	assert_true(rec(&client, id)->reset);
	assert_int_equal(rec(&client, id)->closed, 1);
	assert_false(rec(&client, id)->established);
	/* Its pending open was given back: more opens go. */
	server.refuse = false;
	assert_int_equal(open_accepted(), 3);
}

/* Unknown streams: data gets RST (and its payload skipped), a window
 * update or RST gets nothing, so two sessions cannot echo forever. */
static void rst_for_unknown_stream(void **state)
{
	(void)state;
	start_pair(NULL, NULL);
	assert_int_equal(feed_hex(&server, "00 00 0000 00000009 00000003 616263"), 0);
	expect_output(&server, "00 01 0008 00000009 00000000");
	assert_int_equal(feed_hex(&server, "00 00 0000 00000004 00000000"), 0);
	expect_output(&server, "00 01 0008 00000004 00000000");
	assert_int_equal(feed_hex(&server, "00 01 0000 00000009 00001000"), 0);
	assert_int_equal(feed_hex(&server, "00 01 0008 00000009 00000000"), 0);
	assert_int_equal(feed_hex(&server, "00 00 0008 00000009 00000001 7a"), 0);
	assert_int_equal(feed_hex(&server, "00 01 0004 00000009 00000000"), 0);
	expect_output(&server, "");
	assert_int_equal(server.log[0], '\0');
}

/* 200 streams at once, each with its own bytes both ways. */

static uint8_t pattern(uint32_t id, size_t i, bool up)
{
	return (uint8_t)(id * 31 + i * 7 + (i >> 9) + (up ? 0 : 101));
}

static size_t stream_len(uint32_t id)
{
	return 3000 + (size_t)id * 997 % 70000;
}

static void many_streams(void **state)
{
	enum { N = 200 };
	uint32_t ids[N];
	size_t up_off[N] = { 0 }, down_off[N] = { 0 };
	bool closed[N] = { false };
	uint8_t buf[4096];
	bool busy = true;

	(void)state;
	start_pair(NULL, NULL);
	for (int i = 0; i < N; i++) {
		ids[i] = yamux_open(client.s);
		assert_int_equal(ids[i], 2 * i + 1);
	}
	pump();
	for (int i = 0; i < N; i++)
		assert_true(rec(&client, ids[i])->established);
	/* Interleave writes across all streams, a slice each turn, the
	 * queue limit (256 KiB) bounding each turn. */
	while (busy) {
		busy = false;
		for (int i = 0; i < N; i++) {
			uint32_t id = ids[i];
			size_t len = stream_len(id), n;

			for (n = 0; up_off[i] + n < len && n < 4096; n++)
				buf[n] = pattern(id, up_off[i] + n, true);
			up_off[i] += yamux_write(client.s, id, buf, n);
			for (n = 0; down_off[i] + n < len && n < 4096; n++)
				buf[n] = pattern(id, down_off[i] + n, false);
			down_off[i] += yamux_write(server.s, id, buf, n);
			if (up_off[i] < len || down_off[i] < len) {
				busy = true;
			} else if (!closed[i]) {
				/* FIN queues behind the data. */
				yamux_close(client.s, id);
				yamux_close(server.s, id);
				closed[i] = true;
			}
		}
		pump();
	}
	for (int i = 0; i < N; i++) {
		uint32_t id = ids[i];
		size_t len = stream_len(id);

		assert_int_equal(rec(&server, id)->len, len);
		assert_int_equal(rec(&client, id)->len, len);
		for (size_t j = 0; j < len; j++) {
			assert_int_equal(rec(&server, id)->data[j], pattern(id, j, true));
			assert_int_equal(rec(&client, id)->data[j], pattern(id, j, false));
		}
		assert_int_equal(rec(&client, id)->closed, 1);
		assert_int_equal(rec(&server, id)->closed, 1);
	}
	assert_int_equal(client.closed_total, N);
	assert_int_equal(server.closed_total, N);
}

/* Windows */

static void window_blocks_writer(void **state)
{
	struct yamux_config c = roomy(true), s = roomy(false);
	static uint8_t big[1 * MIB];
	uint32_t id;

	(void)state;
	start_pair(&c, &s);
	server.consume = false;
	id = open_accepted();
	assert_int_equal(yamux_writable(client.s, id), 256 * KIB);
	assert_int_equal(write_all(&client, id, big, sizeof(big)), 256 * KIB);
	assert_int_equal(yamux_writable(client.s, id), 0);
	pump();
	assert_int_equal(rec(&server, id)->len, 256 * KIB);
	assert_int_equal(yamux_write(client.s, id, big, 1), 0);
	assert_false(rec(&client, id)->writable);

	/* Less than half the window consumed: no update yet. */
	yamux_consumed(server.s, id, 100 * KIB, now);
	assert_int_equal(yamux_output_pending(server.s), 0);
	yamux_consumed(server.s, id, 28 * KIB, now);
	expect_output(&server, "00 01 0000 00000001 00020000");
	assert_int_equal(feed_hex(&client, "00 01 0000 00000001 00020000"), 0);
	assert_true(rec(&client, id)->writable);
	assert_int_equal(yamux_writable(client.s, id), 128 * KIB);

	/* The rest, and more than was consumed never fits. */
	yamux_consumed(server.s, id, 1 * MIB, now);
	pump();
	assert_int_equal(yamux_writable(client.s, id), 256 * KIB);
	assert_int_equal(write_all(&client, id, big, sizeof(big)), 256 * KIB);
	pump();
	assert_int_equal(rec(&server, id)->len, 512 * KIB);
}

/* Stream bytes through a pair until total has arrived; returns the
 * largest window the writer was ever given. */
static size_t stream_through(uint32_t id, size_t total, uint64_t step_ms)
{
	static uint8_t chunk[64 * KIB];
	size_t sent = 0, widest = 0;

	while (sent < total) {
		size_t w = yamux_writable(client.s, id);

		if (w > widest)
			widest = w;
		while (sent < total && yamux_writable(client.s, id) > 0) {
			size_t n = total - sent < sizeof(chunk) ? total - sent : sizeof(chunk);

			sent += yamux_write(client.s, id, chunk, n);
		}
		now += step_ms;
		pump();
	}
	assert_int_equal(rec(&server, id)->len, total);
	return widest;
}

/* A keepalive ping each way, each answered rtt ms later. */
static void measure_rtt(uint64_t rtt)
{
	int rc = 0;

	assert_int_equal(yamux_tick(client.s, now), 0);
	transfer(&client, &server, ALL, &rc);
	now += rtt;
	transfer(&server, &client, ALL, &rc);
	assert_int_equal(yamux_tick(server.s, now), 0);
	transfer(&server, &client, ALL, &rc);
	now += rtt;
	transfer(&client, &server, ALL, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(yamux_rtt_ms(client.s), rtt);
	assert_int_equal(yamux_rtt_ms(server.s), rtt);
}

static void window_grows_when_consumed_promptly(void **state)
{
	struct yamux_config c = roomy(true), s = roomy(false);
	uint32_t id;

	(void)state;
	start_pair(&c, &s);
	measure_rtt(40);
	id = open_accepted();
	/* Half a window consumed within 2 RTT of the last credit: doubled,
	 * up to max_window and never beyond. */
	size_t widest = stream_through(id, 64 * MIB, 0);

	assert_true(widest > 8 * MIB);
	assert_true(widest <= 16 * MIB);
	assert_true(yamux_writable(client.s, id) <= 16 * MIB);
}

/* The receiver's max_window (postern-tunneld's stream_buffer) is where
 * growth stops: a 1 MiB cap holds however fast the reader drains. */
static void window_stops_at_max_window(void **state)
{
	struct yamux_config c = roomy(true), s = roomy(false);
	uint32_t id;

	(void)state;
	s.max_window = 1 * MIB;
	start_pair(&c, &s);
	measure_rtt(40);
	id = open_accepted();
	assert_int_equal(stream_through(id, 32 * MIB, 0), 1 * MIB);
	assert_true(yamux_writable(client.s, id) <= 1 * MIB);
}

/* A window's worth takes 100 ms to go round, 2.5 RTT: not grown. */
static void window_stays_for_a_slow_round(void **state)
{
	struct yamux_config c = roomy(true), s = roomy(false);
	uint32_t id;

	(void)state;
	start_pair(&c, &s);
	measure_rtt(40);
	id = open_accepted();
	assert_int_equal(stream_through(id, 4 * MIB, 100), 256 * KIB);
}

/* A reader that consumes a second's worth at once, in 64 KiB pieces:
 * half a window goes in no time, but a whole one takes a second. */
static void window_stays_for_a_bursty_reader(void **state)
{
	struct yamux_config c = roomy(true), s = roomy(false);
	static uint8_t chunk[64 * KIB];
	size_t consumed = 0;
	uint32_t id;

	(void)state;
	start_pair(&c, &s);
	measure_rtt(40);
	server.consume = false;
	id = open_accepted();
	for (int round = 0; round < 16; round++) {
		assert_int_equal(yamux_writable(client.s, id), 256 * KIB);
		while (yamux_write(client.s, id, chunk, sizeof(chunk)) > 0)
			;
		pump();
		now += 1000;
		for (; consumed < rec(&server, id)->len; consumed += sizeof(chunk))
			yamux_consumed(server.s, id, sizeof(chunk), now);
		pump();
	}
	assert_int_equal(rec(&server, id)->len, 16 * 256 * KIB);
}

/* A peer that answers pings late sets a round trip of 20 s, then sends
 * 16 KiB every 10 ms: every window goes through the reader "within two
 * round trips", but the peer never waited for credit. Its ping timing
 * alone must not grow the window: credit stays what was consumed. */
static void window_stays_for_a_late_ping_answer(void **state)
{
	struct yamux_config c = roomy(true), s = roomy(false);
	static uint8_t chunk[16 * KIB];
	size_t widest = 0;
	uint32_t id;

	(void)state;
	start_pair(&c, &s);
	measure_rtt(20000);
	id = open_accepted();
	for (int i = 0; i < 256; i++) {
		size_t w = yamux_writable(client.s, id);

		if (w > widest)
			widest = w;
		assert_int_equal(yamux_write(client.s, id, chunk, sizeof(chunk)),
				 sizeof(chunk));
		now += 10;
		pump();
	}
	assert_int_equal(rec(&server, id)->len, 256 * sizeof(chunk));
	assert_int_equal(widest, 256 * KIB);
}

/* A link with delay: what each side writes arrives one_way ms later. */
struct delayed {
	uint64_t due;
	size_t len;
	uint8_t *data;
};

static size_t delay_take(struct peer *from, struct delayed *q, size_t n,
			 uint64_t one_way)
{
	const uint8_t *p;
	size_t len;

	while ((len = yamux_output_peek(from->s, &p)) > 0) {
		assert_true(n < 8192);
		q[n].due = now + one_way;
		q[n].len = len;
		q[n].data = malloc(len);
		assert_non_null(q[n].data);
		memcpy(q[n].data, p, len);
		yamux_output_consume(from->s, len);
		n++;
	}
	return n;
}

static size_t delay_give(struct peer *to, struct delayed *q, size_t *head,
			 size_t n)
{
	for (; *head < n && q[*head].due <= now; (*head)++) {
		assert_int_equal(yamux_input(to->s, q[*head].data, q[*head].len, now), 0);
		free(q[*head].data);
	}
	return n;
}

/* A window-limited sender over a link of 50 ms each way: optionally a
 * bottleneck of bytes_per_ms, one piece of output in lose_every lost and
 * sent again lost_ms later (TCP: what follows waits for it), and both
 * ends ticked every ms (pings). The widest window the sender was given. */
struct sim_link {
	int ms;
	uint32_t bytes_per_ms;		/* 0: no bottleneck */
	unsigned int lose_every;	/* 0: no loss */
	uint64_t lost_ms;
	bool tick;
};

static size_t widest_over(const struct sim_link *l)
{
	struct yamux_config c = roomy(true), s = roomy(false);
	static struct delayed up[8192], down[8192];
	static uint8_t chunk[64 * KIB];
	size_t nu = 0, hu = 0, nd = 0, hd = 0, widest = 0;
	uint64_t link_free = 0;
	uint32_t id;

	start_pair(&c, &s);
	measure_rtt(100);
	id = open_accepted();
	for (int ms = 0; ms < l->ms; ms++) {
		size_t w = yamux_writable(client.s, id), from = nu;

		if (w > widest)
			widest = w;
		while (yamux_writable(client.s, id) > 0)
			assert_true(yamux_write(client.s, id, chunk, sizeof(chunk)) > 0);
		nu = delay_take(&client, up, nu, 50);
		for (size_t i = from; l->bytes_per_ms && i < nu; i++) {
			uint64_t depart = link_free > now ? link_free : now;

			link_free = depart + up[i].len / l->bytes_per_ms;
			up[i].due = link_free + 50;
			if (l->lose_every && i % l->lose_every == l->lose_every - 1)
				up[i].due += l->lost_ms;
			if (i > 0 && up[i].due < up[i - 1].due)
				up[i].due = up[i - 1].due;	/* in order */
		}
		if (l->tick) {
			assert_int_equal(yamux_tick(server.s, now), 0);
			assert_int_equal(yamux_tick(client.s, now), 0);
		}
		nd = delay_take(&server, down, nd, 50);
		now++;
		delay_give(&server, up, &hu, nu);
		delay_give(&client, down, &hd, nd);
	}
	for (; hu < nu; hu++)
		free(up[hu].data);
	for (; hd < nd; hd++)
		free(down[hd].data);
	return widest;
}

/* A sender the window limits, over 50 ms each way: credit goes out at
 * half a window, so data is still arriving when it leaves; the round trip
 * that counts is the one to the data beyond the old window's edge, and
 * the window grows (it stayed at 256 KiB when the next data after a
 * credit was taken for its answer). */
static void window_grows_over_a_long_link(void **state)
{
	const struct sim_link l = { .ms = 3000 };

	(void)state;
	assert_true(widest_over(&l) >= 2 * MIB);
}

/* A long link with a bottleneck (4 MB/s, 50 ms each way), losing one
 * piece of output in three: TCP delivers in order, so the retransmission,
 * a round trip later, holds back all that follows it. The data itself
 * says the window limits: the sender stops at the edge of its window and
 * answers each credit within a round trip (pings, refreshed while data
 * flows, count the queue it waits in). Yet no whole window ever goes
 * through within 1.5 round trips, the test that alone kept it at 256 KiB
 * (and at a quarter of the link's rate). */
static void window_grows_through_a_lossy_link(void **state)
{
	const struct sim_link l = { .ms = 6000, .bytes_per_ms = 4096,
				    .lose_every = 3, .lost_ms = 100, .tick = true };

	(void)state;
	assert_true(widest_over(&l) >= 1 * MIB);
}

static void window_stays_without_rtt(void **state)
{
	struct yamux_config c = roomy(true), s = roomy(false);
	uint32_t id;

	(void)state;
	start_pair(&c, &s);
	id = open_accepted();
	assert_int_equal(stream_through(id, 4 * MIB, 0), 256 * KIB);
}

/* Malformed input: each ends the session with its own error, after a
 * GoAway(protocol error); the same error comes back on every later call.
 * Delivered whole and one byte at a time. */

struct malformed {
	const char *name;
	const char *hex;
	enum yamux_error error;
};

static const struct malformed malformed_cases[] = {
	{ "bad version", "01 01 0000 00000001 00000001", YAMUX_E_VERSION },
	{ "unknown type", "00 04 0000 00000001 00000000", YAMUX_E_TYPE },
	{ "oversized length", "00 00 0000 00000001 01000001", YAMUX_E_TOO_LONG },
	{ "data beyond window", "00 00 0000 00000001 00040001", YAMUX_E_WINDOW },
	{ "syn data beyond window", "00 00 0001 00000003 00040001", YAMUX_E_WINDOW },
	{ "window overflow", "00 01 0000 00000001 fffc0000", YAMUX_E_WINDOW_OVERFLOW },
	{ "syn window overflow", "00 01 0001 00000003 fffc0000", YAMUX_E_WINDOW_OVERFLOW },
	{ "data on stream 0", "00 00 0000 00000000 00000000", YAMUX_E_STREAM_ZERO },
	{ "window update on stream 0", "00 01 0001 00000000 00000000", YAMUX_E_STREAM_ZERO },
	{ "ping on a stream", "00 02 0001 00000001 00000000", YAMUX_E_NOT_STREAM_ZERO },
	{ "go-away on a stream", "00 03 0000 00000001 00000000", YAMUX_E_NOT_STREAM_ZERO },
	{ "syn for an open stream", "00 01 0001 00000001 00000000", YAMUX_E_DUPLICATE },
	{ "syn with our parity", "00 01 0001 00000002 00000000", YAMUX_E_PARITY },
	{ "fin twice", "00 01 0004 00000001 00000000 00 01 0004 00000001 00000000",
	  YAMUX_E_AFTER_FIN },
	{ "data after fin", "00 01 0004 00000001 00000000 00 00 0000 00000001 00000001 41",
	  YAMUX_E_AFTER_FIN },
};

static void check_malformed(const struct malformed *m, size_t chunk)
{
	uint8_t bad[128], out[64];
	size_t len = unhex(bad, sizeof(bad), m->hex), n;
	int rc = 0;

	start_pair(NULL, NULL);
	open_accepted();
	for (size_t off = 0; off < len && rc == 0; off += chunk)
		rc = yamux_input(server.s, bad + off,
				 len - off < chunk ? len - off : chunk, now);
	if (rc != -(int)m->error)
		fail_msg("%s: %d (%s)", m->name, rc, yamux_strerror(rc));
	assert_int_equal(yamux_error(server.s), m->error);
	n = drain(&server, out, sizeof(out));
	assert_true(n >= YAMUX_HEADER_LEN);
	assert_memory_equal(out + n - YAMUX_HEADER_LEN,
			    "\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01",
			    YAMUX_HEADER_LEN);
	/* Nothing was answered after it. */
	/* Sticky, and the session takes nothing more. */
	assert_int_equal(feed_hex(&server, "00 02 0001 00000000 00000001"),
			 -(int)m->error);
	assert_int_equal(yamux_tick(server.s, now), -(int)m->error);
	assert_int_equal(yamux_open(server.s), 0);
	assert_int_equal(yamux_write(server.s, 1, (const uint8_t *)"x", 1), 0);
	assert_int_equal(yamux_output_pending(server.s), 0);
	teardown(NULL);
}

static void malformed_input(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(malformed_cases) / sizeof(malformed_cases[0]); i++) {
		check_malformed(&malformed_cases[i], ALL);
		check_malformed(&malformed_cases[i], 1);
	}
}

static void window_overrun_across_frames(void **state)
{
	uint8_t hdr[YAMUX_HEADER_LEN];
	static uint8_t payload[200 * KIB];
	uint32_t id;

	(void)state;
	start_pair(NULL, NULL);
	server.consume = false;
	id = open_accepted();
	frame(hdr, YAMUX_DATA, 0, id, sizeof(payload));
	assert_int_equal(yamux_input(server.s, hdr, sizeof(hdr), now), 0);
	assert_int_equal(yamux_input(server.s, payload, sizeof(payload), now), 0);
	/* 56 KiB are left of the window. */
	assert_int_equal(feed_frame(&server, YAMUX_DATA, 0, id, 56 * KIB + 1),
			 -YAMUX_E_WINDOW);
	expect_output(&server, "00 03 0000 00000000 00000001");
}

/* The client side sees a go-away with an error code as the end. */
static void goaway_error_ends_session(void **state)
{
	(void)state;
	start_pair(NULL, NULL);
	assert_int_equal(feed_hex(&client, "00 03 0000 00000000 00000002"), -YAMUX_E_GOAWAY);
	assert_int_equal(client.goaway_code, 2);
	expect_output(&client, "");
}

/* Every frame type, one byte at a time, the same events as whole. */

static void run_script(size_t chunk, char *client_log, char *server_log)
{
	struct yamux_config c = roomy(true), s = roomy(false);
	static uint8_t zeros[256 * KIB];
	uint32_t a, b;

	start_pair(&c, &s);
	server.consume = false;
	a = yamux_open(client.s);
	b = yamux_open(client.s);
	assert_int_equal(pump_chunked(chunk), 0);
	assert_int_equal(yamux_write(client.s, a, (const uint8_t *)"abcdefgh", 8), 8);
	assert_int_equal(yamux_write(server.s, b, (const uint8_t *)"xyz", 3), 3);
	assert_int_equal(pump_chunked(chunk), 0);
	yamux_consumed(server.s, a, 200 * KIB, now);	/* more than had come */
	assert_int_equal(write_all(&client, a, zeros, sizeof(zeros)),
			 256 * KIB - 8);
	assert_int_equal(pump_chunked(chunk), 0);
	yamux_consumed(server.s, a, 256 * KIB, now);
	assert_int_equal(yamux_tick(client.s, now), 0);
	yamux_close(client.s, a);
	yamux_reset(server.s, b);
	assert_int_equal(pump_chunked(chunk), 0);
	yamux_close(server.s, a);
	yamux_goaway(server.s, YAMUX_GOAWAY_NORMAL);
	assert_int_equal(pump_chunked(chunk), 0);
	assert_int_not_equal(yamux_rtt_ms(client.s), UINT64_MAX);
	strcpy(client_log, client.log);
	strcpy(server_log, server.log);
	teardown(NULL);
}

static void byte_at_a_time(void **state)
{
	char whole_c[512], whole_s[512], bytes_c[512], bytes_s[512];

	(void)state;
	run_script(ALL, whole_c, whole_s);
	run_script(1, bytes_c, bytes_s);
	assert_string_equal(whole_s, "open 1;open 3;data 1 262144;closed 3;"
			    "fin 1;closed 1;");
	/* No writable 1: the close came first, and nothing is owed to a
	 * closed writer. */
	assert_string_equal(whole_c, "est 1;est 3;data 3 3;rst 3;"
			    "closed 3;fin 1;closed 1;goaway 0;");
	assert_string_equal(bytes_s, whole_s);
	assert_string_equal(bytes_c, whole_c);
}

/* A split header is held, payload bytes pass as they come. */
static void split_at_every_byte(void **state)
{
	uint8_t msg[64];
	size_t len = unhex(msg, sizeof(msg),
			   "00 01 0001 00000001 00000000"
			   "00 00 0000 00000001 00000004 61626364"
			   "00 02 0001 00000000 00000007");

	(void)state;
	for (size_t cut = 0; cut <= len; cut++) {
		start_pair(NULL, NULL);
		assert_int_equal(yamux_input(server.s, msg, cut, now), 0);
		assert_int_equal(yamux_input(server.s, msg + cut, len - cut, now), 0);
		assert_int_equal(rec(&server, 1)->len, 4);
		assert_memory_equal(rec(&server, 1)->data, "abcd", 4);
		expect_output(&server, "00 01 0002 00000001 00000000"
				       "00 02 0002 00000000 00000007");
		teardown(NULL);
	}
}

/* The application resets a stream in the middle of a frame's payload:
 * the rest is skipped, and the next frame parses. */
static void reset_inside_on_data(void **state)
{
	uint8_t msg[64];
	size_t len = unhex(msg, sizeof(msg),
			   "00 00 0000 00000001 00000006 616263646566"
			   "00 02 0001 00000000 00000009");

	(void)state;
	start_pair(NULL, NULL);
	open_accepted();
	server.reset_on_data = 1;
	for (size_t i = 0; i < len; i++)
		assert_int_equal(yamux_input(server.s, msg + i, 1, now), 0);
	assert_int_equal(rec(&server, 1)->len, 1);
	assert_int_equal(rec(&server, 1)->closed, 1);
	expect_output(&server, "00 01 0008 00000001 00000000"
			       "00 02 0002 00000000 00000009");
}

/* Ping and keepalive */

static void ping_round_trip(void **state)
{
	(void)state;
	start_pair(NULL, NULL);
	assert_int_equal(yamux_rtt_ms(client.s), UINT64_MAX);
	assert_int_equal(yamux_next_tick(client.s), 0);
	assert_int_equal(yamux_tick(client.s, now), 0);
	assert_int_equal(yamux_next_tick(client.s), now + 30000);
	expect_output(&client, "00 02 0001 00000000 00000001");
	assert_int_equal(feed_hex(&server, "00 02 0001 00000000 00000001"), 0);
	now += 25;
	/* A stale answer is ignored. */
	assert_int_equal(feed_hex(&client, "00 02 0002 00000000 00000063"), 0);
	assert_int_equal(yamux_rtt_ms(client.s), UINT64_MAX);
	pump();
	assert_int_equal(yamux_rtt_ms(client.s), 25);
	/* Next ping one interval after the last. */
	assert_int_equal(yamux_next_tick(client.s), now - 25 + 20000);
	assert_int_equal(yamux_tick(client.s, now + 10000), 0);
	assert_int_equal(yamux_output_pending(client.s), 0);
	now += 19975;
	assert_int_equal(yamux_tick(client.s, now), 0);
	expect_output(&client, "00 02 0001 00000000 00000002");
	/* Smoothed: 7/8 of the old, 1/8 of the new. */
	now += 105;
	assert_int_equal(feed_hex(&client, "00 02 0002 00000000 00000002"), 0);
	assert_int_equal(yamux_rtt_ms(client.s), (7 * 25 + 105) / 8);
}

static void keepalive_timeout(void **state)
{
	(void)state;
	start_pair(NULL, NULL);
	assert_int_equal(yamux_tick(client.s, now), 0);
	expect_output(&client, "00 02 0001 00000000 00000001");
	/* No answer; one ping at a time. */
	assert_int_equal(yamux_tick(client.s, now + 29999), 0);
	assert_int_equal(yamux_output_pending(client.s), 0);
	assert_int_equal(yamux_tick(client.s, now + 30000), -YAMUX_E_KEEPALIVE);
	assert_int_equal(yamux_error(client.s), YAMUX_E_KEEPALIVE);
	assert_int_equal(yamux_next_tick(client.s), UINT64_MAX);
	assert_int_equal(yamux_open(client.s), 0);
	/* No go-away: the peer is not listening. */
	assert_int_equal(yamux_output_pending(client.s), 0);
}

/* An open the peer neither answers nor outtalks: the path is gone. */
static void silent_peer_ends_a_waiting_open(void **state)
{
	struct yamux_config c = yamux_config_default(true);
	uint64_t t0;

	(void)state;
	c.keepalive_ms = 0;
	start_pair(&c, NULL);
	assert_int_equal(yamux_next_tick(client.s), UINT64_MAX);
	now += 60000;	/* idle a long while: the wait starts at the open */
	assert_int_equal(yamux_open(client.s), 1);
	assert_int_equal(yamux_tick(client.s, now), 0);
	t0 = now;
	assert_int_equal(yamux_next_tick(client.s), t0 + 6000);
	assert_int_equal(yamux_tick(client.s, t0 + 5999), 0);
	assert_int_equal(yamux_tick(client.s, t0 + 6000), -YAMUX_E_NO_ANSWER);
	assert_int_equal(yamux_error(client.s), YAMUX_E_NO_ANSWER);
	assert_int_equal(yamux_next_tick(client.s), UINT64_MAX);
	assert_string_equal(yamux_strerror(YAMUX_E_NO_ANSWER),
			    "no answer from the peer to a new stream");
}

/* Anything from the peer shows the path alive, ACK or not: on a slow
 * link the ACK queues behind the data coming our way. */
static void a_talking_peer_keeps_a_waiting_open(void **state)
{
	struct yamux_config c = yamux_config_default(true);
	uint64_t t0;

	(void)state;
	c.keepalive_ms = 0;
	start_pair(&c, NULL);
	assert_int_equal(yamux_open(client.s), 1);
	assert_int_equal(yamux_tick(client.s, now), 0);
	t0 = now;
	now = t0 + 5000;
	assert_int_equal(feed_hex(&client, "00 02 0001 00000000 00000007"), 0);
	assert_int_equal(yamux_next_tick(client.s), t0 + 11000);
	assert_int_equal(yamux_tick(client.s, t0 + 10999), 0);
	/* The answer ends the wait: no deadline at all. */
	now = t0 + 10999;
	assert_int_equal(feed_hex(&client, "00 01 0002 00000001 00000000"), 0);
	assert_int_equal(yamux_next_tick(client.s), UINT64_MAX);
	assert_int_equal(yamux_tick(client.s, t0 + 600000), 0);
}

/* On a long path the limit is four round trips; 0 turns it off. */
static void a_waiting_open_gets_four_round_trips(void **state)
{
	struct yamux_config c = yamux_config_default(true);
	uint64_t t0;

	(void)state;
	start_pair(NULL, NULL);
	measure_rtt(2000);
	assert_int_equal(yamux_open(client.s), 1);
	assert_int_equal(yamux_tick(client.s, now), 0);
	t0 = now;
	assert_int_equal(yamux_tick(client.s, t0 + 7999), 0);
	assert_int_equal(yamux_tick(client.s, t0 + 8000), -YAMUX_E_NO_ANSWER);
	teardown(NULL);
	c.keepalive_ms = 0;
	c.answer_timeout_ms = 0;
	start_pair(&c, NULL);
	assert_int_equal(yamux_open(client.s), 1);
	assert_int_equal(yamux_next_tick(client.s), UINT64_MAX);
	assert_int_equal(yamux_tick(client.s, now + 600000), 0);
}

/* While data comes in, a ping a second keeps the round trip current;
 * idle, the keepalive's 20 s again. */
static void pings_each_second_while_data_flows(void **state)
{
	uint32_t id;

	(void)state;
	start_pair(NULL, NULL);
	id = open_accepted();
	assert_int_equal(yamux_tick(server.s, now), 0);
	expect_output(&server, "00 02 0001 00000000 00000001");
	assert_int_equal(feed_hex(&client, "00 02 0001 00000000 00000001"), 0);
	pump();
	/* No data yet: nothing a second on. */
	assert_int_equal(yamux_next_tick(server.s), now + 20000);
	now += 1000;
	assert_int_equal(yamux_tick(server.s, now), 0);
	assert_int_equal(yamux_output_pending(server.s), 0);
	/* Data: the next ping a second after the last. */
	assert_int_equal(yamux_write(client.s, id, (const uint8_t *)"x", 1), 1);
	pump();
	assert_int_equal(yamux_next_tick(server.s), now);
	assert_int_equal(yamux_tick(server.s, now), 0);
	expect_output(&server, "00 02 0001 00000000 00000002");
	assert_int_equal(feed_hex(&client, "00 02 0001 00000000 00000002"), 0);
	pump();
	/* Idle again. */
	assert_int_equal(yamux_next_tick(server.s), now + 20000);
}

static void keepalive_off(void **state)
{
	struct yamux_config c = yamux_config_default(true);

	(void)state;
	c.keepalive_ms = 0;
	start_pair(&c, NULL);
	assert_int_equal(yamux_next_tick(client.s), UINT64_MAX);
	assert_int_equal(yamux_tick(client.s, now + 1000000), 0);
	assert_int_equal(yamux_output_pending(client.s), 0);
}

/* Go-away */

static void goaway_blocks_opens(void **state)
{
	uint32_t id;

	(void)state;
	start_pair(NULL, NULL);
	id = open_accepted();
	yamux_goaway(server.s, YAMUX_GOAWAY_NORMAL);
	yamux_goaway(server.s, YAMUX_GOAWAY_INTERNAL);	/* once only */
	assert_int_equal(yamux_output_pending(server.s), YAMUX_HEADER_LEN);
	assert_int_equal(yamux_open(server.s), 0);
	pump();
	assert_true(client.got_goaway);
	assert_int_equal(client.goaway_code, 0);
	assert_int_equal(yamux_open(client.s), 0);
	/* The stream that was open goes on. */
	assert_int_equal(yamux_write(client.s, id, (const uint8_t *)"still", 5), 5);
	assert_int_equal(yamux_write(server.s, id, (const uint8_t *)"here", 4), 4);
	pump();
	assert_int_equal(rec(&server, id)->len, 5);
	assert_int_equal(rec(&client, id)->len, 4);
	/* A server that went away refuses a SYN sent regardless. */
	assert_int_equal(feed_hex(&server, "00 01 0001 00000009 00000000"), 0);
	expect_output(&server, "00 01 0008 00000009 00000000");
	assert_int_equal(server.opens, 1);
}

/* Limits */

static void max_streams(void **state)
{
	struct yamux_config c = yamux_config_default(true);
	struct yamux_config s = yamux_config_default(false);
	uint32_t ids[4];

	(void)state;
	c.max_streams = 4;
	s.max_streams = 3;
	start_pair(&c, &s);
	for (int i = 0; i < 4; i++)
		ids[i] = yamux_open(client.s);
	assert_int_equal(ids[3], 7);
	assert_int_equal(yamux_open(client.s), 0);	/* our own limit */
	pump();
	for (int i = 0; i < 3; i++)
		assert_true(rec(&client, ids[i])->established);
	/* The server's limit: refused with RST, on_open never asked. */
	assert_true(rec(&client, ids[3])->reset);
	assert_int_equal(server.opens, 3);
	/* A closed stream frees its place. */
	yamux_reset(client.s, ids[0]);
	pump();
	assert_int_equal(open_accepted(), 9);
}

static void max_pending_opens(void **state)
{
	struct yamux_config c = yamux_config_default(true);

	(void)state;
	c.max_pending_opens = 2;
	start_pair(&c, NULL);
	assert_int_equal(yamux_open(client.s), 1);
	assert_int_equal(yamux_open(client.s), 3);
	assert_int_equal(yamux_open(client.s), 0);
	pump();
	assert_int_equal(yamux_open(client.s), 5);
	assert_int_equal(yamux_open(client.s), 7);
	assert_int_equal(yamux_open(client.s), 0);
	/* A reset of an unacknowledged open gives its place back too. */
	yamux_reset(client.s, 7);
	assert_int_equal(yamux_open(client.s), 9);
}

/* The output queue is bounded; a short write is followed by on_writable
 * once the caller has drained it. */
static void output_queue_bound(void **state)
{
	struct yamux_config c = yamux_config_default(true);
	static uint8_t big[8192];
	uint32_t id;
	size_t n;

	(void)state;
	c.max_output = 4096;
	start_pair(&c, NULL);
	id = open_accepted();
	n = yamux_write(client.s, id, big, sizeof(big));
	assert_int_equal(n, 4096 - YAMUX_HEADER_LEN);
	assert_int_equal(yamux_write(client.s, id, big, 1), 0);
	assert_int_equal(yamux_writable(client.s, id), 0);
	assert_int_equal(yamux_open(client.s), 0);
	/* Control frames still go, past max_output. */
	yamux_close(client.s, id);
	assert_int_equal(yamux_output_pending(client.s), 4096 + YAMUX_HEADER_LEN);
	/* Closed in between: nothing owed to it. */
	forward(&client, &server, 3000);
	assert_false(rec(&client, id)->writable);
	pump();

	id = yamux_open(client.s);
	pump();
	assert_int_equal(write_all(&client, id, big, sizeof(big)), 4096 - YAMUX_HEADER_LEN);
	/* Drained less than half: no wake-up yet; then half. */
	forward(&client, &server, 2047);
	assert_false(rec(&client, id)->writable);
	forward(&client, &server, 953);
	assert_true(rec(&client, id)->writable);
	assert_int_equal(yamux_writable(client.s, id), 4096 - 1096 - YAMUX_HEADER_LEN);
}

/* A window update that finds the queue over half full: on_writable waits
 * for the queue too. */
static void writable_needs_window_and_queue(void **state)
{
	struct yamux_config c = yamux_config_default(true);
	static uint8_t big[4096];
	uint32_t id;
	size_t sent = 0;

	(void)state;
	c.max_output = 4096;
	start_pair(&c, NULL);
	server.consume = false;
	id = open_accepted();
	while (sent < 256 * KIB) {
		size_t n = yamux_write(client.s, id, big, sizeof(big));

		assert_int_not_equal(n, 0);
		sent += n;
		pump();
	}
	assert_int_equal(sent, 256 * KIB);
	rec(&client, id)->writable = false;
	assert_int_equal(yamux_write(client.s, id, big, 1), 0);
	/* Fill the queue past half with opens, then credit the window. */
	for (int i = 0; i < 200; i++)
		assert_int_not_equal(yamux_open(client.s), 0);
	yamux_consumed(server.s, id, 256 * KIB, now);
	expect_output(&server, "00 01 0000 00000001 00040000");
	assert_int_equal(feed_hex(&client, "00 01 0000 00000001 00040000"), 0);
	assert_false(rec(&client, id)->writable);
	assert_int_equal(yamux_writable(client.s, id), 4096 - 2400 - YAMUX_HEADER_LEN);
	forward(&client, &server, 2400 - 2048 - 1);
	assert_false(rec(&client, id)->writable);
	forward(&client, &server, 1);
	assert_true(rec(&client, id)->writable);
}

/* Legal frames that do nothing: SYN with RST, a stray ACK, unknown flag
 * bits, a ping answer nobody asked for, empty data, a zero delta. */
static void frames_that_change_nothing(void **state)
{
	uint32_t id;

	(void)state;
	start_pair(NULL, NULL);
	id = open_accepted();
	client.log[0] = server.log[0] = '\0';
	assert_int_equal(feed_hex(&server, "00 01 0009 00000003 00000000"), 0);
	assert_int_equal(feed_hex(&server, "00 00 0009 00000005 00000002 6869"), 0);
	assert_int_equal(feed_hex(&server, "00 01 0002 00000001 00000000"), 0);
	assert_int_equal(feed_hex(&server, "00 00 fff0 00000001 00000000"), 0);
	assert_int_equal(feed_hex(&server, "00 02 0000 00000000 00000001"), 0);
	assert_int_equal(feed_hex(&server, "00 02 0002 00000000 00000000"), 0);
	assert_int_equal(feed_hex(&server, "00 01 0000 00000001 00000000"), 0);
	assert_int_equal(feed_hex(&client, "00 01 0002 00000001 00000000"), 0);
	expect_output(&server, "");
	expect_output(&client, "");
	assert_string_equal(server.log, "");
	assert_string_equal(client.log, "");
	assert_int_equal(yamux_writable(client.s, id), 256 * KIB - YAMUX_HEADER_LEN);
	assert_int_equal(yamux_writable(server.s, id), 256 * KIB - YAMUX_HEADER_LEN);
	assert_int_equal(yamux_rtt_ms(server.s), UINT64_MAX);
}

/* A stream table under churn: 1000 streams, freed in a scattered order,
 * each still found by its id. */
static void stream_table_churn(void **state)
{
	struct yamux_config c = yamux_config_default(true);
	struct yamux_config s = yamux_config_default(false);
	enum { N = 1000 };
	static bool gone[2 * N + 2];

	(void)state;
	c.max_streams = s.max_streams = 2 * N;
	c.max_pending_opens = 2 * N;
	c.max_output = s.max_output = 1 * MIB;
	start_pair(&c, &s);
	memset(gone, 0, sizeof(gone));
	for (int i = 0; i < N; i++) {
		uint32_t id = yamux_open(client.s);

		assert_int_equal(id, 2 * i + 1);
		yamux_set_stream_user(client.s, id, rec(&client, id));
	}
	pump();
	for (uint32_t k = 0; k < N; k++) {
		uint32_t id = 2 * ((k * 7919) % N) + 1;

		assert_false(gone[id]);
		yamux_reset(client.s, id);
		gone[id] = true;
		if (k % 97 == 0) {
			for (uint32_t j = 1; j < 2 * N; j += 2) {
				void *want = gone[j] ? NULL : rec(&client, j);

				assert_ptr_equal(yamux_stream_user(client.s, j), want);
			}
		}
	}
	pump();
	assert_int_equal(client.closed_total, N);
	assert_int_equal(server.closed_total, N);
	for (uint32_t j = 1; j < 2 * N; j += 2)
		assert_null(yamux_stream_user(server.s, j));
}

/* Peer-chosen ids land anywhere in the table: collisions, long probe
 * runs, and deletions that must shift entries back. */
static void stream_table_scattered_ids(void **state)
{
	struct yamux_config s = yamux_config_default(false);
	enum { N = 1000 };
	static uint32_t ids[N];
	uint32_t x = 12345;
	uint8_t hdr[YAMUX_HEADER_LEN];

	(void)state;
	s.max_streams = N;
	s.max_output = 1 * MIB;
	start_pair(NULL, &s);
	for (int i = 0; i < N; i++) {
		x = x * 1103515245 + 12345;
		ids[i] = (x >> 8) % (MAX_ID / 2) * 2 + 1;	/* odd, < MAX_ID */
		for (int j = 0; j < i; j++)
			if (ids[j] == ids[i])
				ids[i] = 0;
		if (!ids[i]) {
			i--;
			continue;
		}
		frame(hdr, YAMUX_WINDOW_UPDATE, YAMUX_SYN, ids[i], 0);
		assert_int_equal(yamux_input(server.s, hdr, sizeof(hdr), now), 0);
		yamux_set_stream_user(server.s, ids[i], &ids[i]);
	}
	assert_int_equal(server.opens, N);
	/* Full: one more is refused, without asking. */
	assert_int_equal(feed_frame(&server, YAMUX_WINDOW_UPDATE, YAMUX_SYN,
				    MAX_ID + 1, 0), 0);
	assert_int_equal(server.opens, N);
	for (uint32_t k = 0; k < N; k++) {
		uint32_t i = (k * 7919) % N;

		if (k % 2)
			yamux_reset(server.s, ids[i]);
		else
			assert_int_equal(feed_frame(&server, YAMUX_WINDOW_UPDATE,
						    YAMUX_RST, ids[i], 0), 0);
		assert_null(yamux_stream_user(server.s, ids[i]));
		if (k % 50 == 0)
			for (uint32_t m = k + 1; m < N; m++) {
				uint32_t j = (m * 7919) % N;

				assert_ptr_equal(yamux_stream_user(server.s, ids[j]),
						 &ids[j]);
			}
	}
	assert_int_equal(server.closed_total, N);
}

/* The output ring wraps when the caller drains part of it while frames
 * are being added; the byte stream stays whole. */
static void output_ring_wraps(void **state)
{
	struct yamux_config c = yamux_config_default(true);
	uint8_t buf[2048];
	size_t sent = 0;
	uint32_t id, x = 7;

	(void)state;
	c.max_output = 5000;
	start_pair(&c, NULL);
	id = open_accepted();
	while (sent < 200 * KIB) {
		size_t n = (x = x * 1103515245 + 12345) >> 21;	/* < 2048 */
		size_t k;

		for (size_t i = 0; i < n; i++)
			buf[i] = pattern(id, sent + i, true);
		sent += yamux_write(client.s, id, buf, n);
		k = yamux_output_pending(client.s);
		forward(&client, &server, k - k / 3);
	}
	pump();
	assert_int_equal(rec(&server, id)->len, sent);
	for (size_t i = 0; i < sent; i++)
		assert_int_equal(rec(&server, id)->data[i], pattern(id, i, true));
}

/* A peer that floods pings while the caller never drains: answers fill
 * the control reserve, then the session ends; memory stays bounded. */
static void output_overflow_ends_session(void **state)
{
	uint8_t ping[YAMUX_HEADER_LEN];
	size_t limit = 256 * KIB + 128 * KIB;
	int rc = 0, n = 0;

	(void)state;
	start_pair(NULL, NULL);
	frame(ping, YAMUX_PING, YAMUX_SYN, 0, 42);
	while (rc == 0 && n < 100000) {
		rc = yamux_input(server.s, ping, sizeof(ping), now);
		n++;
	}
	assert_int_equal(rc, -YAMUX_E_OUTPUT);
	assert_int_equal(n, limit / YAMUX_HEADER_LEN + 1);
	assert_int_equal(yamux_output_pending(server.s), limit);
	assert_int_equal(yamux_open(server.s), 0);
}

static void free_reports_open_streams(void **state)
{
	uint32_t a, b;

	(void)state;
	start_pair(NULL, NULL);
	a = open_accepted();
	b = yamux_open(client.s);
	yamux_set_stream_user(client.s, b, &client);
	yamux_free(client.s);
	client.s = NULL;
	assert_int_equal(rec(&client, a)->closed, 1);
	assert_int_equal(rec(&client, b)->closed, 1);
	assert_ptr_equal(rec(&client, b)->closed_user, &client);
	yamux_free(NULL);
}

static void bad_config(void **state)
{
	struct yamux_config c = yamux_config_default(true);

	(void)state;
	c.initial_window = 128 * KIB;
	assert_null(yamux_new(&c, &events, NULL));
	c = yamux_config_default(true);
	c.max_window = c.initial_window - 1;
	assert_null(yamux_new(&c, &events, NULL));
	c = yamux_config_default(true);
	c.keepalive_timeout_ms = 0;
	assert_null(yamux_new(&c, &events, NULL));
	c = yamux_config_default(true);
	c.max_output = YAMUX_HEADER_LEN;
	assert_null(yamux_new(&c, &events, NULL));
}

/* Without on_open every open is refused; without on_data, data is
 * dropped and its window credited at once. */
static void no_callbacks(void **state)
{
	struct yamux_config sd = yamux_config_default(false);
	struct yamux_events none = { 0 };
	static uint8_t payload[200 * KIB];
	uint8_t hdr[YAMUX_HEADER_LEN];

	(void)state;
	start_pair(NULL, NULL);
	yamux_free(server.s);
	server.s = yamux_new(&sd, &none, &server);
	assert_non_null(server.s);
	assert_int_equal(feed_hex(&server, "00 01 0001 00000001 00000000"), 0);
	expect_output(&server, "00 01 0008 00000001 00000000");

	yamux_free(server.s);
	none.on_open = on_open;
	server.s = yamux_new(&sd, &none, &server);
	assert_int_equal(feed_hex(&server, "00 01 0001 00000003 00000000"), 0);
	expect_output(&server, "00 01 0002 00000003 00000000");
	/* Two frames of 200 KiB: each is credited back as it passes, so
	 * the second fits the 256 KiB window. */
	frame(hdr, YAMUX_DATA, 0, 3, sizeof(payload));
	for (int i = 0; i < 2; i++) {
		assert_int_equal(yamux_input(server.s, hdr, sizeof(hdr), now), 0);
		assert_int_equal(yamux_input(server.s, payload, sizeof(payload), now), 0);
		expect_output(&server, "00 01 0000 00000003 00032000");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(header_codec),
		cmocka_unit_test_teardown(known_answer_session, teardown),
		cmocka_unit_test_teardown(known_answer_big_window, teardown),
		cmocka_unit_test_teardown(open_data_close, teardown),
		cmocka_unit_test_teardown(server_opens_and_fin_with_data, teardown),
		cmocka_unit_test_teardown(reset_both_ways, teardown),
		cmocka_unit_test_teardown(refused_open, teardown),
		cmocka_unit_test_teardown(rst_for_unknown_stream, teardown),
		cmocka_unit_test_teardown(many_streams, teardown),
		cmocka_unit_test_teardown(window_blocks_writer, teardown),
		cmocka_unit_test_teardown(window_grows_when_consumed_promptly, teardown),
		cmocka_unit_test_teardown(window_stops_at_max_window, teardown),
		cmocka_unit_test_teardown(window_stays_for_a_slow_round, teardown),
		cmocka_unit_test_teardown(window_stays_for_a_bursty_reader, teardown),
		cmocka_unit_test_teardown(window_stays_without_rtt, teardown),
		cmocka_unit_test_teardown(window_grows_over_a_long_link, teardown),
		cmocka_unit_test_teardown(window_grows_through_a_lossy_link, teardown),
		cmocka_unit_test_teardown(window_stays_for_a_late_ping_answer, teardown),
		cmocka_unit_test_teardown(window_overrun_across_frames, teardown),
		cmocka_unit_test(malformed_input),
		cmocka_unit_test_teardown(goaway_error_ends_session, teardown),
		cmocka_unit_test(byte_at_a_time),
		cmocka_unit_test(split_at_every_byte),
		cmocka_unit_test_teardown(reset_inside_on_data, teardown),
		cmocka_unit_test_teardown(ping_round_trip, teardown),
		cmocka_unit_test_teardown(keepalive_timeout, teardown),
		cmocka_unit_test_teardown(silent_peer_ends_a_waiting_open, teardown),
		cmocka_unit_test_teardown(a_talking_peer_keeps_a_waiting_open, teardown),
		cmocka_unit_test_teardown(a_waiting_open_gets_four_round_trips, teardown),
		cmocka_unit_test_teardown(pings_each_second_while_data_flows, teardown),
		cmocka_unit_test_teardown(keepalive_off, teardown),
		cmocka_unit_test_teardown(goaway_blocks_opens, teardown),
		cmocka_unit_test_teardown(max_streams, teardown),
		cmocka_unit_test_teardown(max_pending_opens, teardown),
		cmocka_unit_test_teardown(output_queue_bound, teardown),
		cmocka_unit_test_teardown(writable_needs_window_and_queue, teardown),
		cmocka_unit_test_teardown(frames_that_change_nothing, teardown),
		cmocka_unit_test_teardown(stream_table_churn, teardown),
		cmocka_unit_test_teardown(stream_table_scattered_ids, teardown),
		cmocka_unit_test_teardown(output_ring_wraps, teardown),
		cmocka_unit_test_teardown(output_overflow_ends_session, teardown),
		cmocka_unit_test_teardown(free_reports_open_streams, teardown),
		cmocka_unit_test(bad_config),
		cmocka_unit_test_teardown(no_callbacks, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
