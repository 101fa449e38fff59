/*
 * A tunnel connection: its handles, the one read loop (the handshake's
 * bytes go to uv_handshake.c, then the session's to session_input), the
 * sealed output, the keepalive timer, and yamux's events handed to the
 * streams. It talks to the session façade only.
 */
#include "uv_internal.h"

#include <stdlib.h>
#include <string.h>

struct conn_write {
	uv_write_t req;
	struct uvt_conn *conn;
	size_t len;
	uint8_t data[];
};

#define CONN_WRITE_MAX (256 * 1024)

static const struct uvt_conn_hooks no_hooks;

static void conn_handle_closed(uv_handle_t *h)
{
	struct uvt_conn *c = h->data;

	if (--c->handles_open > 0)
		return;
	if (c->hooks->freed)
		c->hooks->freed(c);
	free(c);
}

static void hs_free(struct uvt_conn *c)
{
	if (!c->hs)
		return;
	tunnel_handshake_free(&c->hs->hs);
	free(c->hs);
	c->hs = NULL;
}

/* The one way out: ended (once a session ran), then freed. */
void uvc_end(struct uvt_conn *c, const char *error)
{
	enum uvc_phase was = c->phase;

	if (was == UVC_ENDED)
		return;
	c->phase = UVC_ENDED;
	if (was == UVC_SESSION) {
		if (c->hooks->ended)
			c->hooks->ended(c, error);
		/* Every stream hears on_closed from yamux_free and lets go
		 * of c (UVS_LOST). */
		session_free(c->sess);
		c->sess = NULL;
	}
	hs_free(c);
	uv_close((uv_handle_t *)&c->tick, conn_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

static void conn_tick(uv_timer_t *t);

/* Wake up when the session next has something to do (a ping, a timeout). */
static void rearm_tick(struct uvt_conn *c)
{
	uint64_t next = session_next_tick(c->sess), now = uv_now(c->tcp.loop);

	/* No keepalive for a peer that has not proved its keys: a replayed
	 * message 1 costs no timer, and gets no ping to answer. */
	if (next == UINT64_MAX || !c->authenticated)
		uv_timer_stop(&c->tick);
	else
		uv_timer_start(&c->tick, conn_tick, next > now ? next - now : 1, 0);
}

static void conn_write_done(uv_write_t *req, int status)
{
	struct conn_write *w = (struct conn_write *)req;
	struct uvt_conn *c = w->conn;

	c->inflight -= w->len;
	free(w);
	if (c->phase == UVC_ENDED || c->failing)
		return;
	if (status < 0 && c->phase == UVC_HANDSHAKE)
		uvh_write_error(c, status);
	else if (status < 0)
		uvc_end(c, uv_strerror(status));
	else if (c->phase == UVC_SESSION)
		uvc_flush(c);
}

static bool write_buf(struct uvt_conn *c, struct conn_write *w)
{
	uv_buf_t b = uv_buf_init((char *)w->data, (unsigned int)w->len);

	w->conn = c;
	c->inflight += w->len;
	c->bytes_out += w->len;
	if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_write_done) < 0) {
		c->inflight -= w->len;
		free(w);
		return false;
	}
	return true;
}

/* A handshake message. */
bool uvc_write(struct uvt_conn *c, const uint8_t *p, size_t n)
{
	struct conn_write *w = malloc(sizeof(*w) + n);

	if (!w)
		return false;
	w->len = n;
	memcpy(w->data, p, n);
	return write_buf(c, w);
}

/* The one buffer every tunnel socket reads into, handshake included. The
 * loop runs one read callback at a time and each consumes its bytes
 * before returning, so one buffer serves every connection: an idle
 * session then holds no 64 KiB of its own. */
static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static uint8_t shared[UVT_READ_SIZE];

	(void)h;
	(void)hint;
	*buf = uv_buf_init((char *)shared, sizeof(shared));
}

static void conn_write_out(struct uvt_conn *c);

static void conn_shutdown_done(uv_shutdown_t *req, int status)
{
	struct uvt_conn *c = req->data;

	(void)status;
	free(req);
	uvc_end(c, c->end_error);
}

/* A protocol error: yamux has queued a go-away that says so. Send it and
 * whatever precedes it, half-close, and only then close. */
static void conn_end_after_goaway(struct uvt_conn *c, const char *error)
{
	uv_shutdown_t *req = malloc(sizeof(*req));

	c->failing = true;
	c->end_error = error;
	if (c->reading)
		uv_read_stop((uv_stream_t *)&c->tcp);
	c->reading = false;
	conn_write_out(c);
	if (c->phase == UVC_ENDED) {
		free(req);
		return;
	}
	if (req)
		req->data = c;
	if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, conn_shutdown_done) < 0) {
		free(req);
		uvc_end(c, error);
	}
}

/* Transport bytes, read or left over from the handshake's last read. */
static void session_feed(struct uvt_conn *c, const uint8_t *p, size_t n)
{
	enum session_error rc = session_input(c->sess, p, n, uv_now(c->tcp.loop));

	if (rc == SESSION_E_YAMUX)
		conn_end_after_goaway(c, session_strerror(c->sess));
	else if (rc != SESSION_OK)
		uvc_end(c, session_strerror(c->sess));
	else
		uvc_flush(c);
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct uvt_conn *c = st->data;

	if (c->phase == UVC_ENDED || n == 0)
		return;
	if (n < 0 && c->phase == UVC_HANDSHAKE) {
		uvh_read_error(c, (int)n);
		return;
	}
	if (n < 0) {
		uvc_end(c, n == UV_EOF ? NULL : uv_strerror((int)n));
		return;
	}
	c->bytes_in += (uint64_t)n;
	if (c->phase == UVC_HANDSHAKE)
		uvh_input(c, (const uint8_t *)buf->base, (size_t)n);
	else
		session_feed(c, (const uint8_t *)buf->base, (size_t)n);
}

bool uvc_start_reading(struct uvt_conn *c)
{
	c->reading = uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read) == 0;
	return c->reading;
}

/* Seal and write what yamux has queued, up to UVT_MAX_INFLIGHT. */
static void conn_write_out(struct uvt_conn *c)
{
	while (c->inflight < UVT_MAX_INFLIGHT && session_output_pending(c->sess)) {
		struct conn_write *w = malloc(sizeof(*w) + CONN_WRITE_MAX);

		if (!w) {
			uvc_end(c, "out of memory");
			return;
		}
		w->len = session_output(c->sess, w->data, CONN_WRITE_MAX);
		if (w->len == 0) {
			free(w);
			if (session_error(c->sess) != SESSION_OK && !c->failing)
				uvc_end(c, session_strerror(c->sess));
			break;
		}
		if (!write_buf(c, w)) {
			uvc_end(c, "write failed");
			return;
		}
	}
}

/* Flush sealed output to the socket; after any change to the session. */
void uvc_flush(struct uvt_conn *c)
{
	/* session_output() drains yamux's queue, which may wake a stream
	 * blocked on it (on_writable), whose push flushes again. A nested
	 * flush would write newer messages ahead of those sealed here and
	 * not yet written, and the peer would see nonces out of order. The
	 * loop in conn_write_out() takes what the push queued. */
	if (c->phase != UVC_SESSION || c->flushing || c->failing)
		return;
	c->flushing = true;
	conn_write_out(c);
	c->flushing = false;
	if (c->phase != UVC_SESSION)	/* conn_write_out() ended it */
		return;
	/* Reading goes on even while our output is backed up: if both ends
	 * stopped reading while both had output queued, neither TCP buffer
	 * would ever drain. What the peer can make us queue meanwhile is
	 * bounded: data by the windows, control frames by yamux's margin
	 * (a peer that floods pings without reading loses its session). */
	rearm_tick(c);
}

static void conn_tick(uv_timer_t *t)
{
	struct uvt_conn *c = t->data;

	if (c->phase != UVC_SESSION || c->failing)
		return;
	if (session_tick(c->sess, uv_now(t->loop)) != SESSION_OK) {
		uvc_end(c, session_strerror(c->sess));
		return;
	}
	uvc_flush(c);
}

/* yamux events, dispatched to the streams. */

static struct uvt_stream *stream_of(struct uvt_conn *c, uint32_t id)
{
	return session_stream_user(c->sess, id);
}

static bool ev_open(void *user, uint32_t id)
{
	struct uvt_conn *c = user;
	struct uvt_stream *s = c->hooks->accept ? c->hooks->accept(c, id) : NULL;

	if (!s)
		return false;
	session_set_stream_user(c->sess, id, s);
	return true;
}

static void ev_established(void *user, uint32_t id)
{
	struct uvt_stream *s = stream_of(user, id);

	if (s && s->hooks->established)
		s->hooks->established(s);
}

static void ev_data(void *user, uint32_t id, const uint8_t *p, size_t n)
{
	struct uvt_stream *s = stream_of(user, id);

	if (s)
		uvs_event_data(s, p, n);
}

static void ev_fin(void *user, uint32_t id)
{
	struct uvt_stream *s = stream_of(user, id);

	if (s)
		uvs_event_fin(s);
}

static void ev_writable(void *user, uint32_t id)
{
	struct uvt_stream *s = stream_of(user, id);

	if (s)
		uvs_event_writable(s);
}

static void ev_closed(void *user, uint32_t id, void *stream_user)
{
	struct uvt_conn *c = user;

	(void)id;
	/* From yamux_free in uvc_end: the tunnel is gone. */
	if (stream_user)
		uvs_event_closed(stream_user, c->phase == UVC_ENDED);
}

static void ev_goaway(void *user, uint32_t code)
{
	(void)code;
	((struct uvt_conn *)user)->goaway = true;
}

/* No on_reset: yamux has forgotten the stream by then, and on_closed,
 * which follows with its pointer, says it (uvs_event_closed). */
static const struct yamux_events events = {
	.on_goaway = ev_goaway,
	.on_open = ev_open,
	.on_established = ev_established,
	.on_data = ev_data,
	.on_fin = ev_fin,
	.on_writable = ev_writable,
	.on_closed = ev_closed,
};

/* The session's first message from the peer decrypted (session.h). */
static bool conn_confirm(void *user)
{
	struct uvt_conn *c = user;

	c->authenticated = true;
	return !c->hooks->authenticated || c->hooks->authenticated(c);
}

void uvc_init(struct uvt_conn *c, uv_loop_t *loop, bool is_client,
	      const struct uvt_conn_hooks *hooks, void *user)
{
	memset(c, 0, sizeof(*c));
	c->is_client = is_client;
	c->hooks = hooks ? hooks : &no_hooks;
	c->user = user;
	c->phase = UVC_HANDSHAKE;
	uv_tcp_init(loop, &c->tcp);
	uv_timer_init(loop, &c->tick);
	c->tcp.data = c;
	c->tick.data = c;
	c->handles_open = 2;
}

/* The handshake is done: t's keys carry the session. The initiator has
 * its peer authenticated by message 2; the responder waits for the first
 * transport message (hooks->authenticated). */
bool uvc_session_start(struct uvt_conn *c, struct tunnel_transport *t,
		       const struct yamux_config *cfg,
		       const uint8_t *early, size_t early_len)
{
	c->sess = session_new(t, cfg, &events, c);
	if (!c->sess)
		return false;
	hs_free(c);
	session_on_confirm(c->sess, conn_confirm, c);
	c->authenticated = c->is_client;
	c->phase = UVC_SESSION;
	if (early_len)
		session_feed(c, early, early_len);
	else
		uvc_flush(c);
	return true;
}

/* The façade. */

void *uvt_conn_user(const struct uvt_conn *c)
{
	return c->user;
}

bool uvt_conn_peer(const struct uvt_conn *c, struct sockaddr_storage *sa)
{
	int len = sizeof(*sa);

	return uv_tcp_getpeername(&c->tcp, (struct sockaddr *)sa, &len) == 0;
}

bool uvt_conn_local(const struct uvt_conn *c, struct sockaddr_storage *sa)
{
	int len = sizeof(*sa);

	return uv_tcp_getsockname(&c->tcp, (struct sockaddr *)sa, &len) == 0;
}

void uvt_conn_bytes(const struct uvt_conn *c, uint64_t *in, uint64_t *out)
{
	*in = c->bytes_in;
	*out = c->bytes_out;
}

bool uvt_conn_healthy(const struct uvt_conn *c)
{
	return c->phase == UVC_SESSION && !c->failing && !c->goaway &&
	       session_error(c->sess) == SESSION_OK;
}

void uvt_conn_goaway(struct uvt_conn *c)
{
	if (c->phase != UVC_SESSION)
		return;
	session_goaway(c->sess);
	uvc_flush(c);
}

void uvt_conn_abort(struct uvt_conn *c, const char *error)
{
	uvc_end(c, error);
}

void uvt_conn_close(struct uvt_conn *c)
{
	uvt_conn_goaway(c);
	uvc_end(c, NULL);
}

/* For the files of postern_uv that fail before a caller holds c. */
void uvc_forget_hooks(struct uvt_conn *c)
{
	c->hooks = &no_hooks;
}
