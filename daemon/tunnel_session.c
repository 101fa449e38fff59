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

	snprintf(t->src, sizeof(t->src), "?");
	memset(&t->source, 0, sizeof(t->source));
	if (!uvt_conn_peer(t->conn, &sa))
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
	uint64_t ms = uv_now(t->d->loop) - t->started_ms, in = 0, out = 0;

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
		uvt_conn_bytes(t->conn, &in, &out);
		snprintf(f_in, sizeof(f_in), "POSTERN_BYTES_IN=%llu",
			 (unsigned long long)in);
		snprintf(f_out, sizeof(f_out), "POSTERN_BYTES_OUT=%llu",
			 (unsigned long long)out);
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

/* The connection is gone, from the handshake as from a session. */
static void session_freed(struct uvt_conn *c)
{
	struct tsession *t = uvt_conn_user(c);

	t->conn = NULL;
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
	struct tsession *t = uvt_conn_user(c);
	struct tunneld *d = t->d;
	enum tsession_state was = t->state;
	uint64_t in, out;
	char msg[384];

	uvt_conn_bytes(c, &in, &out);
	d->n.bytes_in += in;
	d->n.bytes_out += out;
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
		 "%u streams%s%s", (unsigned long long)in,
		 (unsigned long long)out,
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
	struct tsession *t = uvt_conn_user(c);
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
	d->last_session_at_ms = realtime_ms();
	snprintf(d->last_session_client, sizeof(d->last_session_client), "%s",
		 e->name);
	snprintf(d->last_session_src, sizeof(d->last_session_src), "%s", t->src);
	arm_expiry(t);
	log_session(LOG_NOTICE, "tunnel_open", t, NULL, "open");
	return true;
}

static struct uvt_stream *session_accept(struct uvt_conn *c, uint32_t id)
{
	struct tsession *t = uvt_conn_user(c);

	if (t->d->draining || t->state != TS_ESTABLISHED)
		return NULL;
	if (tsession_expired(t)) {
		/* Not from inside yamux: the timer closes the session. */
		uv_timer_start(&t->timer, on_timer, 0, 0);
		return NULL;
	}
	return egress_accept(t, id);
}

/* Handshake phase. Until the session starts, what goes wrong is logged
 * here and the connection closed without a word; freed follows. */

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
	uvt_conn_abort(t->conn, NULL);
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
		uvt_conn_abort(t->conn, NULL);
		break;
	case TS_ESTABLISHED:
		if (!tsession_expired(t)) {
			arm_expiry(t);	/* the clock stepped back */
			break;
		}
		log_session(LOG_NOTICE, "tunnel_expired", t, "expired",
			    "closing: the client's key expired");
		uvt_conn_close(t->conn);
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

static struct yamux_config session_config(const struct tunneld *d)
{
	struct yamux_config cfg = yamux_config_default(false);

	/* egress_accept() enforces max_streams, and counts and logs it;
	 * yamux's own limit is only a backstop. */
	cfg.max_streams = 2 * d->cfg->tunnel.max_streams + 16;
	cfg.max_window = d->cfg->tunnel.stream_buffer;
	return cfg;
}

static void session_keys(struct uvt_conn *c, struct uvt_keys *k)
{
	const struct tsession *t = uvt_conn_user(c);

	/* The keys of now: a reload may have replaced them since accept. */
	k->key = &t->d->keys->key;
	k->psk = t->d->keys->psk;
	k->ss = dh_cache_source(t->d->dh);
}

/* Message 1 read: is the key one of ours, and not expired? Then answer,
 * and wait for the client to prove it. */
static bool session_hello(struct uvt_conn *c, const uint8_t client_pub[KEY_LEN],
			  struct uvt_reply *reply)
{
	struct tsession *t = uvt_conn_user(c);
	struct tunneld *d = t->d;
	const struct client_entry *e;
	char key[KEY_B64_LEN + 1], what[128];

	memcpy(t->client_pub, client_pub, KEY_LEN);
	e = server_config_find_client(d->cfg, t->client_pub);
	if (!e) {
		/* A public key, not a secret: the admin needs it to add
		 * the client. */
		key_to_base64(key, t->client_pub);
		snprintf(what, sizeof(what), "unknown client key %s", key);
		handshake_fail(t, "unknown_key", what);
		return false;
	}
	snprintf(t->client_name, sizeof(t->client_name), "%s", e->name);
	if (client_expired(e, (int64_t)(realtime_ms() / 1000))) {
		handshake_fail(t, "expired", "client expired");
		return false;
	}
	ports_of(d, reply->ports, &reply->n_ports);
	reply->cfg = session_config(d);
	/* The handshake timer runs on: the client has what is left of
	 * handshake_timeout to send a transport message. */
	t->state = TS_UNCONFIRMED;
	return true;
}

static void session_hs_failed(struct uvt_conn *c, enum uvt_hs_error e,
			      const char *detail)
{
	struct tsession *t = uvt_conn_user(c);

	switch (e) {
	case UVT_HS_CLOSED:
	case UVT_HS_CUT:
	case UVT_HS_IO:
		handshake_fail(t, "eof", detail);
		break;
	case UVT_HS_PROTO:
		handshake_fail(t, "frame", "malformed message 1");
		break;
	case UVT_HS_AUTH:
		handshake_fail(t, "handshake", "message 1 did not authenticate "
			       "(made for another server key?)");
		break;
	case UVT_HS_INTERNAL:
		handshake_fail(t, "internal", detail);
		break;
	}
}

static const struct uvt_conn_hooks session_hooks = {
	.keys = session_keys,
	.hello = session_hello,
	.hs_failed = session_hs_failed,
	.authenticated = session_authenticated,
	.accept = session_accept,
	.ended = session_ended,
	.freed = session_freed,
};

void tsession_accept(struct tunneld *d, uv_stream_t *listener)
{
	struct tsession *t = calloc(1, sizeof(*t));

	if (!t) {
		log_msg(LOG_ERR, "out of memory accepting a connection");
		return;
	}
	t->conn = uvt_conn_accept(d->loop, listener, &session_hooks, t);
	if (!t->conn) {
		free(t);
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
	if (d->draining) {
		t->quiet = true;
		handshake_fail(t, "closed", NULL);
		return;
	}
	uv_timer_start(&t->timer, on_timer, (uint64_t)handshake_s(t) * 1000, 0);
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
		uvt_conn_abort(t->conn, why);
		break;
	case TS_ESTABLISHED:
		uvt_conn_close(t->conn);
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
		uvt_conn_close(t->conn);
		return;
	}
	t->expires_at = e->expires_at;
	if (tsession_expired(t)) {
		log_session(LOG_NOTICE, "tunnel_expired", t, "expired",
			    "closing: the client's key expired");
		uvt_conn_close(t->conn);
		return;
	}
	arm_expiry(t);
}
