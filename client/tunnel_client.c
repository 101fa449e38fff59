/* One tunnel connection: reach the port, knock if need be, handshake. */
#include "tunnel_client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "knocker.h"

#define TCP_KEEPIDLE_S 30
#define TCP_KEEPINTVL_S 10
#define TCP_KEEPCNT_N 3

/* One connect(2) in flight, watched for writability. */
struct tclient_attempt {
	uv_poll_t poll;
	struct tclient *tc;
	uint32_t id;			/* the gate's */
	int fd;				/* closed with the poll unless taken */
};

#define TC_OF(ptr, member) \
	((struct tclient *)((char *)(ptr) - offsetof(struct tclient, member)))

static void reach(struct tclient *tc);
static void timer_rearm(struct tclient *tc);
static void timer_fired(uv_timer_t *t);
static void hs_closed_early(struct tclient *tc);

static uint64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A handle or request of ours is gone; the last one frees tc. */
static void release(struct tclient *tc)
{
	if (--tc->refs > 0 || tc->state != TCLIENT_DONE || tc->freed_reported)
		return;
	tc->freed_reported = true;
	tc->hooks->freed(tc);
}

static void timer_closed(uv_handle_t *h)
{
	release(TC_OF(h, timer));
}

static void attempt_closed(uv_handle_t *h)
{
	struct tclient_attempt *a = (struct tclient_attempt *)h;
	struct tclient *tc = a->tc;

	if (a->fd >= 0)
		close(a->fd);
	free(a);
	release(tc);
}

static struct tclient_attempt **attempt_slot(struct tclient *tc, uint32_t id)
{
	for (size_t i = 0; i < GATE_ATTEMPTS; i++)
		if (tc->attempts[i] && tc->attempts[i]->id == id)
			return &tc->attempts[i];
	return NULL;
}

static void attempt_close(struct tclient_attempt **slot)
{
	struct tclient_attempt *a = *slot;

	*slot = NULL;
	/* Stops the watch at once (epoll DEL), so a taken fd may be opened
	 * as a uv_tcp_t right after. */
	uv_close((uv_handle_t *)&a->poll, attempt_closed);
}

static void attempts_close(struct tclient *tc)
{
	for (size_t i = 0; i < GATE_ATTEMPTS; i++)
		if (tc->attempts[i])
			attempt_close(&tc->attempts[i]);
	gate_free(tc->gate);
	tc->gate = NULL;
}

/* Close everything of ours: no callback but freed, once closed. */
static void teardown(struct tclient *tc)
{
	tc->state = TCLIENT_DONE;
	if (tc->conn)
		uvt_conn_abort(tc->conn, NULL);	/* conn_ended ignores it */
	attempts_close(tc);
	if (!uv_is_closing((uv_handle_t *)&tc->timer))
		uv_close((uv_handle_t *)&tc->timer, timer_closed);
	/* The callback still comes, with UV_EAI_CANCELED if this worked. */
	uv_cancel((uv_req_t *)&tc->gai);
}

static void fail(struct tclient *tc, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct tclient *tc, const char *fmt, ...)
{
	char err[512];
	va_list ap;

	if (tc->state == TCLIENT_DONE)
		return;
	va_start(ap, fmt);
	vsnprintf(err, sizeof(err), fmt, ap);
	va_end(ap);
	teardown(tc);
	tc->hooks->failed(tc, err);
}

/* IK makes the server's silence and a reply that does not authenticate
 * the only signs of a refusal, and neither says which key was wrong. A
 * reply that does not authenticate: the server read message 1, so it
 * holds the key we named, and the PSK is what differs (IKpsk2 mixes it
 * in only at message 2) or the reply was altered. */
static void fail_refused(struct tclient *tc)
{
	tc->failure = TCLIENT_FAIL_HS_AUTH;
	fail(tc, "%s: handshake refused: wrong server key or PSK, or this "
	     "device's key is not allowed (the server does not say which, by "
	     "design); postern doctor %s tells more", tc->server->name,
	     tc->server->name);
}

static uint64_t hs_backoff_ms(unsigned int tries)
{
	uint64_t d = (uint64_t)TCLIENT_HS_BACKOFF_MS << (tries - 1);
	uint32_t r = 0;

	random_bytes(&r, sizeof(r));
	return d / 2 + r % (d / 2 + 1);
}

/*
 * The server closed the connection before answering message 1. The
 * server does not say why, by design: a full handshake queue (ours was
 * the oldest pending, and a newer one pushed it out), a message 1 made
 * for another server key or PSK, or a key it does not allow all look the
 * same. The first is passing, so try again a few times.
 */
static void hs_closed_early(struct tclient *tc)
{
	if (tc->hs_retries >= TCLIENT_HS_RETRIES) {
		tc->failure = TCLIENT_FAIL_HS_CLOSED;
		fail(tc, "%s: the server closed the connection before answering "
		     "the handshake (%u tries). Possible causes, most likely "
		     "first: the server is busy (its handshake cap was reached), "
		     "a wrong server key or PSK, this device's key is not "
		     "allowed; the server's journal says which, and postern "
		     "doctor %s tells more", tc->server->name,
		     tc->hs_retries + 1, tc->server->name);
		return;
	}
	tc->hs_retries++;
	/* Closing already, when the uvt_conn tells us; freed clears tc->conn. */
	if (tc->conn)
		uvt_conn_abort(tc->conn, NULL);
	tc->state = TCLIENT_BACKOFF;
	tc->attempt_deadline_ms = uv_now(tc->loop) + hs_backoff_ms(tc->hs_retries);
	timer_rearm(tc);
}

/* The session. */

/* An end before the server's first transport message is how a pending
 * handshake pushed out by a busier server looks, after message 2 too. */
static bool closed_unconfirmed(struct tclient *tc, const char *error)
{
	return tc->state == TCLIENT_CONFIRMING &&
	       (!error || !strcmp(error, uv_strerror(UV_ECONNRESET)) ||
		!strcmp(error, uv_strerror(UV_EPIPE)));
}

static void conn_ended(struct uvt_conn *c, const char *error)
{
	struct tclient *tc = uvt_conn_user(c);

	if (tc->state == TCLIENT_DONE)
		return;		/* our teardown */
	if (tc->up_reported) {
		tc->state = TCLIENT_DONE;
		tc->hooks->ended(tc, error);
		return;
	}
	if (closed_unconfirmed(tc, error)) {
		hs_closed_early(tc);
		return;
	}
	fail(tc, "%s: tunnel failed at once: %s", tc->server->name,
	     error ? error : "connection closed");
}

/* The server's first transport message: it confirmed us. "up" is
 * reported from the timer, outside the session's input. */
static bool conn_confirmed(struct uvt_conn *c)
{
	struct tclient *tc = uvt_conn_user(c);

	if (tc->state == TCLIENT_CONFIRMING) {
		tc->state = TCLIENT_UP;
		uv_timer_start(&tc->timer, timer_fired, 0, 0);
	}
	return true;
}

static void conn_freed(struct uvt_conn *c)
{
	struct tclient *tc = uvt_conn_user(c);

	tc->conn = NULL;
	release(tc);
}

/* Message 2 read. Up once the server's first transport message comes
 * (conn_confirmed): until then it may drop us, and a retry is still
 * possible. The handshake deadline runs on. */
static bool conn_answered(struct uvt_conn *c, const struct tunnel_server_hello *h)
{
	struct tclient *tc = uvt_conn_user(c);

	if (tc->state != TCLIENT_HANDSHAKE)
		return false;
	tc->hello = *h;
	tc->skew_ms = (int64_t)tc->hello.server_time_ms - (int64_t)realtime_ms();
	tc->connect_ms = uv_now(tc->loop) - tc->started_ms;
	tc->state = TCLIENT_CONFIRMING;
	return true;
}

static void conn_hs_failed(struct uvt_conn *c, enum uvt_hs_error e,
			   const char *detail)
{
	struct tclient *tc = uvt_conn_user(c);
	const struct server_entry *s = tc->server;

	if (tc->state != TCLIENT_HANDSHAKE)
		return;
	switch (e) {
	case UVT_HS_CLOSED:
		hs_closed_early(tc);
		break;
	case UVT_HS_CUT:
		tc->failure = TCLIENT_FAIL_HS_PROTO;
		fail(tc, "%s: handshake: the server's answer was cut short", s->name);
		break;
	case UVT_HS_AUTH:
		fail_refused(tc);
		break;
	case UVT_HS_PROTO:
		tc->failure = TCLIENT_FAIL_HS_PROTO;
		fail(tc, "%s: handshake failed: %s (is %s port %u a postern tunnel?)",
		     s->name, detail, s->address, s->tunnel_port);
		break;
	case UVT_HS_IO:
	case UVT_HS_INTERNAL:
		fail(tc, "%s: handshake: %s", s->name, detail ? detail : "failed");
		break;
	}
}

static const struct uvt_conn_hooks conn_hooks = {
	.answered = conn_answered,
	.hs_failed = conn_hs_failed,
	.authenticated = conn_confirmed,
	.ended = conn_ended,
	.freed = conn_freed,
};

/* Ten seconds, or twenty connect times if longer: on a slow, lossy path
 * TCP's first resend of a lost message waits about three round trips, and
 * the handshake is three messages (1 s each way, 10 % loss: a run lost
 * three and took over ten seconds). */
static uint64_t handshake_limit_ms(const struct tclient *tc)
{
	uint64_t scaled = 20 * tc->gate_connect_ms;

	return scaled > TCLIENT_HANDSHAKE_MS ? scaled : TCLIENT_HANDSHAKE_MS;
}

/* The socket is connected: the uvt_conn takes it from here. */
static void handshake_start(struct tclient *tc, int fd)
{
	struct uvt_keys k = { .key = &tc->ctx->sec->key, .psk = tc->ctx->sec->psk,
			      .server_pub = tc->server->public_key };
	const char *err;

	tc->state = TCLIENT_HANDSHAKE;
	tc->conn = uvt_conn_connect(tc->loop, fd, &k, &conn_hooks, tc, &err);
	if (!tc->conn) {
		fail(tc, "%s: handshake: %s", tc->server->name, err);
		return;
	}
	tc->refs++;
	tc->attempt_deadline_ms = uv_now(tc->loop) + handshake_limit_ms(tc);
	timer_rearm(tc);
}

/* Reaching the port. */

/* The tunnel is long-lived and idle for long stretches: keepalive finds
 * a dead peer behind a NAT; NODELAY keeps keystrokes from waiting. */
static void tune_socket(int fd)
{
	int one = 1, idle = TCP_KEEPIDLE_S, intvl = TCP_KEEPINTVL_S, cnt = TCP_KEEPCNT_N;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* Attempt a connected and the gate chose it: the tunnel socket. */
static void connected(struct tclient *tc, struct tclient_attempt **slot)
{
	int fd = (*slot)->fd;

	(*slot)->fd = -1;
	attempt_close(slot);
	gate_free(tc->gate);
	tc->gate = NULL;
	tune_socket(fd);
	if (tc->hooks->reached)
		tc->hooks->reached(tc);
	handshake_start(tc, fd);
}

static void attempt_ready(uv_poll_t *h, int status, int events)
{
	struct tclient_attempt *a = h->data;
	struct tclient *tc = a->tc;
	uint64_t now = uv_now(tc->loop);
	socklen_t len = sizeof(int);
	int soerr = 0;

	(void)events;
	if (tc->state != TCLIENT_REACHING || !attempt_slot(tc, a->id))
		return;
	uv_poll_stop(h);
	if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr == 0 && status < 0)
		soerr = -status;
	if (soerr == 0 && gate_connected(tc->gate, a->id, now)) {
		reach(tc);	/* abandons the rest, then opens a */
		return;
	}
	if (soerr)
		gate_connect_failed(tc->gate, a->id, soerr, now);
	attempt_close(attempt_slot(tc, a->id));
	reach(tc);
}

/* A fresh connect(2), watched until it connects, fails or the gate
 * abandons it. */
static void attempt_start(struct tclient *tc, uint32_t id)
{
	struct tclient_attempt *a, **slot = NULL;
	int fd, rc;

	for (size_t i = 0; !slot && i < GATE_ATTEMPTS; i++)
		if (!tc->attempts[i])
			slot = &tc->attempts[i];
	fd = socket(tc->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || (connect(fd, (struct sockaddr *)&tc->sa, tc->sa_len) < 0 &&
		       errno != EINPROGRESS)) {
		int e = errno;

		if (fd >= 0)
			close(fd);
		fail(tc, "%s: connecting to %s port %u: %s", tc->server->name,
		     tc->server->address, tc->server->tunnel_port, strerror(e));
		return;
	}
	a = slot ? calloc(1, sizeof(*a)) : NULL;
	rc = a ? uv_poll_init_socket(tc->loop, &a->poll, fd) : UV_ENOMEM;
	if (rc < 0) {
		close(fd);
		free(a);
		fail(tc, "%s: %s", tc->server->name, uv_strerror(rc));
		return;
	}
	a->tc = tc;
	a->id = id;
	a->fd = fd;
	a->poll.data = a;
	tc->refs++;
	*slot = a;
	uv_poll_start(&a->poll, UV_WRITABLE, attempt_ready);
}

static bool send_knock(struct tclient *tc, char *err, size_t err_len)
{
	struct sockaddr_storage ksa = tc->sa;

	if (ksa.ss_family == AF_INET6)
		((struct sockaddr_in6 *)&ksa)->sin6_port = htons(tc->server->knock_port);
	else
		((struct sockaddr_in *)&ksa)->sin_port = htons(tc->server->knock_port);
	tc->knocks++;
	if (tc->hooks->knock)
		return tc->hooks->knock(tc, &ksa, tc->sa_len, err, err_len);
	return knock_send(tc->ctx, tc->server, &ksa, tc->sa_len, NULL, err, err_len);
}

/* Do what the gate says until it says wait (client/gate.h). */
static void reach(struct tclient *tc)
{
	uint64_t now = uv_now(tc->loop);
	struct tclient_attempt **slot;
	char err[768];

	while (tc->state == TCLIENT_REACHING) {
		struct gate_action a = gate_next(tc->gate, now);

		switch (a.what) {
		case GATE_WAIT:
			tc->attempt_deadline_ms = a.deadline;
			timer_rearm(tc);
			return;
		case GATE_KNOCK:
			/* The first knock failing ends it; a later one shows
			 * as "unanswered" in the end. */
			if (!send_knock(tc, err, sizeof(err)) && !tc->knocked) {
				tc->failure = TCLIENT_FAIL_KNOCK;
				fail(tc, "%s", err);
				return;
			}
			tc->knocked = true;
			break;
		case GATE_CONNECT:
			attempt_start(tc, a.attempt);
			break;
		case GATE_ABANDON:
			if ((slot = attempt_slot(tc, a.attempt)))
				attempt_close(slot);
			break;
		case GATE_OPEN:
			tc->gate_connect_ms = gate_connect_ms(tc->gate);
			if ((slot = attempt_slot(tc, a.attempt)))
				connected(tc, slot);
			else
				fail(tc, "%s: lost the connected socket", tc->server->name);
			return;
		case GATE_FAILED:
			tc->failure = a.failure == GATE_REFUSED ?
				      TCLIENT_FAIL_REFUSED : TCLIENT_FAIL_UNANSWERED;
			tc->last_error = gate_last_error(tc->gate);
			gate_failure_text(err, sizeof(err), tc->server, tc->gate,
					  a.failure, tc->ctx->connect_timeout_ms);
			fail(tc, "%s", err);
			return;
		}
	}
}

/* Start reaching the port; probe_ms as in struct gate_params. */
static void reach_start(struct tclient *tc, uint64_t probe_ms)
{
	struct gate_params p = { .total_ms = tc->ctx->connect_timeout_ms,
				 .probe_ms = probe_ms };

	tc->gate = gate_new(&p, uv_now(tc->loop));
	if (!tc->gate) {
		fail(tc, "%s: out of memory", tc->server->name);
		return;
	}
	tc->state = TCLIENT_REACHING;
	reach(tc);
}

static void timer_fired(uv_timer_t *t)
{
	struct tclient *tc = t->data;
	uint64_t now = uv_now(tc->loop);

	switch (tc->state) {
	case TCLIENT_REACHING:
		reach(tc);
		return;
	case TCLIENT_BACKOFF:
		if (now >= tc->attempt_deadline_ms && !tc->conn) {
			/* The gate let us in a moment ago: no knock first. */
			reach_start(tc, 3 * tc->gate_connect_ms + TCLIENT_PROBE_MS);
			return;
		}
		if (now >= tc->attempt_deadline_ms)
			tc->attempt_deadline_ms = now + 1;
		break;
	case TCLIENT_UP:
		if (!tc->up_reported) {
			uv_close((uv_handle_t *)&tc->timer, timer_closed);
			tc->up_reported = true;
			tc->hooks->up(tc);
		}
		return;
	case TCLIENT_CONFIRMING:
	case TCLIENT_HANDSHAKE:
		if (now >= tc->attempt_deadline_ms) {
			tc->failure = TCLIENT_FAIL_HS_TIMEOUT;
			fail(tc, "%s: handshake timed out after %llu s (is %s port %u "
			     "a postern tunnel?)", tc->server->name,
			     (unsigned long long)(handshake_limit_ms(tc) / 1000),
			     tc->server->address,
			     tc->server->tunnel_port);
			return;
		}
		break;
	default:
		return;
	}
	timer_rearm(tc);
}

/* Wake at the next deadline of the current state. */
static void timer_rearm(struct tclient *tc)
{
	uint64_t now = uv_now(tc->loop), next = tc->attempt_deadline_ms;

	if (tc->state == TCLIENT_DONE || next == GATE_NEVER)
		return;
	uv_timer_start(&tc->timer, timer_fired, next > now ? next - now : 0, 0);
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct tclient *tc = req->data;

	if (tc->state != TCLIENT_RESOLVING) {
		/* cancelled, or closed meanwhile */
	} else if (status < 0) {
		tc->failure = TCLIENT_FAIL_RESOLVE;
		fail(tc, "%s: cannot resolve %s: %s", tc->server->name,
		     tc->server->address, uv_strerror(status));
	} else {
		memcpy(&tc->sa, res->ai_addr, res->ai_addrlen);
		tc->sa_len = res->ai_addrlen;
		if (tc->hooks->resolved)
			tc->hooks->resolved(tc);
		reach_start(tc, tc->probe_ms);
	}
	uv_freeaddrinfo(res);
	release(tc);
}

bool tclient_connect(struct tclient *tc, uv_loop_t *loop,
		     const struct client_ctx *ctx, const struct server_entry *s,
		     uint64_t probe_ms, const struct tclient_hooks *hooks,
		     void *user)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM };
	char service[8];
	int rc;

	memset(tc, 0, sizeof(*tc));
	tc->loop = loop;
	tc->ctx = ctx;
	tc->server = s;
	tc->hooks = hooks;
	tc->user = user;
	tc->state = TCLIENT_RESOLVING;
	tc->probe_ms = probe_ms;
	tc->started_ms = uv_now(loop);
	if (uv_timer_init(loop, &tc->timer) < 0)
		return false;
	tc->timer.data = tc;
	tc->refs = 1;
	snprintf(service, sizeof(service), "%u", s->tunnel_port);
	tc->gai.data = tc;
	rc = uv_getaddrinfo(loop, &tc->gai, resolved, s->address, service, &hints);
	if (rc < 0) {
		tc->failure = TCLIENT_FAIL_RESOLVE;
		fail(tc, "%s: cannot resolve %s: %s", s->name, s->address,
		     uv_strerror(rc));
	}
	else
		tc->refs++;
	return true;
}

void tclient_close(struct tclient *tc)
{
	if (tc->state == TCLIENT_UP)
		uvt_conn_close(tc->conn);	/* ended, then freed */
	else if (tc->state != TCLIENT_DONE)
		teardown(tc);
}

bool tclient_port_allowed(const struct tclient *tc, uint16_t port)
{
	for (size_t i = 0; i < tc->hello.n_ports; i++)
		if (tc->hello.ports[i] == port)
			return true;
	return false;
}

void tclient_ports_text(const struct tclient *tc, char *buf, size_t len)
{
	size_t off = 0;

	snprintf(buf, len, "none");
	for (size_t i = 0; i < tc->hello.n_ports && off < len; i++) {
		int n = snprintf(buf + off, len - off, "%s%u", i ? ", " : "",
				 tc->hello.ports[i]);

		if (n < 0)
			break;
		off += (size_t)n;
	}
}
