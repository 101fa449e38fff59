/*
 * A stream the client opened: its request names a loopback port; if the
 * port is allow-listed, connect to it on 127.0.0.1 (then ::1), answer one
 * status byte, and relay. Deny by default: nothing but loopback and the
 * configured ports is ever reached.
 */
#include <errno.h>
#include <stddef.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tunneld.h"

enum egress_state { REQUEST, CONNECTING, RELAYING, DENIED };

/* The relay takes over each handle's data pointer: find the egress from
 * the handle's address instead. */
#define EGRESS_OF(ptr, member) \
	((struct egress *)((char *)(ptr) - offsetof(struct egress, member)))

struct egress {
	struct uvt_stream *stream;
	struct tsession *t;
	enum egress_state state;
	uint8_t req[TUNNEL_REQUEST_LEN];
	size_t req_len;
	uint16_t port;
	bool tried_v6, tcp_open, stream_gone;
	uv_tcp_t tcp;
	uv_connect_t connect;
	uv_timer_t timer;
	int handles;
};

/*
 * stream_open lines, per session: up to STREAM_LOG_OPENED a minute for
 * streams opened, one a minute per error status for the others (a client
 * may open and close streams as fast as it likes). What is not logged is
 * counted: the next line of its kind, or a summary a minute later
 * (egress_flush_logs) or when the session ends, gives the number.
 */
#define STREAM_LOG_OPENED 10

static const uint8_t log_statuses[TSESSION_STREAM_LOGS] = {
	TUNNEL_STATUS_OK, TUNNEL_STATUS_NOT_ALLOWED, TUNNEL_STATUS_REFUSED,
	TUNNEL_STATUS_UNREACHABLE, TUNNEL_STATUS_INTERNAL,
};

static size_t log_subject(uint8_t status)
{
	for (size_t i = 0; i < TSESSION_STREAM_LOGS; i++)
		if (log_statuses[i] == status)
			return i;
	return TSESSION_STREAM_LOGS - 1;	/* with internal errors */
}

static void log_stream(struct egress *e, uint8_t status)
{
	struct tsession *t = e->t;
	size_t i = log_subject(status);
	unsigned int burst = i == 0 ? STREAM_LOG_OPENED : 1;
	char f_client[96], f_src[80], f_port[32], f_status[48], f_count[48];
	char more[160] = "";
	const char *fields[] = { f_client, f_src, f_port, f_status, NULL, NULL };
	uint64_t held;
	size_t n;

	if (!log_throttle_burst(&t->stream_log, i, uv_now(t->d->loop), burst, &held))
		return;
	snprintf(f_client, sizeof(f_client), "POSTERN_CLIENT=%s", t->client_name);
	snprintf(f_src, sizeof(f_src), "POSTERN_SRC=%s", t->src);
	snprintf(f_port, sizeof(f_port), "POSTERN_PORTS=%u", e->port);
	snprintf(f_status, sizeof(f_status), "POSTERN_STATUS=%s",
		 tunnel_status_str(status));
	if (held) {
		snprintf(f_count, sizeof(f_count), "POSTERN_COUNT=%llu",
			 (unsigned long long)held + 1);
		fields[4] = f_count;
		snprintf(more, sizeof(more), " (and %llu more like it since the "
			 "last such line)", (unsigned long long)held);
	}
	n = strlen(more);
	if (log_throttle_spent(&t->stream_log, i, burst))
		snprintf(more + n, sizeof(more) - n, "; more like it on this tunnel "
			 "within a minute are only counted");
	log_event(status == TUNNEL_STATUS_OK ? LOG_INFO : LOG_WARNING, "stream_open",
		  fields, "%s (%s): stream to port %u: %s%s", t->client_name,
		  t->src, e->port, tunnel_status_str(status), more);
}

void egress_flush_logs(struct tsession *t, bool ending)
{
	uint64_t now = ending ? UINT64_MAX : uv_now(t->d->loop), held;
	char f_client[96], f_src[80], f_status[48], f_count[48];
	const char *fields[] = { f_client, f_src, f_status, f_count, NULL };

	for (size_t i = 0; i < TSESSION_STREAM_LOGS; i++) {
		if (!log_throttle_due(&t->stream_log, i, now, &held))
			continue;
		snprintf(f_client, sizeof(f_client), "POSTERN_CLIENT=%s", t->client_name);
		snprintf(f_src, sizeof(f_src), "POSTERN_SRC=%s", t->src);
		snprintf(f_status, sizeof(f_status), "POSTERN_STATUS=%s",
			 tunnel_status_str(log_statuses[i]));
		snprintf(f_count, sizeof(f_count), "POSTERN_COUNT=%llu",
			 (unsigned long long)held);
		log_event(i == 0 ? LOG_INFO : LOG_WARNING, "stream_open", fields,
			  "%s (%s): %llu more streams (%s) since the last such line",
			  t->client_name, t->src, (unsigned long long)held,
			  tunnel_status_str(log_statuses[i]));
	}
}

/* The last of the egress: its handles are closed, its stream done. */
static void egress_free(struct egress *e)
{
	struct tsession *t = e->t;

	uvt_stream_free(e->stream);
	free(e);
	tsession_stream_freed(t);
}

static void egress_handle_closed(uv_handle_t *h)
{
	struct egress *e = h->type == UV_TCP ? EGRESS_OF(h, tcp) : EGRESS_OF(h, timer);

	if (--e->handles > 0)
		return;
	if (e->stream_gone)
		egress_free(e);
}

/* A relayed stream reset, or whose tunnel ended, before the service got
 * all of the client's bytes and a FIN: the service's connection is reset
 * too. A FIN would say the data was complete, and the bytes not yet
 * written would hold the socket in the kernel until the service read
 * them. */
static bool cut_short(const struct egress *e)
{
	return e->state == RELAYING && uvt_stream_cut_short(e->stream);
}

static void egress_close_handles(struct egress *e)
{
	if (e->handles == 0) {
		if (e->stream_gone)
			egress_free(e);
		return;
	}
	if (!uv_is_closing((uv_handle_t *)&e->timer))
		uv_close((uv_handle_t *)&e->timer, egress_handle_closed);
	if (!e->tcp_open || uv_is_closing((uv_handle_t *)&e->tcp))
		return;
	if (!cut_short(e) || uv_tcp_close_reset(&e->tcp, egress_handle_closed) < 0)
		uv_close((uv_handle_t *)&e->tcp, egress_handle_closed);
}

/* The stream is over (relayed to its end, reset, or its session ended). */
static void egress_done(struct uvt_stream *s)
{
	struct egress *e = uvt_stream_user(s);

	e->stream_gone = true;
	egress_close_handles(e);
}

static void answer(struct egress *e, uint8_t status)
{
	log_stream(e, status);
	uvt_stream_send(e->stream, &status, 1);
	if (status != TUNNEL_STATUS_OK) {
		e->t->d->n.streams_failed++;
		e->state = DENIED;
		uvt_stream_close(e->stream);
	}
}

static bool port_allowed(const struct tunneld *d, uint16_t port)
{
	for (size_t i = 0; i < d->cfg->tunnel.n_egress; i++)
		if (d->cfg->tunnel.egress[i] == port)
			return true;
	return false;
}

static void connected(uv_connect_t *req, int status);

static bool start_connect(struct egress *e, bool v6)
{
	struct sockaddr_storage sa;
	int rc;

	memset(&sa, 0, sizeof(sa));
	if (v6)
		uv_ip6_addr("::1", e->port, (struct sockaddr_in6 *)&sa);
	else
		uv_ip4_addr("127.0.0.1", e->port, (struct sockaddr_in *)&sa);
	uv_tcp_init(e->t->d->loop, &e->tcp);
	e->tcp.data = e;
	e->tcp_open = true;
	e->handles++;
	rc = uv_tcp_connect(&e->connect, &e->tcp, (struct sockaddr *)&sa, connected);
	if (rc < 0) {
		uv_close((uv_handle_t *)&e->tcp, egress_handle_closed);
		e->tcp_open = false;
		return false;
	}
	return true;
}

static void retry_v6_closed(uv_handle_t *h)
{
	struct egress *e = EGRESS_OF(h, tcp);

	e->handles--;
	if (e->stream_gone) {
		egress_close_handles(e);
		return;
	}
	if (!start_connect(e, true))
		answer(e, TUNNEL_STATUS_INTERNAL);
}

static void connected(uv_connect_t *req, int status)
{
	struct egress *e = EGRESS_OF(req, connect);

	/* Closing (stream gone) or given up (timed out): the handle's close
	 * callback does the rest. */
	if (e->stream_gone || e->state == DENIED)
		return;
	if (status == UV_ECONNREFUSED && !e->tried_v6) {
		/* A service may listen on ::1 only. */
		e->tried_v6 = true;
		e->tcp_open = false;
		uv_close((uv_handle_t *)&e->tcp, retry_v6_closed);
		return;
	}
	uv_timer_stop(&e->timer);
	if (status < 0) {
		answer(e, tunnel_status_from_errno(-status));
		return;
	}
	uv_tcp_nodelay(&e->tcp, 1);
	e->state = RELAYING;
	answer(e, TUNNEL_STATUS_OK);
	uvt_stream_relay(e->stream, (uv_stream_t *)&e->tcp, (uv_stream_t *)&e->tcp);
}

static void connect_timeout(uv_timer_t *timer)
{
	struct egress *e = EGRESS_OF(timer, timer);

	if (e->state != CONNECTING || !e->tcp_open)
		return;
	e->state = DENIED;
	answer(e, TUNNEL_STATUS_UNREACHABLE);
	/* Closing the socket cancels the connect: connected() then sees
	 * DENIED and does nothing more. */
	e->tcp_open = false;
	uv_close((uv_handle_t *)&e->tcp, egress_handle_closed);
}

/* The 3-byte request, then nothing until the connect is done. */
static size_t egress_preamble(struct uvt_stream *s, const uint8_t *p, size_t n)
{
	struct egress *e = uvt_stream_user(s);
	size_t take;

	switch (e->state) {
	case DENIED:
		return n;	/* the stream is closing: drop what still comes */
	case CONNECTING:
	case RELAYING:
		return 0;	/* kept for the relay */
	case REQUEST:
		break;
	}
	take = TUNNEL_REQUEST_LEN - e->req_len;
	if (take > n)
		take = n;
	memcpy(e->req + e->req_len, p, take);
	e->req_len += take;
	if (e->req_len < TUNNEL_REQUEST_LEN)
		return take;
	if (!tunnel_request_decode(e->req, &e->port)) {
		answer(e, TUNNEL_STATUS_INTERNAL);
		return n;
	}
	if (!port_allowed(e->t->d, e->port)) {
		answer(e, TUNNEL_STATUS_NOT_ALLOWED);
		return n;
	}
	e->state = CONNECTING;
	uv_timer_start(&e->timer, connect_timeout, EGRESS_TIMEOUT_MS, 0);
	if (!start_connect(e, false))
		answer(e, TUNNEL_STATUS_INTERNAL);
	return take;
}

static const struct uvt_stream_hooks egress_hooks = {
	.preamble = egress_preamble,
	.failed = egress_done,
	.done = egress_done,
};

/* A stream hit a limit: one line per tunnel and reason, the counters
 * count every one. */
static void log_refused(struct tsession *t, bool *logged, const char *reason,
			const char *what)
{
	char f_client[96], f_src[80], f_reason[64];
	const char *fields[] = { f_client, f_src, f_reason, NULL };

	if (*logged)
		return;
	*logged = true;
	snprintf(f_client, sizeof(f_client), "POSTERN_CLIENT=%s", t->client_name);
	snprintf(f_src, sizeof(f_src), "POSTERN_SRC=%s", t->src);
	snprintf(f_reason, sizeof(f_reason), "POSTERN_REASON=%s", reason);
	log_event(LOG_WARNING, "stream_refused", fields, "%s (%s): %s; further "
		  "ones on this tunnel are only counted", t->client_name, t->src,
		  what);
}

/* SYN, and no complete open request since: reset, so that idle streams
 * cannot pile up. */
static void request_timeout(uv_timer_t *timer)
{
	struct egress *e = EGRESS_OF(timer, timer);
	struct tsession *t = e->t;
	char what[96];

	if (e->state != REQUEST)
		return;
	t->d->n.stream_timeouts++;
	snprintf(what, sizeof(what), "stream reset: no open request within %u s "
		 "(stream_open_timeout)", t->d->cfg->tunnel.stream_open_timeout);
	log_refused(t, &t->stream_timeout_logged, "stream_open_timeout", what);
	e->state = DENIED;
	uvt_stream_reset(e->stream);	/* egress_done follows */
}

/* Past max_streams the stream is refused (RST). */
static bool streams_capped(struct tsession *t)
{
	unsigned int max = t->d->cfg->tunnel.max_streams;
	char what[96];

	if (t->open_streams < max)
		return false;
	t->d->n.streams_refused++;
	snprintf(what, sizeof(what), "stream refused: max_streams (%u) open", max);
	log_refused(t, &t->streams_capped_logged, "max_streams", what);
	return true;
}

struct uvt_stream *egress_accept(struct tsession *t, uint32_t id)
{
	struct egress *e;

	if (streams_capped(t))
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->t = t;
	e->stream = uvt_stream_new(t->conn, id, &egress_hooks, e);
	if (!e->stream) {
		free(e);
		return NULL;
	}
	uv_timer_init(t->d->loop, &e->timer);
	e->timer.data = e;
	e->connect.data = e;
	e->handles = 1;
	t->streams++;
	t->open_streams++;	/* until egress_free: t lives as long */
	t->d->open_streams++;
	t->d->n.streams++;
	uv_timer_start(&e->timer, request_timeout,
		       (uint64_t)t->d->cfg->tunnel.stream_open_timeout * 1000, 0);
	return e->stream;
}
