/* The libuv side of an established tunnel: TCP pump and stream relays. */
#include "uv_tunnel.h"

#include <stdlib.h>
#include <string.h>

/* Bytes of the peer's stream kept before the relay starts (copies). */
struct uvt_pending {
	struct uvt_pending *next;
	size_t len;
	uint8_t data[];
};

struct conn_write {
	uv_write_t req;
	struct uvt_conn *conn;
	size_t len;
	uint8_t data[];
};

struct local_write {
	uv_write_t req;
	struct uvt_stream *stream;
	size_t len;
	uint8_t data[];
};

#define CONN_WRITE_MAX (256 * 1024)

uint64_t uvt_now_ms(uv_loop_t *loop)
{
	return uv_now(loop);
}

static void stream_push(struct uvt_stream *s);
static bool stream_send_pre(struct uvt_stream *s);
static void local_set_reading(struct uvt_stream *s, bool on);
static void stream_maybe_done(struct uvt_stream *s);
static void stream_write_local(struct uvt_stream *s, const uint8_t *p, size_t n);

/* The connection. */

static void conn_handle_closed(uv_handle_t *h)
{
	struct uvt_conn *c = h->data;

	if (--c->handles_open == 0 && c->hooks->freed)
		c->hooks->freed(c);
}

static void conn_end(struct uvt_conn *c, const char *error)
{
	if (c->ended)
		return;
	c->ended = true;
	if (c->hooks->ended)
		c->hooks->ended(c, error);
	/* Every stream hears on_closed from yamux_free and lets go of c. */
	session_free(c->sess);
	c->sess = NULL;
	uv_close((uv_handle_t *)&c->tick, conn_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
}

static void conn_tick(uv_timer_t *t);

/* Wake up when yamux next has something to do (a ping, a timeout). */
static void rearm_tick(struct uvt_conn *c)
{
	uint64_t next = yamux_next_tick(c->sess->mux), now = uv_now(c->tcp.loop);

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
	if (c->ended || c->failing)
		return;
	if (status < 0) {
		conn_end(c, uv_strerror(status));
		return;
	}
	uvt_conn_flush(c);
}

uv_buf_t uvt_read_buf(void)
{
	static uint8_t shared[UVT_READ_SIZE];

	return uv_buf_init((char *)shared, sizeof(shared));
}

static void conn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	(void)hint;
	*buf = uvt_read_buf();
}

static void conn_write_out(struct uvt_conn *c);
static void conn_set_reading(struct uvt_conn *c, bool on);

static void conn_shutdown_done(uv_shutdown_t *req, int status)
{
	struct uvt_conn *c = req->data;

	(void)status;
	free(req);
	conn_end(c, c->end_error);
}

/* A protocol error: yamux has queued a go-away that says so. Send it and
 * whatever precedes it, half-close, and only then close. */
static void conn_end_after_goaway(struct uvt_conn *c, const char *error)
{
	uv_shutdown_t *req = malloc(sizeof(*req));

	c->failing = true;
	c->end_error = error;
	conn_set_reading(c, false);
	conn_write_out(c);
	if (c->ended)
		return;
	if (req)
		req->data = c;
	if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, conn_shutdown_done) < 0) {
		free(req);
		conn_end(c, error);
	}
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct uvt_conn *c = st->data;
	enum session_error rc;

	if (c->ended || n == 0)
		return;
	if (n < 0) {
		conn_end(c, n == UV_EOF ? NULL : uv_strerror((int)n));
		return;
	}
	c->bytes_in += (uint64_t)n;
	rc = session_input(c->sess, (const uint8_t *)buf->base, (size_t)n,
			   uv_now(c->tcp.loop));
	if (rc == SESSION_E_YAMUX)
		conn_end_after_goaway(c, session_strerror(c->sess));
	else if (rc != SESSION_OK)
		conn_end(c, session_strerror(c->sess));
	else
		uvt_conn_flush(c);
}

static void conn_set_reading(struct uvt_conn *c, bool on)
{
	if (c->ended || c->reading == on)
		return;
	c->reading = on;
	if (on)
		uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
	else
		uv_read_stop((uv_stream_t *)&c->tcp);
}

/* Seal and write what yamux has queued, up to UVT_MAX_INFLIGHT. */
static void conn_write_out(struct uvt_conn *c)
{
	while (c->inflight < UVT_MAX_INFLIGHT && session_output_pending(c->sess)) {
		size_t cap = CONN_WRITE_MAX;
		struct conn_write *w = malloc(sizeof(*w) + cap);
		uv_buf_t b;
		int rc;

		if (!w) {
			conn_end(c, "out of memory");
			return;
		}
		w->conn = c;
		w->len = session_output(c->sess, w->data, cap);
		if (w->len == 0) {
			free(w);
			if (c->sess->error != SESSION_OK && !c->failing)
				conn_end(c, session_strerror(c->sess));
			break;
		}
		b = uv_buf_init((char *)w->data, (unsigned int)w->len);
		c->inflight += w->len;
		c->bytes_out += w->len;
		rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, conn_write_done);
		if (rc < 0) {
			c->inflight -= w->len;
			free(w);
			conn_end(c, uv_strerror(rc));
			return;
		}
	}
}

void uvt_conn_flush(struct uvt_conn *c)
{
	/* session_output() drains yamux's queue, which may wake a stream
	 * blocked on it (on_writable), whose push flushes again. A nested
	 * flush would write newer messages ahead of those sealed here and
	 * not yet written, and the peer would see nonces out of order. The
	 * loop in conn_write_out() takes what the push queued. */
	if (c->ended || c->flushing || c->failing)
		return;
	c->flushing = true;
	conn_write_out(c);
	c->flushing = false;
	if (c->ended)	/* conn_write_out() ended it: c->sess is gone */
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
	uint64_t now = uv_now(t->loop);

	if (c->ended || c->failing)
		return;
	if (yamux_tick(c->sess->mux, now) < 0) {
		conn_end(c, yamux_strerror(yamux_error(c->sess->mux)));
		return;
	}
	uvt_conn_flush(c);
}

/* yamux events, dispatched to the streams. */

static struct uvt_stream *stream_of(struct uvt_conn *c, uint32_t id)
{
	return yamux_stream_user(c->sess->mux, id);
}

static bool ev_open(void *user, uint32_t id)
{
	struct uvt_conn *c = user;
	struct uvt_stream *s = c->hooks->accept ? c->hooks->accept(c, id) : NULL;

	if (!s)
		return false;
	yamux_set_stream_user(c->sess->mux, id, s);
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
	struct uvt_conn *c = user;
	struct uvt_stream *s = stream_of(c, id);
	size_t took;

	if (!s)
		return;
	if (!s->relaying && s->hooks->preamble) {
		took = s->hooks->preamble(s, p, n);
		if (took > n)
			took = n;
		yamux_consumed(c->sess->mux, id, took, uv_now(c->tcp.loop));
		p += took;
		n -= took;
	}
	if (n == 0)
		return;
	if (s->relaying && !s->queue) {
		stream_write_local(s, p, n);
		return;
	}
	/* Before the relay: keep a copy; the window bounds how much. */
	struct uvt_pending *q = malloc(sizeof(*q) + n);

	if (!q) {
		uvt_stream_reset(s);
		return;
	}
	q->next = NULL;
	q->len = n;
	memcpy(q->data, p, n);
	*s->queue_tail = q;
	s->queue_tail = &q->next;
}

static void shutdown_done(uv_shutdown_t *req, int status)
{
	struct uvt_stream *s = req->data;

	free(req);
	/* The local handles are still open (uvt_stream_free waits for their
	 * close, and a close cancels the shutdown first): s is alive. */
	if (s->hooks->out_ended)
		s->hooks->out_ended(s, status);
}

/* The peer sends no more: once everything is written, half-close locally. */
static void stream_local_fin(struct uvt_stream *s)
{
	uv_shutdown_t *req;

	if (!s->relaying || !s->peer_fin || s->out_shut || s->queue || s->out_inflight)
		return;
	s->out_shut = true;
	req = malloc(sizeof(*req));
	if (!req)
		return;
	req->data = s;
	if (uv_shutdown(req, s->out, shutdown_done) < 0) {
		free(req);
		if (s->hooks->out_ended)
			s->hooks->out_ended(s, UV_ENOTCONN);
	}
}

static void ev_fin(void *user, uint32_t id)
{
	struct uvt_stream *s = stream_of(user, id);

	if (!s)
		return;
	s->peer_fin = true;
	stream_local_fin(s);
}

static void ev_reset(void *user, uint32_t id)
{
	struct uvt_stream *s = stream_of(user, id);

	if (s)
		s->failed = true;
}

static void ev_writable(void *user, uint32_t id)
{
	struct uvt_stream *s = stream_of(user, id);

	if (s && stream_send_pre(s) && s->relaying)
		stream_push(s);
}

static void ev_closed(void *user, uint32_t id, void *stream_user)
{
	struct uvt_conn *c = user;
	struct uvt_stream *s = stream_user;

	(void)id;
	if (!s)
		return;
	s->mux_closed = true;
	/* From yamux_free in conn_end: the tunnel is gone, and with it any
	 * reason to wait for local writes (stream_maybe_done). */
	s->conn_lost = c->ended;
	s->conn = NULL;
	if (s->in && s->in_reading) {
		uv_read_stop(s->in);
		s->in_reading = false;
	}
	stream_maybe_done(s);
}

static void ev_goaway(void *user, uint32_t code)
{
	(void)code;
	((struct uvt_conn *)user)->goaway = true;
}

static const struct yamux_events events = {
	.on_goaway = ev_goaway,
	.on_open = ev_open,
	.on_established = ev_established,
	.on_data = ev_data,
	.on_fin = ev_fin,
	.on_reset = ev_reset,
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

bool uvt_conn_start(struct uvt_conn *c, uv_loop_t *loop,
		    struct tunnel_transport *t, const struct yamux_config *cfg,
		    const struct uvt_conn_hooks *hooks, void *user,
		    const uint8_t *early, size_t early_len)
{
	c->hooks = hooks;
	c->user = user;
	c->tcp.data = c;
	c->authenticated = cfg->is_client;
	c->sess = session_new(t, cfg, &events, c);
	if (!c->sess)
		return false;
	session_on_confirm(c->sess, conn_confirm, c);
	uv_timer_init(loop, &c->tick);
	c->tick.data = c;
	c->handles_open = 2;
	conn_set_reading(c, true);
	if (early_len && session_input(c->sess, early, early_len, uv_now(loop)) != SESSION_OK) {
		conn_end(c, session_strerror(c->sess));
		return true;
	}
	uvt_conn_flush(c);
	return true;
}

void uvt_conn_abort(struct uvt_conn *c, const char *error)
{
	conn_end(c, error);
}

void uvt_conn_close(struct uvt_conn *c)
{
	if (c->ended)
		return;
	yamux_goaway(c->sess->mux, YAMUX_GOAWAY_NORMAL);
	uvt_conn_flush(c);
	conn_end(c, NULL);
}

/* Streams. */

static struct uvt_stream *stream_alloc(struct uvt_conn *c, uint32_t id,
				       const struct uvt_stream_hooks *hooks,
				       void *user)
{
	struct uvt_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->conn = c;
	s->id = id;
	s->hooks = hooks;
	s->user = user;
	s->queue_tail = &s->queue;
	return s;
}

struct uvt_stream *uvt_stream_new(struct uvt_conn *c, uint32_t id,
				  const struct uvt_stream_hooks *hooks,
				  void *user)
{
	return stream_alloc(c, id, hooks, user);
}

struct uvt_stream *uvt_stream_open(struct uvt_conn *c,
				   const struct uvt_stream_hooks *hooks,
				   void *user)
{
	struct uvt_stream *s;
	uint32_t id;

	if (c->ended)
		return NULL;
	id = yamux_open(c->sess->mux);
	if (!id)
		return NULL;
	s = stream_alloc(c, id, hooks, user);
	if (!s) {
		yamux_reset(c->sess->mux, id);
		return NULL;
	}
	yamux_set_stream_user(c->sess->mux, id, s);
	uvt_conn_flush(c);
	return s;
}

static void stream_fin(struct uvt_stream *s)
{
	s->fin_sent = true;
	s->in_eof = true;
	local_set_reading(s, false);
	yamux_close(s->conn->sess->mux, s->id);
}

/* Send what is left of the preamble; true once it is all out. A full
 * output queue takes nothing: on_writable brings us back. */
static bool stream_send_pre(struct uvt_stream *s)
{
	size_t w;

	if (!s->pre_len)
		return true;
	if (s->mux_closed || !s->conn)
		return false;
	w = yamux_write(s->conn->sess->mux, s->id, s->pre, s->pre_len);
	memmove(s->pre, s->pre + w, s->pre_len - w);
	s->pre_len -= w;
	if (s->pre_len)
		return false;
	if (s->close_after_pre && !s->fin_sent)
		stream_fin(s);
	return true;
}

bool uvt_stream_send(struct uvt_stream *s, const uint8_t *p, size_t n)
{
	if (s->mux_closed || !s->conn || s->fin_sent || n > sizeof(s->pre) - s->pre_len)
		return false;
	memcpy(s->pre + s->pre_len, p, n);
	s->pre_len += n;
	stream_send_pre(s);
	uvt_conn_flush(s->conn);
	return true;
}

static void local_write_done(uv_write_t *req, int status)
{
	struct local_write *w = (struct local_write *)req;
	struct uvt_stream *s = w->stream;

	s->out_inflight -= w->len;
	if (s->done_called) {
		/* Cancelled by the close of s->out after its tunnel ended
		 * (UV_ECANCELED): s lives until that close completes, and
		 * there is nothing more to do with it. */
		free(w);
		return;
	}
	if (status < 0 && !s->mux_closed && s->conn) {
		uvt_stream_reset(s);
	} else if (!s->mux_closed && s->conn) {
		s->bytes_down += w->len;
		yamux_consumed(s->conn->sess->mux, s->id, w->len,
			       uv_now(s->conn->tcp.loop));
		uvt_conn_flush(s->conn);
	}
	free(w);
	stream_local_fin(s);
	stream_maybe_done(s);
}

static void stream_write_local(struct uvt_stream *s, const uint8_t *p, size_t n)
{
	struct local_write *w = malloc(sizeof(*w) + n);
	uv_buf_t b;

	if (!w) {
		uvt_stream_reset(s);
		return;
	}
	w->stream = s;
	w->len = n;
	memcpy(w->data, p, n);
	b = uv_buf_init((char *)w->data, (unsigned int)n);
	s->out_inflight += n;
	if (uv_write(&w->req, s->out, &b, 1, local_write_done) < 0) {
		s->out_inflight -= n;
		free(w);
		uvt_stream_reset(s);
	}
}

static void local_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct uvt_stream *s = h->data;

	(void)hint;
	if (!s->rbuf)
		s->rbuf = malloc(UVT_READ_SIZE);
	*buf = uv_buf_init((char *)s->rbuf, s->rbuf ? UVT_READ_SIZE : 0);
}

static void local_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct uvt_stream *s = st->data;

	(void)buf;
	if (n == 0)
		return;
	if (n < 0) {
		local_set_reading(s, false);
		if (n == UV_EOF) {
			s->in_eof = true;
			stream_push(s);
		} else {
			uvt_stream_reset(s);
		}
		return;
	}
	s->r_off = 0;
	s->r_len = (size_t)n;
	stream_push(s);
}

static void local_set_reading(struct uvt_stream *s, bool on)
{
	if (s->in_reading == on || !s->in)
		return;
	if (on && (s->in_eof || s->mux_closed))
		return;
	s->in_reading = on;
	if (on)
		uv_read_start(s->in, local_alloc, local_read);
	else
		uv_read_stop(s->in);
}

/* Local bytes into the stream, as far as the peer's window allows. */
static void stream_push(struct uvt_stream *s)
{
	struct uvt_conn *c = s->conn;

	if (s->mux_closed || !c)
		return;
	if (!stream_send_pre(s))
		return;
	if (s->r_len) {
		size_t w = yamux_write(c->sess->mux, s->id, s->rbuf + s->r_off, s->r_len);

		s->r_off += w;
		s->r_len -= w;
		s->bytes_up += w;
	}
	if (s->r_len == 0 && s->in_eof && !s->fin_sent) {
		s->fin_sent = true;
		yamux_close(c->sess->mux, s->id);
	}
	/* Read on only once the peer took everything of the last read. */
	local_set_reading(s, s->r_len == 0);
	if (!c->ended)
		uvt_conn_flush(c);
}

void uvt_stream_relay(struct uvt_stream *s, uv_stream_t *in, uv_stream_t *out)
{
	struct uvt_pending *q;

	s->in = in;
	s->out = out;
	in->data = s;
	out->data = s;
	s->relaying = true;
	while ((q = s->queue)) {
		s->queue = q->next;
		if (!s->mux_closed)
			stream_write_local(s, q->data, q->len);
		free(q);
	}
	s->queue_tail = &s->queue;
	stream_local_fin(s);
	local_set_reading(s, true);
	stream_maybe_done(s);
}

void uvt_stream_close(struct uvt_stream *s)
{
	if (s->mux_closed || !s->conn || s->fin_sent)
		return;
	if (s->pre_len) {
		s->close_after_pre = true;	/* the FIN follows the preamble */
		return;
	}
	stream_fin(s);
	uvt_conn_flush(s->conn);
}

void uvt_stream_reset(struct uvt_stream *s)
{
	struct uvt_conn *c = s->conn;

	s->failed = true;
	local_set_reading(s, false);
	if (s->mux_closed || !c)
		return;
	/* on_closed runs inside yamux_reset: s may be done after this. */
	yamux_reset(c->sess->mux, s->id);
	uvt_conn_flush(c);
}

/* Once yamux forgot the stream: at once if its tunnel ended (closing the
 * local handles cancels what is still being written: a dead tunnel holds
 * no socket), else when every local write has completed. */
static void stream_maybe_done(struct uvt_stream *s)
{
	if (s->done_called || !s->mux_closed || (s->out_inflight && !s->conn_lost))
		return;
	s->done_called = true;
	if (s->relaying)
		s->hooks->done(s);
	else if (s->hooks->failed)
		s->hooks->failed(s);
}

void uvt_stream_free(struct uvt_stream *s)
{
	struct uvt_pending *q;

	while ((q = s->queue)) {
		s->queue = q->next;
		free(q);
	}
	free(s->rbuf);
	free(s);
}
