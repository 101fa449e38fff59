/*
 * One yamux stream and its relay to local libuv streams. Its life is
 * s->state (uv_internal.h), changed in uvs_step() only; the rest is the
 * local handles' mechanics (reading or not, the shutdown passed on).
 *
 * A callback of the caller (done, failed, preamble) may end s: whatever
 * calls the session or a hook that can, touches s no more after it.
 */
#include "uv_internal.h"

#include <stdlib.h>
#include <string.h>

/* Bytes of the peer's stream kept before the relay starts (copies). */
struct uvt_pending {
	struct uvt_pending *next;
	size_t len;
	uint8_t data[];
};

struct local_write {
	uv_write_t req;
	struct uvt_stream *stream;
	size_t len;
	uint8_t data[];
};

static void stream_push(struct uvt_stream *s);
static void local_set_reading(struct uvt_stream *s, bool on);

static bool live(const struct uvt_stream *s)
{
	return s->state == UVS_OPEN || s->state == UVS_FIN_SENT ||
	       s->state == UVS_PEER_FIN;
}

static bool peer_finished(const struct uvt_stream *s)
{
	return s->state == UVS_PEER_FIN || s->state == UVS_CLOSED;
}

/* The transitions (the diagram in uv_internal.h). Leaving the live states
 * lets go of the session: yamux forgets the stream in the same call. */
static void uvs_step(struct uvt_stream *s, enum uvs_event ev)
{
	if (!live(s))
		return;
	switch (ev) {
	case UVS_EV_FIN_SENT:
		s->state = s->state == UVS_PEER_FIN ? UVS_CLOSED : UVS_FIN_SENT;
		break;
	case UVS_EV_PEER_FIN:
		s->state = s->state == UVS_FIN_SENT ? UVS_CLOSED : UVS_PEER_FIN;
		break;
	case UVS_EV_RESET:
		s->state = UVS_RESET;
		break;
	case UVS_EV_FORGOTTEN:
		/* Without both FINs: the peer reset or refused it, or it
		 * timed out. Not counted as our reset (uvt_stream_was_reset). */
		s->state = UVS_DROPPED;
		break;
	case UVS_EV_LOST:
		s->state = UVS_LOST;
		break;
	}
	if (!live(s)) {
		s->conn = NULL;
		local_set_reading(s, false);
	}
}

/* Once the session forgot the stream: at once if its tunnel ended
 * (closing the local handles cancels what is still being written: a dead
 * tunnel holds no socket), else when every local write has completed. */
static void stream_maybe_done(struct uvt_stream *s)
{
	if (s->reported || live(s) || (s->out_inflight && s->state != UVS_LOST))
		return;
	s->reported = true;
	if (s->out)
		s->hooks->done(s);
	else if (s->hooks->failed)
		s->hooks->failed(s);
}

static struct uvt_stream *stream_alloc(struct uvt_conn *c, uint32_t id,
				       const struct uvt_stream_hooks *hooks,
				       void *user)
{
	struct uvt_stream *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->conn = c;
	s->id = id;
	s->state = UVS_OPEN;
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

	if (c->phase != UVC_SESSION || !(id = session_open(c->sess)))
		return NULL;
	s = stream_alloc(c, id, hooks, user);
	if (!s) {
		session_reset_stream(c->sess, id);
		return NULL;
	}
	session_set_stream_user(c->sess, id, s);
	uvc_flush(c);
	return s;
}

/* Our FIN. It may close the stream (the peer's came first): last. */
static void stream_fin(struct uvt_stream *s)
{
	struct session *sess = s->conn->sess;
	uint32_t id = s->id;

	uvs_step(s, UVS_EV_FIN_SENT);
	session_close_stream(sess, id);
}

/* Send what is left of the preamble; true once it is all out. A full
 * output queue takes nothing: on_writable brings us back. */
static bool stream_send_pre(struct uvt_stream *s)
{
	size_t w;

	if (!s->pre_len)
		return true;
	w = session_write(s->conn->sess, s->id, s->pre, s->pre_len);
	memmove(s->pre, s->pre + w, s->pre_len - w);
	s->pre_len -= w;
	return s->pre_len == 0;
}

bool uvt_stream_send(struct uvt_stream *s, const uint8_t *p, size_t n)
{
	struct uvt_conn *c = s->conn;

	if (!live(s) || s->fin_wanted || n > sizeof(s->pre) - s->pre_len)
		return false;
	memcpy(s->pre + s->pre_len, p, n);
	s->pre_len += n;
	stream_send_pre(s);
	uvc_flush(c);
	return true;
}

/* Local bytes into the stream, as far as the peer's window allows; then
 * our FIN, once wanted and everything before it has gone. */
static void stream_push(struct uvt_stream *s)
{
	struct uvt_conn *c = s->conn;

	if (!live(s) || !stream_send_pre(s))
		return;
	if (s->r_len) {
		size_t w = session_write(c->sess, s->id, s->rbuf + s->r_off, s->r_len);

		s->r_off += w;
		s->r_len -= w;
	}
	/* Read on only once the peer took everything of the last read. */
	local_set_reading(s, s->r_len == 0);
	if (s->r_len == 0 && s->fin_wanted && s->state != UVS_FIN_SENT)
		stream_fin(s);
	uvc_flush(c);
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

	if (!s->out || !peer_finished(s) || s->out_shut || s->queue ||
	    s->out_inflight)
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

static void local_write_done(uv_write_t *req, int status)
{
	struct local_write *w = (struct local_write *)req;
	struct uvt_stream *s = w->stream;
	struct uvt_conn *c = s->conn;

	s->out_inflight -= w->len;
	if (s->reported) {
		/* Cancelled by the close of s->out after its tunnel ended
		 * (UV_ECANCELED): s lives until that close completes, and
		 * there is nothing more to do with it. */
		free(w);
		return;
	}
	if (c && status < 0) {
		uvt_stream_reset(s);
	} else if (c) {
		session_consumed(c->sess, s->id, w->len, uv_now(c->tcp.loop));
		uvc_flush(c);
	}
	free(w);
	stream_local_fin(s);
	stream_maybe_done(s);
}

/* Straight to the local socket when nothing is in flight ahead of it,
 * which is most of the time: no copy, no request, credit at once. What
 * the socket does not take (or an error, which uv_write reports) goes
 * the queued way. */
static size_t stream_try_write(struct uvt_stream *s, const uint8_t *p, size_t n)
{
	uv_buf_t b = uv_buf_init((char *)p, (unsigned int)n);
	int done;

	if (s->out_inflight || !s->conn)
		return 0;
	done = uv_try_write(s->out, &b, 1);
	if (done <= 0)
		return 0;
	session_consumed(s->conn->sess, s->id, (size_t)done,
			 uv_now(s->conn->tcp.loop));
	return (size_t)done;
}

static void stream_write_local(struct uvt_stream *s, const uint8_t *p, size_t n)
{
	size_t done = stream_try_write(s, p, n);
	struct local_write *w;
	uv_buf_t b;

	if (done == n)
		return;
	p += done;
	n -= done;
	w = malloc(sizeof(*w) + n);
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

/* Before the relay: keep a copy; the window bounds how much. */
static void stream_keep(struct uvt_stream *s, const uint8_t *p, size_t n)
{
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

void uvs_event_data(struct uvt_stream *s, const uint8_t *p, size_t n)
{
	struct uvt_conn *c = s->conn;
	uint32_t id = s->id;
	size_t took;

	if (!s->out && s->hooks->preamble) {
		/* The hook may reset s and take every byte: then s is
		 * not touched again. */
		took = s->hooks->preamble(s, p, n);
		if (took > n)
			took = n;
		session_consumed(c->sess, id, took, uv_now(c->tcp.loop));
		p += took;
		n -= took;
	}
	if (n == 0)
		return;
	if (s->out && !s->queue)
		stream_write_local(s, p, n);
	else
		stream_keep(s, p, n);
}

void uvs_event_fin(struct uvt_stream *s)
{
	uvs_step(s, UVS_EV_PEER_FIN);
	stream_local_fin(s);
}

void uvs_event_writable(struct uvt_stream *s)
{
	stream_push(s);
}

void uvs_event_closed(struct uvt_stream *s, bool conn_ended)
{
	uvs_step(s, conn_ended ? UVS_EV_LOST : UVS_EV_FORGOTTEN);
	stream_maybe_done(s);
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
			s->fin_wanted = true;
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
	if (on && (s->fin_wanted || !live(s)))
		on = false;
	if (s->in_reading == on || !s->in)
		return;
	s->in_reading = on;
	if (on)
		uv_read_start(s->in, local_alloc, local_read);
	else
		uv_read_stop(s->in);
}

void uvt_stream_relay(struct uvt_stream *s, uv_stream_t *in, uv_stream_t *out)
{
	struct uvt_pending *q;

	s->in = in;
	s->out = out;
	in->data = s;
	out->data = s;
	while ((q = s->queue)) {
		s->queue = q->next;
		if (live(s))
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
	if (!live(s) || s->fin_wanted)
		return;
	s->fin_wanted = true;	/* after the preamble and what is kept */
	stream_push(s);
}

void uvt_stream_reset(struct uvt_stream *s)
{
	struct uvt_conn *c = s->conn;
	uint32_t id = s->id;

	uvs_step(s, UVS_EV_RESET);
	local_set_reading(s, false);
	if (!c)
		return;
	/* on_closed runs inside: s may be done after this. */
	session_reset_stream(c->sess, id);
	uvc_flush(c);
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

/* The façade. */

void *uvt_stream_user(const struct uvt_stream *s)
{
	return s->user;
}

bool uvt_stream_finished(const struct uvt_stream *s)
{
	return s->state == UVS_CLOSED;
}

bool uvt_stream_was_reset(const struct uvt_stream *s)
{
	return s->state == UVS_RESET;
}

bool uvt_stream_lost(const struct uvt_stream *s)
{
	return s->state == UVS_LOST;
}

bool uvt_stream_cut_short(const struct uvt_stream *s)
{
	return s->out && (s->state == UVS_RESET || s->state == UVS_LOST) &&
	       !s->out_shut;
}

bool uvt_stream_live(const struct uvt_stream *s)
{
	return live(s);
}

bool uvt_stream_relaying(const struct uvt_stream *s)
{
	return s->out != NULL;
}

size_t uvt_stream_out_inflight(const struct uvt_stream *s)
{
	return s->out_inflight;
}
