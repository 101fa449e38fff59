/* A per-server pool of tunnel connections. */
#include "pool.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "addr.h"
#include "addr_watch.h"
#include "gate_memo.h"
#include "tunnel_client.h"

struct pool_conn {
	struct tclient tc;		/* first: tc->user is the pool_conn */
	struct pool *pool;
	struct pool_conn *next;
	unsigned int active;		/* streams not yet ended */
	unsigned int refs;		/* pool_streams not yet freed */
	bool up, draining, dead, freed;
	char err[256];			/* why the session ended; "" if clean */
};

struct pool_stream {
	struct pool *pool;
	struct pool_conn *conn;		/* once a stream is opened */
	struct uvt_stream *s;
	const struct pool_stream_hooks *hooks;
	void *user;
	struct pool_stream *next;	/* while waiting */
	uint16_t port;
	bool answered;
	bool retried;			/* sent again after its tunnel died */
	enum pool_fail fail;		/* once failed */
	uint8_t status;			/* the server's, if it answered */
	char err[512];
};

struct pool {
	uv_loop_t *loop;
	const struct client_ctx *ctx;
	const struct server_entry *server;
	bool log, warm, closing, closed, skew_warned;
	struct pool_conn *conns;
	struct pool_stream *waiting, **waiting_tail;
	struct addr_watch *watch;	/* our local addresses going away */
	uv_timer_t timer;		/* deferred work and backoff */
	unsigned int failures;		/* connects failed in a row */
	uint64_t not_before;		/* no connect before this (uv_now) */
	uint64_t open_until;		/* our last knock opened the gate */
	uint64_t connect_ms;		/* the connect time of that tunnel */
	unsigned int n_up;		/* tunnels up now, for postern ls */
	pool_up_fn *on_up;		/* pool_on_up's */
	void *on_up_user;
};

static void dispatch(struct pool *p);

static void plog(const struct pool *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void plog(const struct pool *p, const char *fmt, ...)
{
	va_list ap;

	if (!p->log || p->closing)
		return;
	fprintf(stderr, "%s: %s: ", PROG_NAME, p->server->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void tick(uv_timer_t *t);

static void kick(struct pool *p, uint64_t delay_ms)
{
	if (!p->closed)
		uv_timer_start(&p->timer, tick, delay_ms, 0);
}

static void conn_maybe_free(struct pool_conn *c)
{
	struct pool_conn **pp;

	if (!c->freed || c->refs)
		return;
	for (pp = &c->pool->conns; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	free(c);
}

/* Streams. */

static void stream_fail(struct pool_stream *ps, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void stream_fail(struct pool_stream *ps, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ps->err, sizeof(ps->err), fmt, ap);
	va_end(ap);
	ps->hooks->failed(ps, ps->err);
}

static void fail_waiting(struct pool *p, const char *err)
{
	struct pool_stream *ps;

	while ((ps = p->waiting)) {
		p->waiting = ps->next;
		ps->next = NULL;
		stream_fail(ps, "%s", err);
	}
	p->waiting_tail = &p->waiting;
}

/* The status byte, the server's first byte on the stream. */
static size_t st_preamble(struct uvt_stream *s, const uint8_t *p, size_t n)
{
	struct pool_stream *ps = uvt_stream_user(s);

	if (ps->answered || n == 0)
		return 0;
	ps->answered = true;
	ps->status = p[0];
	if (p[0] == TUNNEL_STATUS_OK) {
		ps->hooks->ready(ps, s);
		return 1;
	}
	snprintf(ps->err, sizeof(ps->err), "%s: port %u: %s",
		 ps->pool->server->name, ps->port, tunnel_status_str(p[0]));
	ps->fail = POOL_FAIL_STATUS;
	/* failed runs inside; taking every byte keeps ev_data off s after. */
	uvt_stream_reset(s);
	return n;
}

/* Why a stream's session went, for messages. */
static void conn_loss(const struct pool_stream *ps, char *buf, size_t len)
{
	const struct pool_conn *c = ps->conn;

	if (c->err[0])
		snprintf(buf, len, "%s: port %u: tunnel lost: %s",
			 ps->pool->server->name, ps->port, c->err);
	else
		snprintf(buf, len, "%s: port %u: tunnel closed",
			 ps->pool->server->name, ps->port);
}

static void requeue(struct pool *p, struct pool_stream *ps);

/* A request its tunnel took down unanswered goes once more, to a fresh
 * tunnel: the server never confirmed it, and nothing of the caller's
 * went with it (the relay starts at the answer). */
static bool retry_on_fresh_tunnel(struct pool_stream *ps)
{
	struct pool_conn *c = ps->conn;

	if (ps->retried || ps->answered || !c->dead || ps->pool->closing)
		return false;
	ps->retried = true;
	uvt_stream_free(ps->s);
	ps->s = NULL;
	ps->conn = NULL;
	c->refs--;
	requeue(ps->pool, ps);
	kick(ps->pool, 0);
	return true;
}

static void st_failed(struct uvt_stream *s)
{
	struct pool_stream *ps = uvt_stream_user(s);

	ps->conn->active--;
	if (!ps->err[0] && retry_on_fresh_tunnel(ps))
		return;
	if (ps->fail != POOL_FAIL_STATUS)
		ps->fail = POOL_FAIL_LOST;
	if (ps->err[0])
		;
	else if (ps->conn->dead)
		conn_loss(ps, ps->err, sizeof(ps->err));
	else if (uvt_stream_was_reset(s))
		snprintf(ps->err, sizeof(ps->err), "%s: port %u: the server reset "
			 "the stream", ps->pool->server->name, ps->port);
	else
		snprintf(ps->err, sizeof(ps->err), "%s: port %u: stream closed "
			 "before the server answered", ps->pool->server->name, ps->port);
	ps->hooks->failed(ps, ps->err);
}

static void st_done(struct uvt_stream *s)
{
	struct pool_stream *ps = uvt_stream_user(s);
	const char *err = NULL;

	ps->conn->active--;
	if (!uvt_stream_finished(s)) {
		if (ps->conn->dead)
			conn_loss(ps, ps->err, sizeof(ps->err));
		else
			snprintf(ps->err, sizeof(ps->err), "%s: port %u: stream reset",
				 ps->pool->server->name, ps->port);
		err = ps->err;
	}
	ps->hooks->done(ps, err);
}

static void st_out_ended(struct uvt_stream *s, int status)
{
	struct pool_stream *ps = uvt_stream_user(s);

	if (ps->hooks->out_ended)
		ps->hooks->out_ended(ps, s, status);
}

static const struct uvt_stream_hooks stream_hooks = {
	.preamble = st_preamble,
	.failed = st_failed,
	.done = st_done,
	.out_ended = st_out_ended,
};

static void requeue(struct pool *p, struct pool_stream *ps)
{
	ps->next = p->waiting;
	p->waiting = ps;
	if (!ps->next)
		p->waiting_tail = &ps->next;
}

/* False when c cannot take a stream just now: stop dispatching. */
static bool start_stream(struct pool *p, struct pool_conn *c, struct pool_stream *ps)
{
	uint8_t req[TUNNEL_REQUEST_LEN];
	char ports[512];
	struct uvt_stream *s;

	/* The hello lists what the server would allow: fail without asking. */
	if (!tclient_port_allowed(&c->tc, ps->port)) {
		tclient_ports_text(&c->tc, ports, sizeof(ports));
		ps->fail = POOL_FAIL_NOT_LISTED;
		stream_fail(ps, "%s: port %u not allowed (server allows: %s)",
			    p->server->name, ps->port, ports);
		return true;
	}
	s = uvt_stream_open(c->tc.conn, &stream_hooks, ps);
	if (!s) {
		requeue(p, ps);
		/* Backed up (output queue full, or too many opens not yet
		 * acknowledged) passes: try again shortly. Gone away or out
		 * of ids does not: no new streams here. */
		if (uvt_conn_healthy(c->tc.conn)) {
			kick(p, 5);
			return false;
		}
		c->draining = true;
		return true;
	}
	ps->s = s;
	ps->conn = c;
	c->active++;
	c->refs++;
	tunnel_request_encode(req, ps->port);
	if (!uvt_stream_send(s, req, sizeof(req))) {
		snprintf(ps->err, sizeof(ps->err), "%s: port %u: cannot send the "
			 "request", p->server->name, ps->port);
		uvt_stream_reset(s);	/* failed follows */
	}
	return true;
}

/* Connections. */

static void warn_skew(struct pool *p, int64_t skew_ms)
{
	int64_t mag = skew_ms < 0 ? -skew_ms : skew_ms;

	if (p->skew_warned || mag <= TCLIENT_MAX_SKEW_MS)
		return;
	p->skew_warned = true;
	fprintf(stderr, "%s: %s: warning: the server's clock is %lld s %s ours; "
		"knocks are refused beyond %d s of skew (the default knock window)\n",
		PROG_NAME, p->server->name, (long long)(mag / 1000),
		skew_ms > 0 ? "ahead of" : "behind", TCLIENT_MAX_SKEW_MS / 1000);
}

static void tc_up(struct tclient *tc)
{
	struct pool_conn *c = tc->user;
	struct pool *p = c->pool;

	c->up = true;
	p->failures = 0;
	p->not_before = 0;
	p->warm = false;
	if (tc->knocked) {
		p->open_until = uv_now(p->loop) + POOL_OPEN_BELIEVED_MS;
		p->connect_ms = tc->gate_connect_ms;
	}
	warn_skew(p, tc->skew_ms);
	if (p->on_up)
		p->on_up(p->on_up_user, tc);
	plog(p, "tunnel up (%s, %llu ms)", tc->knocked ? "knocked" : "gate was open",
	     (unsigned long long)tc->connect_ms);
	dispatch(p);
	/* After the waiting streams are on their way: a file write. */
	if (tc->knocked)
		gate_memo_put(p->server, tc->gate_connect_ms);
	gate_memo_tunnels(p->server, ++p->n_up);
}

/* 100 ms doubling to 10 s, each drawn from [d/2, d]: clients that lost
 * the same server at once do not come back in step. */
static uint64_t backoff_ms(unsigned int failures)
{
	uint64_t d = POOL_BACKOFF_MIN_MS;
	uint32_t r = 0;

	for (unsigned int i = 1; i < failures && d < POOL_BACKOFF_MAX_MS; i++)
		d *= 2;
	if (d > POOL_BACKOFF_MAX_MS)
		d = POOL_BACKOFF_MAX_MS;
	random_bytes(&r, sizeof(r));
	return d / 2 + r % (d / 2 + 1);
}

static void tc_failed(struct tclient *tc, const char *err)
{
	struct pool_conn *c = tc->user;
	struct pool *p = c->pool;

	c->dead = true;
	p->failures++;
	p->not_before = uv_now(p->loop) + backoff_ms(p->failures);
	if (p->waiting)
		fail_waiting(p, err);
	else if (p->warm && p->log && !p->closing)
		fprintf(stderr, "%s: %s\n", PROG_NAME, err);
	p->warm = false;
}

static void tc_ended(struct tclient *tc, const char *err)
{
	struct pool_conn *c = tc->user;

	c->dead = true;
	snprintf(c->err, sizeof(c->err), "%s", err ? err : "");
	plog(c->pool, "tunnel closed%s%s", err ? ": " : "", err ? err : "");
	if (c->up && c->pool->n_up > 0)
		gate_memo_tunnels(c->pool->server, --c->pool->n_up);
}

static void tc_freed(struct tclient *tc)
{
	struct pool_conn *c = tc->user;

	c->freed = true;
	c->dead = true;
	conn_maybe_free(c);
}

static const struct tclient_hooks tclient_hooks = {
	.up = tc_up,
	.failed = tc_failed,
	.ended = tc_ended,
	.freed = tc_freed,
};

static void connect_new(struct pool *p)
{
	struct pool_conn *c = calloc(1, sizeof(*c));
	uint64_t probe_ms = uv_now(p->loop) < p->open_until ?
			    3 * p->connect_ms + TCLIENT_PROBE_MS : 0;

	if (!c) {
		fail_waiting(p, "out of memory");
		return;
	}
	c->pool = p;
	c->next = p->conns;
	p->conns = c;
	if (!tclient_connect(&c->tc, p->loop, p->ctx, p->server, probe_ms,
			     &tclient_hooks, c)) {
		p->conns = c->next;
		free(c);
		fail_waiting(p, "cannot start a timer");
	}
}

/* Start a connection if a request waits with none live, or if every live
 * one is busy; one connect at a time, within the cap and the backoff. */
static void maybe_connect(struct pool *p)
{
	unsigned int n = 0, live = 0, busy = 0;
	bool connecting = false;
	uint64_t now = uv_now(p->loop);

	for (struct pool_conn *c = p->conns; c; c = c->next) {
		if (c->dead || c->draining)
			continue;
		n++;
		if (!c->up) {
			connecting = true;
			continue;
		}
		live++;
		if (c->active >= POOL_SPREAD)
			busy++;
	}
	if (live)
		p->warm = false;	/* warm already */
	if (p->closing || connecting || n >= POOL_MAX_CONNS)
		return;
	if (live ? busy < live : !p->waiting && !p->warm)
		return;
	if (now < p->not_before) {
		kick(p, p->not_before - now);
		return;
	}
	connect_new(p);
}

static struct pool_conn *pick(struct pool *p)
{
	struct pool_conn *best = NULL;

	for (struct pool_conn *c = p->conns; c; c = c->next)
		if (c->up && !c->dead && !c->draining &&
		    (!best || c->active < best->active))
			best = c;
	return best;
}

static void dispatch(struct pool *p)
{
	struct pool_stream *ps;
	struct pool_conn *c;

	while ((ps = p->waiting) && (c = pick(p))) {
		p->waiting = ps->next;
		if (!p->waiting)
			p->waiting_tail = &p->waiting;
		ps->next = NULL;
		if (!start_stream(p, c, ps))
			return;	/* kicked: dispatch runs again soon */
	}
	maybe_connect(p);
}

/* A tunnel from an address we no longer have is dead, whatever TCP
 * thinks: end it now, so that its streams fail (or go again) at once. */
static void addr_gone(void *user, const struct sockaddr_storage *addr)
{
	struct pool *p = user;
	struct sockaddr_storage local;
	char host[INET6_ADDRSTRLEN] = "?", err[128];
	const void *bytes = addr->ss_family == AF_INET ?
		(const void *)&((const struct sockaddr_in *)addr)->sin_addr :
		(const void *)&((const struct sockaddr_in6 *)addr)->sin6_addr;

	inet_ntop(addr->ss_family, bytes, host, sizeof(host));
	snprintf(err, sizeof(err), "local address %s went away", host);
	for (struct pool_conn *c = p->conns; c; c = c->next)
		if (c->up && !c->dead && uvt_conn_local(c->tc.conn, &local) &&
		    addr_same_host(&local, addr))
			uvt_conn_abort(c->tc.conn, err);
}

static void close_now(struct pool *p)
{
	char err[256];

	snprintf(err, sizeof(err), "%s: shutting down", p->server->name);
	fail_waiting(p, err);
	for (struct pool_conn *c = p->conns; c; c = c->next) {
		if (!c->dead) {
			c->dead = true;
			tclient_close(&c->tc);
		}
	}
	p->closed = true;
	addr_watch_close(p->watch);
	p->watch = NULL;
	uv_close((uv_handle_t *)&p->timer, NULL);
}

static void tick(uv_timer_t *t)
{
	struct pool *p = t->data;

	if (p->closing)
		close_now(p);
	else
		dispatch(p);
}

/* The interface. */

struct pool *pool_new(uv_loop_t *loop, const struct client_ctx *ctx,
		      const struct server_entry *server, bool log)
{
	struct pool *p = calloc(1, sizeof(*p));
	uint64_t age;

	if (!p)
		return NULL;
	if (uv_timer_init(loop, &p->timer) < 0) {
		free(p);
		return NULL;
	}
	p->timer.data = p;
	p->loop = loop;
	p->ctx = ctx;
	p->server = server;
	p->log = log;
	p->waiting_tail = &p->waiting;
	p->watch = addr_watch_new(loop, addr_gone, p);	/* NULL: unwatched */
	/* Another run of ours knocked a moment ago: connect first. */
	if (gate_memo_get(server, &age, &p->connect_ms) && age < POOL_OPEN_BELIEVED_MS)
		p->open_until = uv_now(loop) + POOL_OPEN_BELIEVED_MS - age;
	return p;
}

struct pool_stream *pool_open(struct pool *p, uint16_t port,
			      const struct pool_stream_hooks *hooks, void *user)
{
	struct pool_stream *ps;

	if (p->closing)
		return NULL;
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return NULL;
	ps->pool = p;
	ps->port = port;
	ps->hooks = hooks;
	ps->user = user;
	*p->waiting_tail = ps;
	p->waiting_tail = &ps->next;
	kick(p, 0);
	return ps;
}

void *pool_stream_user(const struct pool_stream *ps)
{
	return ps->user;
}

enum pool_fail pool_stream_fail(const struct pool_stream *ps)
{
	return ps->fail;
}

uint8_t pool_stream_status(const struct pool_stream *ps)
{
	return ps->status;
}

void pool_stream_free(struct pool_stream *ps)
{
	struct pool_conn *c = ps->conn;

	if (ps->s)
		uvt_stream_free(ps->s);
	free(ps);
	if (c) {
		c->refs--;
		conn_maybe_free(c);
	}
}

void pool_on_up(struct pool *p, pool_up_fn *fn, void *user)
{
	p->on_up = fn;
	p->on_up_user = user;
}

void pool_warm(struct pool *p)
{
	if (p->closing)
		return;
	p->warm = true;
	kick(p, 0);
}

void pool_close(struct pool *p)
{
	if (p->closing)
		return;
	p->closing = true;
	kick(p, 0);
}

void pool_free(struct pool *p)
{
	if (!p)
		return;
	while (p->conns) {
		struct pool_conn *c = p->conns;

		p->conns = c->next;
		free(c);
	}
	free(p);
}
