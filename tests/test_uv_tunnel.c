/*
 * The libuv layer (common/uv_*.c) in one loop: a client and a server
 * uvt_conn joined by a socketpair, through the real handshake, one stream
 * from a local source on the client to a local "service" on the server
 * that does not read (a socketpair end with small buffers), so the
 * server's writes to it stay in flight.
 *
 *   - The tunnel ends under such a stream: the stream's done comes at
 *     once, its handles close (cancelling the writes) and everything is
 *     freed; nothing waits for the service.
 *   - The stream closes cleanly both ways instead: done waits until the
 *     service has taken every byte.
 *
 * Then the handshake (accepted, refused by the server's hook, made for
 * another server key, with another PSK, not a handshake at all), a
 * refused stream, backpressure, a half-close passed on both ways, and a
 * yamux protocol error answered with go-away.
 *
 * Run under the sanitizer build, a callback touching freed memory aborts.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_util.h"

#include "crypto.h"
#include "noise.h"
#include "uv_tunnel.h"

#define PAYLOAD (2u << 20)	/* far more than the service's buffers */
#define WATCHDOG_MS 5000

struct side {
	struct uvt_conn *conn;		/* until freed */
	bool ended, freed, answered, authenticated, hs_failed;
	enum uvt_hs_error hs_error;
	char end_error[128];
	struct tunnel_server_hello hello;	/* client: the server's */
	uint8_t client_pub[KEY_LEN];		/* server: message 1's */
};

static struct noise_keypair client_key, server_key, other_key;
static uint8_t psk[KEY_LEN], other_psk[KEY_LEN];
static const uint16_t hello_ports[] = { 22, 2222 };

static struct {
	uv_loop_t loop;
	struct side client, server;
	uv_pipe_t src_near, src_far;	/* client: relay reads near, we write far */
	uv_pipe_t svc;			/* server: the relay writes to it */
	int svc_far;			/* the service's end: never read, or later */
	uv_write_t feed;
	uv_shutdown_t eof;
	uint8_t *payload;
	uv_timer_t tick, watchdog;
	struct uvt_stream *cs, *ss;	/* client's and server's stream */
	bool ss_done, ss_freed, cs_done, cs_freed, timed_out;
	size_t inflight_at_done;	/* server stream, when done came */
	bool conn_lost_at_done;
	bool waited;			/* clean case: seen closed, writes pending */
	size_t svc_read;		/* clean case: bytes the service took */
	int phase;
	bool refuse_hello, refuse_streams;
	bool feed_done;
	bool ss_finished, cs_finished;
	size_t stuck_ticks, max_stuck_inflight;
	size_t reply_got;
	bool reply_eof, svc_eof;
} t;

/* The server's stream. */

static void svc_closed(uv_handle_t *h)
{
	(void)h;
	uvt_stream_free(t.ss);
	t.ss = NULL;
	t.ss_freed = true;
}

static void ss_done(struct uvt_stream *s)
{
	t.ss_done = true;
	t.inflight_at_done = uvt_stream_out_inflight(s);
	t.conn_lost_at_done = uvt_stream_lost(s);
	t.ss_finished = uvt_stream_finished(s);
	if (!uv_is_closing((uv_handle_t *)&t.svc))	/* by teardown */
		uv_close((uv_handle_t *)&t.svc, svc_closed);
}

static size_t ss_preamble(struct uvt_stream *s, const uint8_t *p, size_t n)
{
	(void)p;
	(void)n;
	uvt_stream_relay(s, (uv_stream_t *)&t.svc, (uv_stream_t *)&t.svc);
	return 0;	/* everything is for the relay */
}

static const struct uvt_stream_hooks ss_hooks = {
	.preamble = ss_preamble,
	.failed = ss_done,
	.done = ss_done,
};

/* The client's stream. */

static void src_closed(uv_handle_t *h)
{
	(void)h;
	uvt_stream_free(t.cs);
	t.cs_freed = true;
}

static void cs_done(struct uvt_stream *s)
{
	t.cs_done = true;
	t.cs_finished = uvt_stream_finished(s);
	if (!uv_is_closing((uv_handle_t *)&t.src_near))
		uv_close((uv_handle_t *)&t.src_near, src_closed);
}

static const struct uvt_stream_hooks cs_hooks = {
	.failed = cs_done,
	.done = cs_done,
};

/* The connections. */

static struct uvt_stream *accept_stream(struct uvt_conn *c, uint32_t id)
{
	if (t.refuse_streams)
		return NULL;
	t.ss = uvt_stream_new(c, id, &ss_hooks, NULL);
	return t.ss;
}

static void conn_ended(struct uvt_conn *c, const char *error)
{
	struct side *x = uvt_conn_user(c);

	x->ended = true;
	snprintf(x->end_error, sizeof(x->end_error), "%s", error ? error : "");
}

static void conn_freed(struct uvt_conn *c)
{
	struct side *x = uvt_conn_user(c);

	x->freed = true;
	x->conn = NULL;
}

static void conn_hs_failed(struct uvt_conn *c, enum uvt_hs_error e, const char *detail)
{
	struct side *x = uvt_conn_user(c);

	(void)detail;
	x->hs_failed = true;
	x->hs_error = e;
}

static bool conn_authenticated(struct uvt_conn *c)
{
	((struct side *)uvt_conn_user(c))->authenticated = true;
	return true;
}

static void server_keys(struct uvt_conn *c, struct uvt_keys *k)
{
	(void)c;
	k->key = &server_key;
	k->psk = psk;
}

static bool server_hello(struct uvt_conn *c, const uint8_t pub[KEY_LEN],
			 struct uvt_reply *reply)
{
	struct side *x = uvt_conn_user(c);

	memcpy(x->client_pub, pub, KEY_LEN);
	x->answered = true;	/* message 1 seen */
	if (t.refuse_hello)
		return false;
	memcpy(reply->ports, hello_ports, sizeof(hello_ports));
	reply->n_ports = 2;
	return true;
}

static bool client_answered(struct uvt_conn *c, const struct tunnel_server_hello *h)
{
	struct side *x = uvt_conn_user(c);

	x->answered = true;
	x->hello = *h;
	return true;
}

static const struct uvt_conn_hooks server_hooks = {
	.keys = server_keys,
	.hello = server_hello,
	.hs_failed = conn_hs_failed,
	.authenticated = conn_authenticated,
	.accept = accept_stream,
	.ended = conn_ended,
	.freed = conn_freed,
};

static const struct uvt_conn_hooks client_hooks = {
	.answered = client_answered,
	.hs_failed = conn_hs_failed,
	.authenticated = conn_authenticated,
	.ended = conn_ended,
	.freed = conn_freed,
};

static void socket_pair(int fds[2], int bufsize)
{
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
	for (int i = 0; bufsize && i < 2; i++) {
		assert_int_equal(setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &bufsize,
					    sizeof(bufsize)), 0);
		assert_int_equal(setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &bufsize,
					    sizeof(bufsize)), 0);
	}
}

/* The server's side takes fd; the client's connects over the other end
 * with the given server key and PSK. */
static void start_pair(const uint8_t *server_pub, const uint8_t *key_psk)
{
	struct uvt_keys k = { .key = &client_key, .psk = key_psk,
			      .server_pub = server_pub };
	const char *err = "";
	int tun[2];

	socket_pair(tun, 0);
	t.server.conn = uvt_conn_accept_fd(&t.loop, tun[1], &server_hooks, &t.server);
	assert_non_null(t.server.conn);
	t.client.conn = uvt_conn_connect(&t.loop, tun[0], &k, &client_hooks,
					 &t.client, &err);
	assert_non_null(t.client.conn);
	assert_null(err);
}

static void on_watchdog(uv_timer_t *h);

static void run_until(const bool *flag)
{
	while (!t.timed_out && !*flag)
		uv_run(&t.loop, UV_RUN_ONCE);
	assert_false(t.timed_out);
}

static void fed(uv_write_t *req, int status)
{
	(void)req;
	/* cancelled when src_far closes, in the first case */
	t.feed_done = status == 0;
}

/* Write n bytes into the client's source, then EOF if eof. */
static void feed(size_t n, bool eof)
{
	uv_buf_t b = uv_buf_init((char *)t.payload, (unsigned int)n);

	assert_int_equal(uv_write(&t.feed, (uv_stream_t *)&t.src_far, &b, 1, fed), 0);
	if (eof)
		assert_int_equal(uv_shutdown(&t.eof, (uv_stream_t *)&t.src_far,
					     NULL), 0);
}

static void on_watchdog(uv_timer_t *h)
{
	t.timed_out = true;
	uv_stop(h->loop);
}

static int setup_loop(void **state)
{
	(void)state;
	memset(&t, 0, sizeof(t));
	assert_int_equal(uv_loop_init(&t.loop), 0);
	uv_timer_init(&t.loop, &t.tick);
	uv_timer_init(&t.loop, &t.watchdog);
	uv_timer_start(&t.watchdog, on_watchdog, WATCHDOG_MS, 0);
	t.svc_far = -1;
	t.cs_freed = true;	/* no stream */
	return 0;
}

/* Two connected uvt_conns and a stream between them. */
static int setup(void **state)
{
	int src[2], svc[2];

	setup_loop(state);
	t.cs_freed = false;
	start_pair(server_key.pub, psk);
	run_until(&t.client.answered);	/* the client's session runs */
	socket_pair(src, 0);
	socket_pair(svc, 4096);

	uv_pipe_init(&t.loop, &t.svc, 0);
	assert_int_equal(uv_pipe_open(&t.svc, svc[0]), 0);
	t.svc_far = svc[1];
	uv_pipe_init(&t.loop, &t.src_near, 0);
	assert_int_equal(uv_pipe_open(&t.src_near, src[0]), 0);
	uv_pipe_init(&t.loop, &t.src_far, 0);
	assert_int_equal(uv_pipe_open(&t.src_far, src[1]), 0);

	t.cs = uvt_stream_open(t.client.conn, &cs_hooks, NULL);
	assert_non_null(t.cs);
	uvt_stream_relay(t.cs, (uv_stream_t *)&t.src_near, (uv_stream_t *)&t.src_near);
	t.payload = calloc(1, PAYLOAD);
	assert_non_null(t.payload);
	return 0;
}

static void walk_close(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static int teardown(void **state)
{
	(void)state;
	/* What a failed case left open: close it and let callbacks run. */
	if (t.client.conn)
		uvt_conn_abort(t.client.conn, NULL);
	if (t.server.conn)
		uvt_conn_abort(t.server.conn, NULL);
	uv_walk(&t.loop, walk_close, NULL);
	uv_run(&t.loop, UV_RUN_DEFAULT);
	if (t.ss)
		uvt_stream_free(t.ss);
	if (!t.cs_freed)
		uvt_stream_free(t.cs);
	assert_int_equal(uv_loop_close(&t.loop), 0);
	if (t.svc_far >= 0)
		close(t.svc_far);
	free(t.payload);
	return 0;
}

static bool service_hung_up(void)
{
	struct pollfd p = { .fd = t.svc_far, .events = POLLRDHUP };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

/* Wait until the server's writes to the service back up, then end the
 * client's side of the tunnel. */
static void abort_when_stuck(uv_timer_t *h)
{
	if (!t.ss || !uvt_stream_relaying(t.ss) || uvt_stream_out_inflight(t.ss) == 0)
		return;
	uv_timer_stop(h);
	uv_close((uv_handle_t *)&t.src_far, NULL);	/* cancels the feed */
	uvt_conn_abort(t.client.conn, NULL);
}

static void tunnel_end_cancels_pending_local_writes(void **state)
{
	(void)state;
	feed(PAYLOAD, false);
	uv_timer_start(&t.tick, abort_when_stuck, 10, 10);
	while (!t.timed_out && !(t.server.freed && t.ss_freed && t.client.freed &&
				 t.cs_freed))
		uv_run(&t.loop, UV_RUN_ONCE);
	assert_false(t.timed_out);
	assert_true(t.server.ended);
	/* Done came with the writes still in flight: nothing waited for the
	 * service, which never read. */
	assert_true(t.ss_done);
	assert_true(t.conn_lost_at_done);
	assert_true(t.inflight_at_done > 0);
	assert_true(service_hung_up());
	uv_close((uv_handle_t *)&t.tick, NULL);
	uv_close((uv_handle_t *)&t.watchdog, NULL);
	/* Nothing of the tunnel is left in the loop. */
	assert_int_equal(uv_run(&t.loop, UV_RUN_DEFAULT), 0);
}

/* Clean case: fewer bytes than the stream's window, then EOF (the
 * client's FIN); the service sends nothing (the server's FIN). Once the
 * stream is closed in yamux with writes to the service still pending,
 * done must wait: a tick later the service starts reading, and done
 * comes once it has taken every byte. */

#define CLEAN_PAYLOAD (128u << 10)

static uv_pipe_t svc_reader;

static void svc_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char b[65536];

	(void)h;
	(void)hint;
	*buf = uv_buf_init(b, sizeof(b));
}

static void svc_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	(void)buf;
	if (n > 0) {
		t.svc_read += (size_t)n;
	} else if (n < 0) {
		t.phase = 3;	/* the server closed its end */
		uv_close((uv_handle_t *)st, NULL);
	}
}

static void watch_clean(uv_timer_t *h)
{
	if (t.phase == 0 && t.ss && !uvt_stream_live(t.ss) &&
	    uvt_stream_out_inflight(t.ss)) {
		t.phase = 1;	/* closed both ways, writes pending */
	} else if (t.phase == 1) {
		t.waited = !t.ss_done;
		t.phase = 2;
		uv_timer_stop(h);
		uv_pipe_init(h->loop, &svc_reader, 0);
		assert_int_equal(uv_pipe_open(&svc_reader, dup(t.svc_far)), 0);
		uv_read_start((uv_stream_t *)&svc_reader, svc_alloc, svc_read);
	}
}

static void clean_close_waits_for_local_writes(void **state)
{
	(void)state;
	feed(CLEAN_PAYLOAD, true);
	shutdown(t.svc_far, SHUT_WR);
	uv_timer_start(&t.tick, watch_clean, 50, 50);
	while (!t.timed_out && !(t.ss_freed && t.phase == 3))
		uv_run(&t.loop, UV_RUN_ONCE);
	assert_false(t.timed_out);
	assert_true(t.waited);
	assert_true(t.ss_done);
	assert_false(t.conn_lost_at_done);
	assert_int_equal(t.inflight_at_done, 0);
	assert_int_equal(t.svc_read, CLEAN_PAYLOAD);
	assert_false(t.server.ended);
}

/* The handshake. */

static void handshake_accepted(void **state)
{
	uint64_t in, out;

	(void)state;
	start_pair(server_key.pub, psk);
	run_until(&t.client.answered);
	assert_memory_equal(t.server.client_pub, client_key.pub, KEY_LEN);
	assert_int_equal(t.client.hello.n_ports, 2);
	assert_int_equal(t.client.hello.ports[0], 22);
	assert_int_equal(t.client.hello.ports[1], 2222);
	/* The initiator knows its peer from message 2; the responder only
	 * from the first transport message. */
	assert_true(uvt_conn_healthy(t.client.conn));
	run_until(&t.server.authenticated);
	run_until(&t.client.authenticated);
	uvt_conn_bytes(t.server.conn, &in, &out);
	assert_true(in >= TUNNEL_LEN_PREFIX + TUNNEL_MSG1_LEN);
	assert_true(out >= TUNNEL_LEN_PREFIX + TUNNEL_MSG2_MIN);
	uvt_conn_close(t.client.conn);
	run_until(&t.server.freed);
	run_until(&t.client.freed);
	/* A clean end; or the server was answering (a ping) as the client
	 * closed, and its write found the peer gone. */
	assert_true(t.server.ended);
	assert_true(!t.server.end_error[0] ||
		    !strcmp(t.server.end_error, uv_strerror(UV_EPIPE)) ||
		    !strcmp(t.server.end_error, uv_strerror(UV_ECONNRESET)));
	assert_false(t.client.hs_failed || t.server.hs_failed);
}

static void handshake_refused_by_hook(void **state)
{
	(void)state;
	t.refuse_hello = true;
	start_pair(server_key.pub, psk);
	run_until(&t.client.freed);
	run_until(&t.server.freed);
	/* The server closes without a word, as a busy one does. */
	assert_true(t.client.hs_failed);
	assert_int_equal(t.client.hs_error, UVT_HS_CLOSED);
	assert_false(t.client.answered || t.client.ended);
	assert_true(t.server.answered);
	assert_false(t.server.hs_failed || t.server.ended);
}

static void handshake_other_server_key(void **state)
{
	(void)state;
	start_pair(other_key.pub, psk);
	run_until(&t.client.freed);
	run_until(&t.server.freed);
	assert_true(t.server.hs_failed);
	assert_int_equal(t.server.hs_error, UVT_HS_AUTH);
	assert_false(t.server.answered);
	assert_int_equal(t.client.hs_error, UVT_HS_CLOSED);
}

static void handshake_other_psk(void **state)
{
	(void)state;
	start_pair(server_key.pub, other_psk);
	run_until(&t.client.freed);
	run_until(&t.server.freed);
	/* IKpsk2 mixes the PSK in at message 2: the server answers, and
	 * only the client can tell. */
	assert_true(t.server.answered);
	assert_true(t.client.hs_failed);
	assert_int_equal(t.client.hs_error, UVT_HS_AUTH);
	/* Then the server's session ends, its peer never proved its keys. */
	assert_true(t.server.ended);
	assert_false(t.server.authenticated);
}

/* Read n bytes from a raw socket while the loop runs; fewer at EOF. */
static size_t raw_read(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;

	while (got < n && !t.timed_out) {
		ssize_t r = recv(fd, p + got, n - got, MSG_DONTWAIT);

		if (r == 0)
			break;
		if (r > 0)
			got += (size_t)r;
		else
			uv_run(&t.loop, UV_RUN_NOWAIT);
	}
	return got;
}

static void handshake_not_a_tunnel(void **state)
{
	static const char http[] = "GET / HTTP/1.0\r\n\r\n";
	struct uvt_keys k = { .key = &client_key, .psk = psk,
			      .server_pub = server_key.pub };
	uint8_t m1[TUNNEL_LEN_PREFIX + TUNNEL_MSG1_LEN];
	const char *err;
	int a[2], b[2];

	(void)state;
	socket_pair(a, 0);
	socket_pair(b, 0);
	/* A server fed an HTTP request... */
	t.server.conn = uvt_conn_accept_fd(&t.loop, a[1], &server_hooks, &t.server);
	assert_non_null(t.server.conn);
	assert_int_equal(write(a[0], http, sizeof(http) - 1), (ssize_t)sizeof(http) - 1);
	run_until(&t.server.freed);
	assert_true(t.server.hs_failed);
	assert_int_equal(t.server.hs_error, UVT_HS_PROTO);
	close(a[0]);
	/* ...and a client answered with one. */
	t.client.conn = uvt_conn_connect(&t.loop, b[0], &k, &client_hooks,
					 &t.client, &err);
	assert_non_null(t.client.conn);
	assert_int_equal(raw_read(b[1], m1, sizeof(m1)), sizeof(m1));
	assert_int_equal(write(b[1], http, sizeof(http) - 1), (ssize_t)sizeof(http) - 1);
	run_until(&t.client.freed);
	assert_true(t.client.hs_failed);
	assert_int_equal(t.client.hs_error, UVT_HS_PROTO);
	close(b[1]);
}

/* Streams. */

static void rs_failed(struct uvt_stream *s)
{
	t.cs_done = true;
	t.cs_finished = uvt_stream_finished(s) || uvt_stream_was_reset(s) ||
			uvt_stream_lost(s) || uvt_stream_live(s);
	uvt_stream_free(s);
	t.cs_freed = true;
}

static const struct uvt_stream_hooks rs_hooks = {
	.failed = rs_failed,
};

static void stream_refused(void **state)
{
	(void)state;
	t.refuse_streams = true;
	start_pair(server_key.pub, psk);
	run_until(&t.client.answered);
	t.cs_freed = false;
	assert_non_null(uvt_stream_open(t.client.conn, &rs_hooks, NULL));
	run_until(&t.cs_done);
	/* Dropped by the peer: neither closed, nor our reset, nor lost. */
	assert_false(t.cs_finished);
	assert_true(uvt_conn_healthy(t.client.conn));
}

/* The service does not read: what the server has in local writes stays
 * within the stream's window (256 KiB to start with) and the client stops
 * reading its source, which never takes the whole payload. Once the
 * service reads, every byte arrives. */

static void svc_count(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	(void)st;
	(void)buf;
	if (n > 0)
		t.svc_read += (size_t)n;
}

static void watch_stuck(uv_timer_t *h)
{
	size_t inflight;

	if (!t.ss || !uvt_stream_relaying(t.ss))
		return;
	inflight = uvt_stream_out_inflight(t.ss);
	if (inflight > t.max_stuck_inflight)
		t.max_stuck_inflight = inflight;
	if (inflight && ++t.stuck_ticks == 20) {
		uv_timer_stop(h);
		t.phase = 1;
	}
}

static void backpressure_bounds_memory(void **state)
{
	(void)state;
	feed(PAYLOAD, true);
	uv_timer_start(&t.tick, watch_stuck, 10, 10);
	while (!t.timed_out && t.phase == 0)
		uv_run(&t.loop, UV_RUN_ONCE);
	assert_false(t.timed_out);
	assert_false(t.feed_done);
	assert_true(t.max_stuck_inflight <= 256 * 1024);
	uv_pipe_init(&t.loop, &svc_reader, 0);
	assert_int_equal(uv_pipe_open(&svc_reader, dup(t.svc_far)), 0);
	uv_read_start((uv_stream_t *)&svc_reader, svc_alloc, svc_count);
	while (!t.timed_out && !(t.feed_done && t.svc_read == PAYLOAD))
		uv_run(&t.loop, UV_RUN_ONCE);
	assert_false(t.timed_out);
	assert_int_equal(t.svc_read, PAYLOAD);
}

/* A half-close passed on: the client's EOF reaches the service as EOF,
 * which still answers, and then its EOF reaches the client. Both streams
 * end closed, a FIN each way. */

#define HALF_PAYLOAD 1000
static const char reply[] = "pong";
static uv_write_t reply_req;
static uv_shutdown_t reply_shut;

static void reply_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	(void)buf;
	if (n > 0) {
		t.reply_got += (size_t)n;
	} else if (n < 0) {
		t.reply_eof = n == UV_EOF;
		uv_read_stop(st);
	}
}

static void svc_half(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	uv_buf_t b = uv_buf_init((char *)reply, sizeof(reply) - 1);

	(void)buf;
	if (n > 0) {
		t.svc_read += (size_t)n;
		return;
	}
	if (n != UV_EOF)
		return;
	t.svc_eof = true;
	uv_read_stop(st);
	assert_int_equal(uv_write(&reply_req, st, &b, 1, NULL), 0);
	assert_int_equal(uv_shutdown(&reply_shut, st, NULL), 0);
}

static void half_close_both_ways(void **state)
{
	(void)state;
	feed(HALF_PAYLOAD, true);
	uv_pipe_init(&t.loop, &svc_reader, 0);
	assert_int_equal(uv_pipe_open(&svc_reader, dup(t.svc_far)), 0);
	uv_read_start((uv_stream_t *)&svc_reader, svc_alloc, svc_half);
	uv_read_start((uv_stream_t *)&t.src_far, svc_alloc, reply_read);
	while (!t.timed_out && !(t.reply_eof && t.ss_done && t.cs_done))
		uv_run(&t.loop, UV_RUN_ONCE);
	assert_false(t.timed_out);
	assert_true(t.svc_eof);
	assert_int_equal(t.svc_read, HALF_PAYLOAD);
	assert_int_equal(t.reply_got, sizeof(reply) - 1);
	assert_true(t.ss_finished);
	assert_true(t.cs_finished);
	assert_false(t.server.ended);
}

/* A transport message that decrypts but holds no valid yamux frame: the
 * server answers go-away (protocol error), then closes. */
static void protocol_error_goaway(void **state)
{
	/* version 1: there is none */
	static const uint8_t bad[YAMUX_HEADER_LEN] = { 1, 0 };
	uint8_t m1[TUNNEL_LEN_PREFIX + TUNNEL_MSG1_LEN], pre[TUNNEL_LEN_PREFIX];
	uint8_t body[TUNNEL_HANDSHAKE_MAX], sealed[YAMUX_HEADER_LEN + TUNNEL_OVERHEAD];
	static uint8_t rest[1 << 16];
	struct tunnel_reader *r = malloc(sizeof(*r));
	struct tunnel_handshake hs;
	struct tunnel_server_hello hello;
	struct tunnel_transport tr;
	size_t n1 = sizeof(m1), len, rest_len, mlen, plain_len;
	const uint8_t *in = rest, *msg;
	bool goaway = false;
	int fd[2];

	(void)state;
	assert_non_null(r);
	socket_pair(fd, 0);
	t.server.conn = uvt_conn_accept_fd(&t.loop, fd[1], &server_hooks, &t.server);
	assert_non_null(t.server.conn);
	assert_int_equal(tunnel_client_init(&hs, &client_key, server_key.pub, psk), TUNNEL_OK);
	assert_int_equal(tunnel_client_start(&hs, m1, &n1), TUNNEL_OK);
	assert_int_equal(write(fd[0], m1, n1), (ssize_t)n1);
	assert_int_equal(raw_read(fd[0], pre, sizeof(pre)), sizeof(pre));
	len = (size_t)pre[0] << 8 | pre[1];
	assert_true(len <= sizeof(body));
	assert_int_equal(raw_read(fd[0], body, len), len);
	assert_int_equal(tunnel_client_finish(&hs, body, len, &hello, &tr), TUNNEL_OK);
	assert_int_equal(tunnel_seal(&tr, bad, sizeof(bad), sealed), TUNNEL_OK);
	assert_int_equal(write(fd[0], sealed, sizeof(sealed)), (ssize_t)sizeof(sealed));
	run_until(&t.server.freed);
	assert_true(t.server.authenticated);
	assert_true(t.server.ended);
	assert_true(t.server.end_error[0] != '\0');
	/* What it sent before closing: a go-away with the protocol code. */
	rest_len = raw_read(fd[0], rest, sizeof(rest));
	tunnel_reader_init(r, TUNNEL_EXPECT_TRANSPORT);
	while (tunnel_read(r, &in, &rest_len, &msg, &mlen) == TUNNEL_OK) {
		assert_int_equal(tunnel_open(&tr, msg, mlen, r->buf, &plain_len), TUNNEL_OK);
		for (size_t off = 0; off + YAMUX_HEADER_LEN <= plain_len; off += YAMUX_HEADER_LEN)
			if (r->buf[off + 1] == YAMUX_GO_AWAY && r->buf[off + 11] == YAMUX_GOAWAY_PROTOCOL)
				goaway = true;
	}
	assert_true(goaway);
	tunnel_transport_free(&tr);
	free(r);
	close(fd[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(tunnel_end_cancels_pending_local_writes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(clean_close_waits_for_local_writes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(handshake_accepted, setup_loop, teardown),
		cmocka_unit_test_setup_teardown(handshake_refused_by_hook, setup_loop,
						teardown),
		cmocka_unit_test_setup_teardown(handshake_other_server_key, setup_loop,
						teardown),
		cmocka_unit_test_setup_teardown(handshake_other_psk, setup_loop, teardown),
		cmocka_unit_test_setup_teardown(handshake_not_a_tunnel, setup_loop,
						teardown),
		cmocka_unit_test_setup_teardown(stream_refused, setup_loop, teardown),
		cmocka_unit_test_setup_teardown(backpressure_bounds_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(half_close_both_ways, setup, teardown),
		cmocka_unit_test_setup_teardown(protocol_error_goaway, setup_loop, teardown),
	};

	/* As the daemon and the client do: a peer gone shows as EPIPE. */
	signal(SIGPIPE, SIG_IGN);
	crypto_init();
	test_keypair(&client_key);
	test_keypair(&server_key);
	test_keypair(&other_key);
	if (!random_bytes(psk, KEY_LEN) || !random_bytes(other_psk, KEY_LEN))
		abort();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
