/*
 * One client connection to postern-tunneld: the IKpsk2 handshake, its
 * confirmation, then the yamux session.
 *
 * Message 1 names a client key, but anyone who captured one can replay
 * it: it proves nothing until the client's first transport message
 * decrypts. Until then the connection stays pending (counted in the
 * handshake caps, closed at the handshake timeout), gets no keepalive and
 * no stream, and the log says the key was only claimed. A connection that
 * fails is closed without a word; the journal says why.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "addr.h"
#include "keys.h"
#include "log.h"
#include "tunneld.h"

static uint64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void peer_of(struct tsession *t)
{
	struct sockaddr_storage sa;
	int sl = sizeof(sa);

	snprintf(t->src, sizeof(t->src), "?");
	memset(&t->source, 0, sizeof(t->source));
	if (uv_tcp_getpeername(&t->conn.tcp, (struct sockaddr *)&sa, &sl) != 0)
		return;
	source_key_of(&sa, &t->source);
	addr_format(t->src, sizeof(t->src), &sa);
}

/*
 * An established session: "tunnel from alice (SRC) MESSAGE", with
 * POSTERN_CLIENT. Before that the client has proved nothing, so it is not
 * named as the actor: "handshake from SRC claiming key of alice MESSAGE",
 * with POSTERN_CLAIMED_CLIENT.
 */
static void log_session(int prio, const char *event, struct tsession *t,
			const char *reason, const char *message)
{
	char f_client[96], f_src[80], f_reason[128], f_in[48], f_out[48], f_dur[48];
	const char *fields[8];
	size_t n = 0;
	bool est = t->confirmed;
	uint64_t ms = uv_now(t->d->loop) - t->started_ms;

	if (t->client_name[0]) {
		snprintf(f_client, sizeof(f_client), "%s=%s",
			 est ? "POSTERN_CLIENT" : "POSTERN_CLAIMED_CLIENT",
			 t->client_name);
		fields[n++] = f_client;
	}
	snprintf(f_src, sizeof(f_src), "POSTERN_SRC=%s", t->src);
	fields[n++] = f_src;
	if (reason) {
		snprintf(f_reason, sizeof(f_reason), "POSTERN_REASON=%s", reason);
		fields[n++] = f_reason;
	}
	if (est) {
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
	if (est)
		log_event(prio, event, fields, "tunnel from %s (%s) %s",
			  t->client_name, t->src, message);
	else
		log_event(prio, event, fields, "handshake from %s%s%s %s", t->src,
			  t->client_name[0] ? " claiming key of " : "",
			  t->client_name, message);
}

/* What an unauthenticated peer can repeat at will: one line a minute per
 * source and reason (a string constant), the counters say the rest. */
static void log_limited(int prio, const char *event, struct tsession *t,
			const char *reason, const char *message)
{
	uint64_t suppressed;
	char msg[512];

	if (!limit_log_allow(reason, &t->source, uv_now(t->d->loop), &suppressed))
		return;
	if (suppressed)
		snprintf(msg, sizeof(msg), "%s (and %llu more like it from this "
			 "source since the last line)", message,
			 (unsigned long long)suppressed);
	else
		snprintf(msg, sizeof(msg), "%s", message);
	log_session(prio, event, t, reason, msg);
}

static unsigned int handshake_s(const struct tsession *t)
{
	return t->d->cfg->tunnel.handshake_timeout;
}

bool tsession_expired(const struct tsession *t)
{
	return t->expires_at != 0 &&
	       (int64_t)(realtime_ms() / 1000) >= t->expires_at;
}

static void on_timer(uv_timer_t *timer);

/* Wake at the client's expiry instant (the wall clock may step: on_timer
 * checks again). */
static void arm_expiry(struct tsession *t)
{
	int64_t left;

	if (!t->expires_at) {
		uv_timer_stop(&t->timer);
		return;
	}
	left = t->expires_at * 1000 - (int64_t)realtime_ms();
	uv_timer_start(&t->timer, on_timer, left > 0 ? (uint64_t)left : 0, 0);
}

/* The session. */

static void unlink_and_free(struct tsession *t)
{
	if (t->next)
		t->next->pprev = t->pprev;
	*t->pprev = t->next;
	free(t);
}

/* An established session is freed once its connection's handles are
 * closed and the last egress of its streams, each of which points at it,
 * is freed (its streams are told at once when the connection ends, and
 * close their sockets). */
static void session_maybe_free(struct tsession *t)
{
	if (t->conn_closed && t->open_streams == 0)
		unlink_and_free(t);
}

static void timer_closed(uv_handle_t *h)
{
	struct tsession *t = h->data;

	t->conn_closed = true;
	session_maybe_free(t);
}

void tsession_stream_freed(struct tsession *t)
{
	t->open_streams--;
	t->d->open_streams--;
	session_maybe_free(t);
}

static void session_freed(struct uvt_conn *c)
{
	struct tsession *t = (struct tsession *)c;

	t->timer.data = t;
	uv_close((uv_handle_t *)&t->timer, timer_closed);
}

static void log_unconfirmed(struct tsession *t, const char *what)
{
	char msg[256];

	t->d->n.unconfirmed++;
	snprintf(msg, sizeof(msg), "unconfirmed: %s (replayed message 1, or a "
		 "wrong PSK)", what);
	log_limited(LOG_WARNING, "tunnel_unconfirmed", t, "unconfirmed", msg);
}

static void session_ended(struct uvt_conn *c, const char *error)
{
	struct tsession *t = (struct tsession *)c;
	struct tunneld *d = t->d;
	enum tsession_state was = t->state;
	char msg[384];

	d->n.bytes_in += c->bytes_in;
	d->n.bytes_out += c->bytes_out;
	t->state = TS_CLOSING;
	if (was == TS_UNCONFIRMED) {
		pending_remove(d, t);
		if (!t->quiet)
			log_unconfirmed(t, "closed before any valid transport "
					"message");
		return;
	}
	if (was != TS_ESTABLISHED)
		return;		/* closed for a cap or a refusal: logged */
	d->established--;
	egress_flush_logs(t, true);
	snprintf(msg, sizeof(msg), "closed: %llu bytes in, %llu out, %llu ms, "
		 "%u streams%s%s", (unsigned long long)c->bytes_in,
		 (unsigned long long)c->bytes_out,
		 (unsigned long long)(uv_now(d->loop) - t->started_ms),
		 t->streams, error ? ": " : "", error ? error : "");
	log_session(error ? LOG_WARNING : LOG_INFO, "tunnel_close", t,
		    error ? error : "closed", msg);
}

/* Refuse a confirmed client: ended follows and logs nothing more. */
static bool refuse(struct tsession *t, const char *reason, const char *what)
{
	char msg[256];

	snprintf(msg, sizeof(msg), "refused: %s", what);
	log_limited(LOG_WARNING, "tunnel_refused", t, reason, msg);
	t->d->n.refused++;
	pending_remove(t->d, t);
	t->state = TS_CLOSING;
	return false;
}

static unsigned int sessions_of_key(const struct tunneld *d, const uint8_t *pub)
{
	unsigned int n = 0;

	for (const struct tsession *s = d->sessions; s; s = s->next)
		n += s->state == TS_ESTABLISHED && !memcmp(s->client_pub, pub, KEY_LEN);
	return n;
}

/* The client's first transport message decrypted: it holds the keys. */
static bool session_authenticated(struct uvt_conn *c)
{
	struct tsession *t = (struct tsession *)c;
	struct tunneld *d = t->d;
	const struct client_entry *e;
	char msg[128];

	if (t->state != TS_UNCONFIRMED || d->draining)
		return refuse(t, "closed", "shutting down");
	/* Looked up again: a reload since message 1 may have changed it. */
	e = server_config_find_client(d->cfg, t->client_pub);
	if (!e)
		return refuse(t, "unknown_key", "client removed");
	t->expires_at = e->expires_at;
	if (tsession_expired(t))
		return refuse(t, "expired", "client expired");
	/* A cap refuses the new session: it never ends one in use (a
	 * laptop that moved leaves tunnels that keepalive closes). */
	if (sessions_of_key(d, t->client_pub) >= d->cfg->tunnel.max_sessions_per_client) {
		d->n.sessions_refused++;
		snprintf(msg, sizeof(msg), "max_sessions_per_client (%u) reached",
			 d->cfg->tunnel.max_sessions_per_client);
		return refuse(t, "max_sessions_per_client", msg);
	}
	if (d->established >= d->cfg->tunnel.max_sessions) {
		d->n.sessions_refused++;
		snprintf(msg, sizeof(msg), "max_sessions (%u) reached",
			 d->cfg->tunnel.max_sessions);
		return refuse(t, "max_sessions", msg);
	}
	pending_remove(d, t);
	t->state = TS_ESTABLISHED;
	t->confirmed = true;
	d->established++;
	d->n.accepted++;
	snprintf(t->client_name, sizeof(t->client_name), "%s", e->name);
	arm_expiry(t);
	log_session(LOG_NOTICE, "tunnel_open", t, NULL, "open");
	return true;
}

static struct uvt_stream *session_accept(struct uvt_conn *c, uint32_t id)
{
	struct tsession *t = (struct tsession *)c;

	if (t->d->draining || t->state != TS_ESTABLISHED)
		return NULL;
	if (tsession_expired(t)) {
		/* Not from inside yamux: the timer closes the session. */
		uv_timer_start(&t->timer, on_timer, 0, 0);
		return NULL;
	}
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
		unlink_and_free(t);
}

static void handshake_fail(struct tsession *t, const char *reason, const char *what)
{
	struct tunneld *d = t->d;
	char msg[256];

	if (t->state == TS_CLOSING)
		return;
	t->state = TS_CLOSING;
	pending_remove(d, t);
	if (!t->quiet) {
		d->n.refused++;
		if (what) {
			snprintf(msg, sizeof(msg), "refused: %s", what);
			log_limited(LOG_WARNING, "tunnel_refused", t, reason, msg);
		}
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

/* Handshake timeout, then the client's expiry. */
static void on_timer(uv_timer_t *timer)
{
	struct tsession *t = timer->data;
	char what[96];

	switch (t->state) {
	case TS_HELLO:
		snprintf(what, sizeof(what), "no handshake within %u s",
			 handshake_s(t));
		handshake_fail(t, "timeout", what);
		break;
	case TS_UNCONFIRMED:
		snprintf(what, sizeof(what), "no valid transport message "
			 "within %u s", handshake_s(t));
		log_unconfirmed(t, what);
		t->quiet = true;
		uvt_conn_abort(&t->conn, NULL);
		break;
	case TS_ESTABLISHED:
		if (!tsession_expired(t)) {
			arm_expiry(t);	/* the clock stepped back */
			break;
		}
		log_session(LOG_NOTICE, "tunnel_expired", t, "expired",
			    "closing: the client's key expired");
		uvt_conn_close(&t->conn);
		break;
	case TS_CLOSING:
		break;
	}
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

static struct yamux_config session_config(const struct tunneld *d)
{
	struct yamux_config cfg = yamux_config_default(false);

	/* egress_accept() enforces max_streams, and counts and logs it;
	 * yamux's own limit is only a backstop. */
	cfg.max_streams = 2 * d->cfg->tunnel.max_streams + 16;
	cfg.max_window = d->cfg->tunnel.stream_buffer;
	return cfg;
}

/* Message 1 checks out: answer, and wait for the client to prove it. */
static void start_session(struct tsession *t, size_t msg1_len,
			  const uint8_t *rest, size_t rest_len)
{
	struct tunneld *d = t->d;
	struct yamux_config cfg = session_config(d);
	struct tunnel_transport tr;
	struct hello_write *w = malloc(sizeof(*w));
	uint16_t ports[TUNNEL_MAX_PORTS];
	size_t n_ports, out_len = w ? sizeof(w->data) : 0;
	uv_buf_t b;

	ports_of(d, ports, &n_ports);
	if (!w || tunnel_server_accept(&t->hs, ports, n_ports, realtime_ms(),
				       w->data, &out_len, &tr) != TUNNEL_OK) {
		free(w);
		handshake_fail(t, "internal", "cannot write message 2");
		return;
	}
	b = uv_buf_init((char *)w->data, (unsigned int)out_len);
	uv_write(&w->req, (uv_stream_t *)&t->conn.tcp, &b, 1, hello_written);

	uv_read_stop((uv_stream_t *)&t->conn.tcp);
	free(t->reader);
	t->reader = NULL;
	t->state = TS_UNCONFIRMED;
	t->started = true;
	t->conn.bytes_in = TUNNEL_LEN_PREFIX + msg1_len;
	t->conn.bytes_out = out_len;
	/* The handshake timer runs on: the client has what is left of
	 * handshake_timeout to send a transport message. */
	if (!uvt_conn_start(&t->conn, d->loop, &tr, &cfg, &session_hooks, t,
			    rest, rest_len)) {
		log_msg(LOG_ERR, "out of memory starting a session");
		tunnel_transport_free(&tr);
		t->started = false;
		t->state = TS_HELLO;
		handshake_fail(t, "internal", NULL);
	}
}

/* Message 1 read: is the key one of ours, and not expired? */
static void handshake_message(struct tsession *t, const uint8_t *msg, size_t len,
			      const uint8_t *rest, size_t rest_len)
{
	struct tunneld *d = t->d;
	const struct client_entry *e;
	char key[KEY_B64_LEN + 1], what[128];

	if (tunnel_server_read_hello(&t->hs, &d->keys->key, d->keys->psk,
				     dh_cache_source(d->dh),
				     msg, len, t->client_pub) != TUNNEL_OK) {
		handshake_fail(t, "handshake", "message 1 did not authenticate "
			       "(made for another server key?)");
		return;
	}
	e = server_config_find_client(d->cfg, t->client_pub);
	if (!e) {
		/* A public key, not a secret: the admin needs it to add
		 * the client. */
		key_to_base64(key, t->client_pub);
		snprintf(what, sizeof(what), "unknown client key %s", key);
		handshake_fail(t, "unknown_key", what);
		return;
	}
	snprintf(t->client_name, sizeof(t->client_name), "%s", e->name);
	if (client_expired(e, (int64_t)(realtime_ms() / 1000))) {
		handshake_fail(t, "expired", "client expired");
		return;
	}
	start_session(t, len, rest, rest_len);
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
	t->stream_log.slots = t->stream_log_slots;
	t->stream_log.n = TSESSION_STREAM_LOGS;
	t->state = TS_HELLO;
	peer_of(t);
	uv_timer_init(d->loop, &t->timer);
	t->timer.data = t;
	/* Past a cap, the oldest pending handshake goes, not this one. */
	pending_admit(d, t);
	t->reader = d->draining ? NULL : malloc(sizeof(*t->reader));
	if (!t->reader) {
		t->quiet = d->draining;
		handshake_fail(t, "internal", "out of memory");
		return;
	}
	tunnel_reader_init(t->reader, TUNNEL_EXPECT_MSG1);
	uv_tcp_nodelay(tcp, 1);
	uv_tcp_keepalive(tcp, 1, 60);
	uv_timer_start(&t->timer, on_timer, (uint64_t)handshake_s(t) * 1000, 0);
	uv_read_start((uv_stream_t *)tcp, handshake_alloc, handshake_read);
}

void tsession_evict(struct tsession *t, const char *reason)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "closed for a newer handshake: %s (%u) reached",
		 reason, !strcmp(reason, "max_handshakes") ?
		 t->d->cfg->tunnel.max_handshakes :
		 t->d->cfg->tunnel.max_handshakes_per_source);
	log_limited(LOG_WARNING, "tunnel_evicted", t, reason, msg);
	t->quiet = true;
	tsession_close(t, reason);
}

void tsession_close(struct tsession *t, const char *why)
{
	switch (t->state) {
	case TS_HELLO:
		handshake_fail(t, "closed", why);
		break;
	case TS_UNCONFIRMED:
		t->quiet = true;
		uvt_conn_abort(&t->conn, why);
		break;
	case TS_ESTABLISHED:
		uvt_conn_close(&t->conn);
		break;
	case TS_CLOSING:
		break;
	}
}

void tsession_recheck(struct tsession *t)
{
	const struct client_entry *e;

	if (t->state != TS_ESTABLISHED)
		return;		/* looked up when it is confirmed */
	e = server_config_find_client(t->d->cfg, t->client_pub);
	if (!e) {
		log_session(LOG_NOTICE, "tunnel_revoked", t, "client removed",
			    "closing: client removed");
		uvt_conn_close(&t->conn);
		return;
	}
	t->expires_at = e->expires_at;
	if (tsession_expired(t)) {
		log_session(LOG_NOTICE, "tunnel_expired", t, "expired",
			    "closing: the client's key expired");
		uvt_conn_close(&t->conn);
		return;
	}
	arm_expiry(t);
}
