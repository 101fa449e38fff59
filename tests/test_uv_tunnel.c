/*
 * The libuv relay (common/uv_tunnel.c) in one loop: a client and a server
 * uvt_conn joined by a socketpair, one stream from a local source on the
 * client to a local "service" on the server that does not read (a
 * socketpair end with small buffers), so the server's writes to it stay
 * in flight.
 *
 *   - The tunnel ends under such a stream: the stream's done comes at
 *     once, its handles close (cancelling the writes) and everything is
 *     freed; nothing waits for the service.
 *   - The stream closes cleanly both ways instead: done waits until the
 *     service has taken every byte.
 *
 * Run under the sanitizer build, a callback touching freed memory aborts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "test_util.h"

#include "uv_tunnel.h"

#define PAYLOAD (2u << 20)	/* far more than the service's buffers */
#define WATCHDOG_MS 5000

struct side {
	struct uvt_conn conn;
	bool ended, freed;
};

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
	t.inflight_at_done = s->out_inflight;
	t.conn_lost_at_done = s->conn_lost;
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
	(void)s;
	t.cs_done = true;
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
	t.ss = uvt_stream_new(c, id, &ss_hooks, NULL);
	return t.ss;
}

static void conn_ended(struct uvt_conn *c, const char *error)
{
	(void)error;
	((struct side *)c)->ended = true;
}

static void conn_freed(struct uvt_conn *c)
{
	((struct side *)c)->freed = true;
}

static const struct uvt_conn_hooks conn_hooks = {
	.accept = accept_stream,
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

static void start_conn(struct side *x, int fd, struct tunnel_transport *tr,
		       bool is_client)
{
	struct yamux_config cfg = yamux_config_default(is_client);

	assert_int_equal(uv_tcp_init(&t.loop, &x->conn.tcp), 0);
	assert_int_equal(uv_tcp_open(&x->conn.tcp, fd), 0);
	assert_true(uvt_conn_start(&x->conn, &t.loop, tr, &cfg, &conn_hooks, x,
				   NULL, 0));
}

static void fed(uv_write_t *req, int status)
{
	(void)req;
	(void)status;	/* cancelled when src_far closes, in the first case */
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

/* Two connected uvt_conns and a stream between them. */
static int setup(void **state)
{
	struct tunnel_transport ct, st;
	int tun[2], src[2], svc[2];

	(void)state;
	memset(&t, 0, sizeof(t));
	test_transport_pair(&ct, &st);
	assert_int_equal(uv_loop_init(&t.loop), 0);
	socket_pair(tun, 0);
	socket_pair(src, 0);
	socket_pair(svc, 4096);
	start_conn(&t.server, tun[1], &st, false);
	start_conn(&t.client, tun[0], &ct, true);

	uv_pipe_init(&t.loop, &t.svc, 0);
	assert_int_equal(uv_pipe_open(&t.svc, svc[0]), 0);
	t.svc_far = svc[1];
	uv_pipe_init(&t.loop, &t.src_near, 0);
	assert_int_equal(uv_pipe_open(&t.src_near, src[0]), 0);
	uv_pipe_init(&t.loop, &t.src_far, 0);
	assert_int_equal(uv_pipe_open(&t.src_far, src[1]), 0);

	t.cs = uvt_stream_open(&t.client.conn, &cs_hooks, NULL);
	assert_non_null(t.cs);
	uvt_stream_relay(t.cs, (uv_stream_t *)&t.src_near, (uv_stream_t *)&t.src_near);
	t.payload = calloc(1, PAYLOAD);
	assert_non_null(t.payload);

	uv_timer_init(&t.loop, &t.tick);
	uv_timer_init(&t.loop, &t.watchdog);
	uv_timer_start(&t.watchdog, on_watchdog, WATCHDOG_MS, 0);
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
	if (!t.client.ended)
		uvt_conn_abort(&t.client.conn, NULL);
	if (!t.server.ended)
		uvt_conn_abort(&t.server.conn, NULL);
	uv_walk(&t.loop, walk_close, NULL);
	uv_run(&t.loop, UV_RUN_DEFAULT);
	if (t.ss)
		uvt_stream_free(t.ss);
	if (!t.cs_freed)
		uvt_stream_free(t.cs);
	assert_int_equal(uv_loop_close(&t.loop), 0);
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
	if (!t.ss || !t.ss->relaying || t.ss->out_inflight == 0)
		return;
	uv_timer_stop(h);
	uv_close((uv_handle_t *)&t.src_far, NULL);	/* cancels the feed */
	uvt_conn_abort(&t.client.conn, NULL);
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
	if (t.phase == 0 && t.ss && t.ss->mux_closed && t.ss->out_inflight) {
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(tunnel_end_cancels_pending_local_writes,
						setup, teardown),
		cmocka_unit_test_setup_teardown(clean_close_waits_for_local_writes,
						setup, teardown),
	};

	crypto_init();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
