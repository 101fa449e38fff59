/*
 * One client connection to postern-tunneld: the IKpsk2 handshake, then the
 * yamux session. A connection that fails the handshake is closed without a
 * word; the journal says why.
 */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ip_udp.h"
#include "keys.h"
#include "log.h"
#include "tunneld.h"

static uint64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void peer_text(uv_tcp_t *tcp, char *out, size_t len)
{
	struct sockaddr_storage sa;
	int sl = sizeof(sa);
	char host[46];

	snprintf(out, len, "?");
	if (uv_tcp_getpeername(tcp, (struct sockaddr *)&sa, &sl) != 0)
		return;
	if (sa.ss_family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&sa;

		uv_ip4_name(s4, host, sizeof(host));
		snprintf(out, len, "%s:%u", host, ntohs(s4->sin_port));
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&sa;

		uv_ip6_name(s6, host, sizeof(host));
		snprintf(out, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	}
}

/* message: what happened, after "tunnel from CLIENT (SRC) ". */
static void log_session(int prio, const char *event, struct tsession *t,
			const char *reason, const char *message)
{
	char f_client[96], f_src[80], f_reason[128], f_in[48], f_out[48], f_dur[48];
	const char *fields[8];
	size_t n = 0;
	uint64_t ms = uv_now(t->d->loop) - t->started_ms;

	if (t->client_name[0]) {
		snprintf(f_client, sizeof(f_client), "POSTERN_CLIENT=%s", t->client_name);
		fields[n++] = f_client;
	}
	snprintf(f_src, sizeof(f_src), "POSTERN_SRC=%s", t->src);
	fields[n++] = f_src;
	if (reason) {
		snprintf(f_reason, sizeof(f_reason), "POSTERN_REASON=%s", reason);
		fields[n++] = f_reason;
	}
	if (t->established) {
		snprintf(f_in, sizeof(f_in), "POSTERN_BYTES_IN=%llu",
			 (unsigned long long)t->conn.bytes_in);
		snprintf(f_out, sizeof(f_out), "POSTERN_BYTES_OUT=%llu",
			 (unsigned long long)t->conn.bytes_out);
		snprintf(f_dur, sizeof(f_dur), "POSTERN_DURATION_MS=%llu",
			 (unsigned long long)ms);
		fields[n++] = f_in;
		fields[n++] = f_out;
		fields[n++] = f_dur;
	}
	fields[n] = NULL;
	log_event(prio, event, fields, "tunnel from %s (%s) %s",
		  t->client_name[0] ? t->client_name : "?", t->src, message);
}

static void session_freed(struct uvt_conn *c)
{
	struct tsession *t = (struct tsession *)c;

	if (t->next)
		t->next->pprev = t->pprev;
	*t->pprev = t->next;
	free(t);
}

static void session_ended(struct uvt_conn *c, const char *error)
{
	struct tsession *t = (struct tsession *)c;
	char msg[384];

	t->d->bytes_in += c->bytes_in;
	t->d->bytes_out += c->bytes_out;
	if (!c->authenticated) {
		snprintf(msg, sizeof(msg), "closed before its first message: "
			 "wrong PSK on the client?%s%s", error ? " " : "",
			 error ? error : "");
		log_session(LOG_WARNING, "tunnel_refused", t, "no_transport", msg);
		return;
	}
	snprintf(msg, sizeof(msg), "closed: %llu bytes in, %llu out, %llu ms, "
		 "%u streams%s%s", (unsigned long long)c->bytes_in,
		 (unsigned long long)c->bytes_out,
		 (unsigned long long)(uv_now(t->d->loop) - t->started_ms),
		 t->streams, error ? ": " : "", error ? error : "");
	log_session(error ? LOG_WARNING : LOG_INFO, "tunnel_close", t,
		    error ? error : "closed", msg);
}

static void session_authenticated(struct uvt_conn *c)
{
	struct tsession *t = (struct tsession *)c;

	log_session(LOG_NOTICE, "tunnel_open", t, NULL, "open");
}

static struct uvt_stream *session_accept(struct uvt_conn *c, uint32_t id)
{
	struct tsession *t = (struct tsession *)c;

	if (t->d->draining)
		return NULL;
	return egress_accept(t, id);
}

static const struct uvt_conn_hooks session_hooks = {
	.authenticated = session_authenticated,
	.accept = session_accept,
	.ended = session_ended,
	.freed = session_freed,
};

/* Handshake phase. The connection's handles are the uvt_conn's tcp plus
 * our timer; until the session starts, closing is ours to do. */

static void handshake_closed(uv_handle_t *h)
{
	struct tsession *t = h->data;

	if (--t->conn.handles_open == 0)
		session_freed(&t->conn);
}

static void handshake_fail(struct tsession *t, const char *reason, const char *what)
{
	struct tunneld *d = t->d;
	char msg[256];

	if (t->closing)
		return;
	t->closing = true;
	d->refused++;
	d->pending--;
	if (what) {
		snprintf(msg, sizeof(msg), "refused: %s", what);
		log_session(LOG_WARNING, "tunnel_refused", t, reason, msg);
	}
	tunnel_handshake_free(&t->hs);
	free(t->reader);
	t->reader = NULL;
	t->conn.handles_open = 2;
	t->timer.data = t;
	t->conn.tcp.data = t;
	uv_close((uv_handle_t *)&t->timer, handshake_closed);
	uv_close((uv_handle_t *)&t->conn.tcp, handshake_closed);
}

static void handshake_timeout(uv_timer_t *timer)
{
	handshake_fail(timer->data, "timeout", "no handshake within 5 s");
}

static void ports_of(const struct tunneld *d, uint16_t *ports, size_t *n)
{
	*n = d->cfg->tunnel.n_egress < TUNNEL_MAX_PORTS ? d->cfg->tunnel.n_egress
							 : TUNNEL_MAX_PORTS;
	memcpy(ports, d->cfg->tunnel.egress, *n * sizeof(*ports));
}

struct hello_write {
	uv_write_t req;
	uint8_t data[TUNNEL_LEN_PREFIX + TUNNEL_HANDSHAKE_MAX];
};

static void hello_written(uv_write_t *req, int status)
{
	(void)status;	/* a failed write shows up as a read error */
	free(req);
}

/* Message 1 read: decide, answer, and become a session. */
static void handshake_message(struct tsession *t, const uint8_t *msg, size_t len,
			      const uint8_t *rest, size_t rest_len)
{
	struct tunneld *d = t->d;
	struct tunnel_transport tr;
	struct hello_write *w;
	uint16_t ports[TUNNEL_MAX_PORTS];
	size_t n_ports, out_len;
	char key[KEY_B64_LEN + 1];
	uv_buf_t b;

	if (tunnel_server_read_hello(&t->hs, &d->keys->key, d->keys->psk, msg, len,
				     t->client_pub) != TUNNEL_OK) {
		handshake_fail(t, "handshake", "message 1 did not authenticate "
			       "(made for another server key?)");
		return;
	}
	t->client = server_config_find_client(d->cfg, t->client_pub);
	if (!t->client) {
		key_to_base64(key, t->client_pub);
		/* A public key, not a secret: the admin needs it to add
		 * the client. */
		char what[128];

		snprintf(what, sizeof(what), "unknown client key %s", key);
		handshake_fail(t, "unknown_key", what);
		return;
	}
	snprintf(t->client_name, sizeof(t->client_name), "%s", t->client->name);
	if (client_expired(t->client, (int64_t)(realtime_ms() / 1000))) {
		handshake_fail(t, "expired", "client expired");
		return;
	}
	w = malloc(sizeof(*w));
	ports_of(d, ports, &n_ports);
	out_len = w ? sizeof(w->data) : 0;
	if (!w || tunnel_server_accept(&t->hs, ports, n_ports, realtime_ms(),
				       w->data, &out_len, &tr) != TUNNEL_OK) {
		free(w);
		handshake_fail(t, "internal", "cannot write message 2");
		return;
	}
	b = uv_buf_init((char *)w->data, (unsigned int)out_len);
	uv_write(&w->req, (uv_stream_t *)&t->conn.tcp, &b, 1, hello_written);

	uv_read_stop((uv_stream_t *)&t->conn.tcp);
	uv_timer_stop(&t->timer);
	uv_close((uv_handle_t *)&t->timer, NULL);
	free(t->reader);
	t->reader = NULL;
	d->pending--;
	d->accepted++;
	t->established = true;
	t->conn.bytes_in = TUNNEL_LEN_PREFIX + len;
	t->conn.bytes_out = out_len;
	if (!uvt_conn_start(&t->conn, d->loop, &tr, false, &session_hooks, t,
			    rest, rest_len)) {
		log_msg(LOG_ERR, "out of memory starting a session");
		tunnel_transport_free(&tr);
		t->conn.handles_open = 1;
		uv_close((uv_handle_t *)&t->conn.tcp, handshake_closed);
	}
}

static void handshake_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	(void)hint;
	*buf = uvt_read_buf();
}

static void handshake_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct tsession *t = st->data;
	const uint8_t *in = (const uint8_t *)buf->base, *msg;
	size_t in_len = n > 0 ? (size_t)n : 0, len;
	enum tunnel_error e;

	if (n == 0)
		return;
	if (n < 0) {
		handshake_fail(t, "eof", n == UV_EOF ? NULL : uv_strerror((int)n));
		return;
	}
	e = tunnel_read(t->reader, &in, &in_len, &msg, &len);
	if (e == TUNNEL_AGAIN)
		return;
	if (e != TUNNEL_OK) {
		handshake_fail(t, "frame", "malformed message 1");
		return;
	}
	handshake_message(t, msg, len, in, in_len);
}

void tsession_accept(struct tunneld *d, uv_stream_t *listener)
{
	struct tsession *t = calloc(1, sizeof(*t));
	uv_tcp_t *tcp;

	if (!t) {
		log_msg(LOG_ERR, "out of memory accepting a connection");
		return;
	}
	tcp = &t->conn.tcp;
	uv_tcp_init(d->loop, tcp);
	tcp->data = t;
	if (uv_accept(listener, (uv_stream_t *)tcp) != 0) {
		uv_close((uv_handle_t *)tcp, (uv_close_cb)free);
		return;
	}
	t->d = d;
	t->next = d->sessions;
	if (t->next)
		t->next->pprev = &t->next;
	t->pprev = &d->sessions;
	d->sessions = t;
	t->started_ms = uv_now(d->loop);
	peer_text(tcp, t->src, sizeof(t->src));
	t->conn.handles_open = 2;
	/* Past the cap or while draining, close at once: an unauthenticated
	 * peer gets no more than the accept. */
	t->reader = d->pending < MAX_PENDING_HANDSHAKES && !d->draining ?
		    malloc(sizeof(*t->reader)) : NULL;
	uv_timer_init(d->loop, &t->timer);
	t->timer.data = t;
	d->pending++;
	if (!t->reader) {
		handshake_fail(t, "busy", "too many handshakes in progress");
		return;
	}
	tunnel_reader_init(t->reader, TUNNEL_EXPECT_MSG1);
	uv_tcp_nodelay(tcp, 1);
	uv_tcp_keepalive(tcp, 1, 60);
	uv_timer_start(&t->timer, handshake_timeout, HANDSHAKE_TIMEOUT_MS, 0);
	uv_read_start((uv_stream_t *)tcp, handshake_alloc, handshake_read);
}

void tsession_close(struct tsession *t, const char *why)
{
	if (!t->established) {
		handshake_fail(t, "closed", why);
		return;
	}
	(void)why;
	uvt_conn_close(&t->conn);
}
