/*
 * yamux session: streams, windows, keepalive and go-away over one byte
 * stream, as hashicorp/yamux's spec.md describes them. docs/YAMUX.md has
 * the rules this file implements, and why.
 */
#include "yamux.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Control frames (ACK, RST, FIN, window updates, pings, go-away) may fill
 * the output queue this far past max_output, so a session can always
 * answer what one input call asked of it; data and opens cannot. */
#define OUTPUT_RESERVE (128u * 1024)
#define OUTPUT_FIRST_ALLOC 4096u
#define MAX_OUTPUT_LIMIT ((size_t)1 << 30)

#define TABLE_FIRST_BITS 4
#define RTT_UNKNOWN UINT64_MAX

/* Why a stream cannot write right now, and so what will wake it. */
enum blocked {
	NOT_BLOCKED,
	BLOCKED_ON_WINDOW,	/* a window update from the peer */
	BLOCKED_ON_QUEUE,	/* the caller draining the output queue */
};

/* How a stream ends, and so what the application hears. */
enum release {
	RELEASE_REFUSED,	/* never opened: nothing */
	RELEASE_CLOSED,		/* on_closed */
	RELEASE_RESET,		/* on_reset, then on_closed */
};

struct yamux_stream {
	uint32_t id;
	bool accepting;		/* inside on_open: not usable yet */
	bool acked;		/* the peer's stream, or ours once ACKed */
	bool local_fin, remote_fin;
	uint8_t blocked;	/* enum blocked */
	uint32_t send_window;	/* bytes the peer still lets us send */
	uint32_t recv_window;	/* bytes the peer may still send us */
	uint32_t unconsumed;	/* delivered, not yet yamux_consumed() */
	uint32_t recv_size;	/* the window we keep open; grows */
	uint32_t credited;	/* credit sent since window_epoch_ms */
	uint64_t credit_ms;	/* when the sampled window update went out */
	uint64_t data_rtt_ms;	/* credit to the first data it allowed */
	uint64_t received;	/* data bytes so far (wraps harmlessly) */
	uint64_t edge;		/* received may pass this only with the
				 * sampled credit: the data beyond it */
	bool awaiting_data;	/* a credit sampled, its data not yet in */
	bool credit_early;	/* it left before the peer reached the edge */
	bool at_edge;		/* received reached the edge exactly … */
	uint64_t edge_ms;	/* … then */
	bool stalled;		/* this window, the peer waited at the edge */
	uint64_t window_epoch_ms;	/* start of this window's worth */
	void *user;
};

/* Open addressing, linear probing, at most half full; entries are
 * pointers, so a stream stays put while the table grows or shifts. */
struct stream_table {
	struct yamux_stream **slot;
	uint32_t bits;		/* 1 << bits slots */
	uint32_t count;
};

/* Frames waiting for the transport: a ring, allocated as it fills. */
struct out_queue {
	uint8_t *buf;
	size_t size;		/* allocated */
	size_t head;		/* first byte not consumed */
	size_t len;		/* bytes queued */
	size_t limit;		/* max_output + OUTPUT_RESERVE */
};

/* The input parser: a header being assembled, or a payload passing. */
struct input {
	uint8_t hdr[YAMUX_HEADER_LEN];
	size_t have;		/* header bytes so far */
	uint32_t left;		/* payload bytes still to come */
	uint32_t stream_id;	/* whose payload */
	bool deliver;		/* to on_data, or dropped */
	bool fin;		/* the frame carried FIN: apply at its end */
};

#define ACTIVE_PING_MS 1000	/* while data flows: see keepalive_deadline() */

struct yamux_session {
	struct yamux_config cfg;
	struct yamux_events ev;
	void *user;

	struct stream_table streams;
	uint32_t next_id;
	uint32_t pending_opens;	/* ours, not yet ACKed */
	uint32_t queue_blocked;	/* streams BLOCKED_ON_QUEUE */

	struct out_queue out;
	struct input in;

	uint64_t now_ms;	/* the latest time we were given */
	uint64_t rtt_ms;	/* smoothed; RTT_UNKNOWN before the first */
	uint64_t next_ping_ms;
	uint64_t ping_sent_ms;
	uint32_t ping_value;
	bool ping_outstanding;
	bool data_since_ping;	/* stream data came in since the last ping */
	uint64_t ping_last_ms;	/* the latest round trip, unsmoothed */
	uint64_t heard_ms;	/* when the peer's bytes last came in */
	uint64_t waiting_ms;	/* when our oldest unanswered open went out */
	bool waiting_unstamped;	/* an open since the clock last moved */

	bool local_goaway, remote_goaway;
	bool freeing;
	enum yamux_error error;
};

static uint64_t elapsed(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

/* The session's clock never runs backwards, whatever the caller says. */
static void advance_clock(struct yamux_session *s, uint64_t now_ms)
{
	if (now_ms > s->now_ms)
		s->now_ms = now_ms;
}

static size_t min_size(size_t a, size_t b)
{
	return a < b ? a : b;
}

/* Output queue */

static bool out_reserve(struct out_queue *q, size_t n)
{
	size_t want, size, first;
	uint8_t *buf;

	if (n > q->limit - q->len)
		return false;
	want = q->len + n;
	if (want <= q->size)
		return true;
	size = q->size ? q->size : OUTPUT_FIRST_ALLOC;
	while (size < want)
		size *= 2;
	if (size > q->limit)
		size = q->limit;
	buf = malloc(size);
	if (!buf)
		return false;
	/* Unwrap into the new buffer: rare, and the queue only grows. */
	if (q->len > 0) {
		first = min_size(q->len, q->size - q->head);
		memcpy(buf, q->buf + q->head, first);
		memcpy(buf + first, q->buf, q->len - first);
	}
	free(q->buf);
	q->buf = buf;
	q->size = size;
	q->head = 0;
	return true;
}

/* After out_reserve(): append, wrapping at the end of the ring. */
static void out_put(struct out_queue *q, const uint8_t *p, size_t n)
{
	size_t tail = q->head + q->len, first;

	if (tail >= q->size)
		tail -= q->size;
	first = min_size(n, q->size - tail);
	memcpy(q->buf + tail, p, first);
	memcpy(q->buf, p + first, n - first);
	q->len += n;
}

static void put_header(struct out_queue *q, uint8_t type, uint16_t flags,
		       uint32_t id, uint32_t length)
{
	struct yamux_header h = {
		.version = YAMUX_VERSION, .type = type, .flags = flags,
		.stream_id = id, .length = length,
	};
	uint8_t raw[YAMUX_HEADER_LEN];

	yamux_header_encode(raw, &h);
	out_put(q, raw, sizeof(raw));
}

/* A frame without payload. Only a caller that never drains the queue (or
 * a failed malloc) makes this fail, and that ends the session. */
static bool queue_control(struct yamux_session *s, uint8_t type,
			  uint16_t flags, uint32_t id, uint32_t length)
{
	if (!out_reserve(&s->out, YAMUX_HEADER_LEN)) {
		if (s->error == YAMUX_OK)
			s->error = YAMUX_E_OUTPUT;
		return false;
	}
	put_header(&s->out, type, flags, id, length);
	return true;
}

/* Payload bytes the queue takes now, header counted, within max_output. */
static size_t data_room(const struct yamux_session *s)
{
	size_t used = s->out.len + YAMUX_HEADER_LEN;

	return used < s->cfg.max_output ? s->cfg.max_output - used : 0;
}

/* Writers blocked on the queue wake when it is half empty, not at every
 * consumed byte: that keeps their frames large. */
static bool queue_has_room(const struct yamux_session *s)
{
	return s->out.len <= s->cfg.max_output / 2;
}

/* Stream table */

static uint32_t slot_of(uint32_t bits, uint32_t id)
{
	/* Fibonacci hashing: the top bits of id·2^32/φ spread consecutive
	 * odd or even ids over every slot. */
	return (uint32_t)(id * 0x9e3779b9u) >> (32 - bits);
}

static uint32_t table_mask(const struct stream_table *t)
{
	return (1u << t->bits) - 1;
}

static void table_place(struct yamux_stream **slot, uint32_t bits,
			struct yamux_stream *st)
{
	uint32_t mask = (1u << bits) - 1, i = slot_of(bits, st->id);

	while (slot[i])
		i = (i + 1) & mask;
	slot[i] = st;
}

static bool table_init(struct stream_table *t)
{
	t->bits = TABLE_FIRST_BITS;
	t->count = 0;
	t->slot = calloc((size_t)1 << t->bits, sizeof(*t->slot));
	return t->slot != NULL;
}

/* Room for one more, keeping the table at most half full. */
static bool table_make_room(struct stream_table *t)
{
	uint32_t bits = t->bits + 1, n = 1u << t->bits;
	struct yamux_stream **slot;

	if ((t->count + 1) * 2 <= n)
		return true;
	if (bits > 31)
		return false;
	slot = calloc((size_t)1 << bits, sizeof(*slot));
	if (!slot)
		return false;
	for (uint32_t i = 0; i < n; i++)
		if (t->slot[i])
			table_place(slot, bits, t->slot[i]);
	free(t->slot);
	t->slot = slot;
	t->bits = bits;
	return true;
}

static struct yamux_stream *stream_find(const struct yamux_session *s,
					uint32_t id)
{
	const struct stream_table *t = &s->streams;
	uint32_t mask = table_mask(t);

	/* The table is never full: every probe run ends at a hole. */
	for (uint32_t i = slot_of(t->bits, id); t->slot[i]; i = (i + 1) & mask)
		if (t->slot[i]->id == id)
			return t->slot[i];
	return NULL;
}

static void table_remove(struct stream_table *t, uint32_t id)
{
	uint32_t mask = table_mask(t), i = slot_of(t->bits, id), j;

	while (t->slot[i]->id != id)
		i = (i + 1) & mask;
	t->slot[i] = NULL;
	t->count--;
	/* Backward-shift deletion, no tombstones: pull each later member of
	 * the probe run into the hole unless its home slot lies after the
	 * hole (cyclically), where a lookup would no longer pass the hole. */
	for (j = (i + 1) & mask; t->slot[j]; j = (j + 1) & mask) {
		uint32_t home = slot_of(t->bits, t->slot[j]->id);

		if (((j - home) & mask) >= ((j - i) & mask)) {
			t->slot[i] = t->slot[j];
			t->slot[j] = NULL;
			i = j;
		}
	}
}

/* Streams */

static bool is_peer_id(const struct yamux_session *s, uint32_t id)
{
	/* The client opens odd ids, the server even ones. */
	return (id & 1) == (s->cfg.is_client ? 0u : 1u);
}

static struct yamux_stream *stream_new(struct yamux_session *s, uint32_t id,
				       bool ours)
{
	struct yamux_stream *st;

	if (!table_make_room(&s->streams))
		return NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return NULL;
	st->id = id;
	st->acked = !ours;
	st->send_window = YAMUX_PROTOCOL_WINDOW;
	/* Our SYN or ACK, queued right after this, tells the peer about
	 * the part of initial_window beyond the protocol's 256 KiB. */
	st->recv_window = s->cfg.initial_window;
	st->recv_size = s->cfg.initial_window;
	st->window_epoch_ms = s->now_ms;
	st->data_rtt_ms = RTT_UNKNOWN;
	table_place(s->streams.slot, s->streams.bits, st);
	s->streams.count++;
	if (ours && s->pending_opens++ == 0)
		s->waiting_unstamped = true;	/* yamux_open() has no clock */
	return st;
}

static void unblock(struct yamux_session *s, struct yamux_stream *st)
{
	if (st->blocked == BLOCKED_ON_QUEUE)
		s->queue_blocked--;
	st->blocked = NOT_BLOCKED;
}

/* Forget a stream and tell the application, which may call back in: the
 * stream is out of the table by then, so those calls find nothing. */
static void stream_release(struct yamux_session *s, struct yamux_stream *st,
			   enum release how)
{
	uint32_t id = st->id;
	void *user = st->user;

	unblock(s, st);
	if (!st->acked)
		s->pending_opens--;
	table_remove(&s->streams, id);
	free(st);
	if (how == RELEASE_RESET && s->ev.on_reset)
		s->ev.on_reset(s->user, id);
	if (how != RELEASE_REFUSED && s->ev.on_closed)
		s->ev.on_closed(s->user, id, user);
}

/* The stream an API call names, if the application may use it now. */
static struct yamux_stream *app_stream(const struct yamux_session *s,
				       uint32_t id)
{
	struct yamux_stream *st;

	if (s->error != YAMUX_OK || s->freeing)
		return NULL;
	st = stream_find(s, id);
	return st && !st->accepting ? st : NULL;
}

/* Receive window */

/*
 * Window growth. A whole window went through the application within two
 * round trips: then the peer spends more time waiting for our credit than
 * sending, and the window, not the reader, limits the stream: double it,
 * up to max_window. A whole window, not half: a slow reader that consumes
 * in bursts credits half a window in no time, but a whole one only as
 * slowly as it reads. The round trip is the smaller of two: the ping's,
 * which the peer sets by when it answers (answer late, and every window
 * looks fast), and the
 * time from a credit to the first data beyond what the peer could send
 * without it (not merely the next data: that was on its way already). A
 * sender the window limits sends as soon as credit comes, so that second
 * round trip is the path's and a window goes through in about one of
 * them; a peer that sends at its own pace reaches the edge only after
 * half a window's time, and needs two for a whole one: under 1.5 round
 * trips is "fast", so it does not make the window grow.
 * Without both round trips measured yet, no growth. Returns the bytes
 * the window grew by.
 */
static uint32_t grow_window(struct yamux_session *s, struct yamux_stream *st,
			    uint32_t credit)
{
	uint32_t old = st->recv_size;
	uint64_t rtt = s->rtt_ms;
	bool fast;

	if (credit < st->recv_size - st->credited) {
		st->credited += credit;
		return 0;
	}
	if (st->data_rtt_ms < rtt)
		rtt = st->data_rtt_ms;
	/* RTT is measured in whole ms: on a link faster than that it reads
	 * 0, which must not mean "never fast". */
	fast = s->rtt_ms != RTT_UNKNOWN && st->data_rtt_ms != RTT_UNKNOWN &&
	       2 * elapsed(s->now_ms, st->window_epoch_ms) < 3 * (rtt ? rtt : 1);
	if ((fast || st->stalled) && old < s->cfg.max_window)
		st->recv_size = old > s->cfg.max_window / 2 ? s->cfg.max_window
							    : 2 * old;
	st->stalled = false;
	st->credited = 0;
	st->window_epoch_ms = s->now_ms;
	return st->recv_size - old;
}

/*
 * The peer may send recv_window more bytes; unconsumed are with the
 * application. Together they stay within recv_size, and what is left is
 * credit for the peer: sent as one delta once it is half the window or
 * more, so a stream costs one window update per half window, not one per
 * frame.
 */
static void credit_window(struct yamux_session *s, struct yamux_stream *st)
{
	uint32_t credit;

	if (st->remote_fin)	/* the peer sends no more data */
		return;
	credit = st->recv_size - st->recv_window - st->unconsumed;
	if (credit < st->recv_size / 2)
		return;
	credit += grow_window(s, st, credit);
	if (queue_control(s, YAMUX_WINDOW_UPDATE, 0, st->id, credit)) {
		/* One sample at a time: the data beyond what the peer was
		 * allowed before this credit was sent after the credit reached
		 * it, however much older data is still on the way. */
		if (!st->awaiting_data) {
			st->edge = st->received + st->recv_window;
			st->credit_ms = s->now_ms;
			st->awaiting_data = true;
			st->credit_early = st->recv_window > 0;
			st->at_edge = false;
		}
		st->recv_window += credit;
	}
}

/* Send side */

static void block(struct yamux_session *s, struct yamux_stream *st)
{
	if (st->blocked != NOT_BLOCKED)
		return;
	if (st->send_window == 0) {
		st->blocked = BLOCKED_ON_WINDOW;
	} else {
		st->blocked = BLOCKED_ON_QUEUE;
		s->queue_blocked++;
	}
}

static void writable(struct yamux_session *s, uint32_t id)
{
	if (s->ev.on_writable)
		s->ev.on_writable(s->user, id);
}

/* A window update from the peer. */
static void send_credit(struct yamux_session *s, uint32_t id, uint32_t delta)
{
	struct yamux_stream *st = stream_find(s, id);

	if (!st)
		return;
	st->send_window += delta;
	if (st->blocked != BLOCKED_ON_WINDOW || st->send_window == 0)
		return;
	if (queue_has_room(s)) {
		st->blocked = NOT_BLOCKED;
		writable(s, id);
	} else {
		st->blocked = BLOCKED_ON_QUEUE;
		s->queue_blocked++;
	}
}

/* Wake every writer blocked on the queue. Their ids are collected first:
 * the callbacks may open, close or reset streams, which moves entries. */
static void wake_queue_blocked(struct yamux_session *s)
{
	struct stream_table *t = &s->streams;
	uint32_t slots = table_mask(t) + 1, n = 0;
	uint32_t *ids = malloc((size_t)s->queue_blocked * sizeof(*ids));

	for (uint32_t i = 0; i < slots && n < s->queue_blocked; i++) {
		struct yamux_stream *st = t->slot[i];

		if (!st || st->blocked != BLOCKED_ON_QUEUE)
			continue;
		if (!ids) {
			/* No memory for the list: wake this one now, and the
			 * rest when the queue drains again. */
			unblock(s, st);
			writable(s, st->id);
			return;
		}
		ids[n++] = st->id;
	}
	for (uint32_t i = 0; i < n; i++) {
		struct yamux_stream *st = stream_find(s, ids[i]);

		if (st && st->blocked == BLOCKED_ON_QUEUE) {
			unblock(s, st);
			writable(s, ids[i]);
		}
	}
	free(ids);
}

/* Input: frame handlers */

/* The session ends. A protocol error tells the peer why, once. */
static void fail(struct yamux_session *s, enum yamux_error e)
{
	if (s->error != YAMUX_OK)
		return;
	if (e <= YAMUX_E_AFTER_FIN) {
		queue_control(s, YAMUX_GO_AWAY, 0, 0, YAMUX_GOAWAY_PROTOCOL);
		s->local_goaway = true;
	}
	s->error = e;
}

/* Everything wrong with a data or window update frame, found before any
 * of it takes effect. st is the stream it names, if open. */
static enum yamux_error check_stream_frame(const struct yamux_session *s,
					   const struct yamux_header *h,
					   const struct yamux_stream *st)
{
	bool data = h->type == YAMUX_DATA;

	if (h->stream_id == 0)
		return YAMUX_E_STREAM_ZERO;
	if (data && h->length > s->cfg.max_window)
		return YAMUX_E_TOO_LONG;
	if (h->flags & YAMUX_SYN) {
		if (!is_peer_id(s, h->stream_id))
			return YAMUX_E_PARITY;
		if (st)
			return YAMUX_E_DUPLICATE;
		if (data && h->length > s->cfg.initial_window)
			return YAMUX_E_WINDOW;
		if (!data && h->length > UINT32_MAX - YAMUX_PROTOCOL_WINDOW)
			return YAMUX_E_WINDOW_OVERFLOW;
		return YAMUX_OK;
	}
	if (!st || (h->flags & YAMUX_RST))	/* a reset voids the rest */
		return YAMUX_OK;
	if (st->remote_fin && ((h->flags & YAMUX_FIN) || (data && h->length)))
		return YAMUX_E_AFTER_FIN;
	if (data && h->length > st->recv_window)
		return YAMUX_E_WINDOW;
	if (!data && h->length > UINT32_MAX - st->send_window)
		return YAMUX_E_WINDOW_OVERFLOW;
	return YAMUX_OK;
}

static void remote_fin(struct yamux_session *s, uint32_t id)
{
	struct yamux_stream *st = stream_find(s, id);

	if (!st)
		return;
	st->remote_fin = true;
	if (s->ev.on_fin)
		s->ev.on_fin(s->user, id);
	st = stream_find(s, id);	/* on_fin may have closed it */
	if (st && st->local_fin)
		stream_release(s, st, RELEASE_CLOSED);
}

static void frame_end(struct yamux_session *s)
{
	if (s->in.fin) {
		s->in.fin = false;
		remote_fin(s, s->in.stream_id);
	}
}

static void expect_payload(struct yamux_session *s, uint32_t id, uint32_t len,
			   bool deliver, bool fin)
{
	s->in.stream_id = id;
	s->in.left = len;
	s->in.deliver = deliver;
	s->in.fin = fin;
	if (len == 0)
		frame_end(s);
}

/* An incoming SYN: a new stream, unless we are going away, at the stream
 * limit, out of memory, or the application says no. */
static struct yamux_stream *accept_stream(struct yamux_session *s, uint32_t id)
{
	struct yamux_stream *st = NULL;

	if (!s->local_goaway && s->streams.count < s->cfg.max_streams)
		st = stream_new(s, id, false);
	if (st) {
		/* The application cannot free an accepting stream, so st
		 * outlives the callback. */
		st->accepting = true;
		if (s->ev.on_open && s->ev.on_open(s->user, id)) {
			st->accepting = false;
			queue_control(s, YAMUX_WINDOW_UPDATE, YAMUX_ACK, id,
				      s->cfg.initial_window - YAMUX_PROTOCOL_WINDOW);
			return st;
		}
		stream_release(s, st, RELEASE_REFUSED);
	}
	queue_control(s, YAMUX_WINDOW_UPDATE, YAMUX_RST, id, 0);
	return NULL;
}

static void established(struct yamux_session *s, uint32_t id)
{
	struct yamux_stream *st = stream_find(s, id);

	if (!st || st->acked)	/* hashicorp ignores a stray ACK too */
		return;
	st->acked = true;
	s->pending_opens--;
	if (s->ev.on_established)
		s->ev.on_established(s->user, id);
}

static void remote_reset(struct yamux_session *s, uint32_t id)
{
	struct yamux_stream *st = stream_find(s, id);

	if (st)
		stream_release(s, st, RELEASE_RESET);
}

/* Data or window update. Flags act in the order SYN, ACK, window delta,
 * data, FIN; RST (with anything) drops the stream and any payload. Every
 * step looks the stream up again: a callback may have ended it. */
static void stream_frame(struct yamux_session *s, const struct yamux_header *h)
{
	uint32_t id = h->stream_id;
	uint32_t len = h->type == YAMUX_DATA ? h->length : 0;
	struct yamux_stream *st = stream_find(s, id);
	enum yamux_error e = check_stream_frame(s, h, st);

	if (e != YAMUX_OK) {
		fail(s, e);
		return;
	}
	if (h->flags & YAMUX_SYN) {
		st = (h->flags & YAMUX_RST) ? NULL : accept_stream(s, id);
	} else if (!st) {
		/* A stream we reset, or never had. Tell the peer to stop
		 * sending, but never answer a reset or a window update: two
		 * sessions would echo them forever. */
		if (h->type == YAMUX_DATA && !(h->flags & YAMUX_RST))
			queue_control(s, YAMUX_WINDOW_UPDATE, YAMUX_RST, id, 0);
	} else if (h->flags & YAMUX_RST) {
		remote_reset(s, id);
		st = NULL;
	}
	if (!st) {
		expect_payload(s, id, len, false, false);
		return;
	}
	if (h->flags & YAMUX_ACK)
		established(s, id);
	if (h->type == YAMUX_WINDOW_UPDATE)
		send_credit(s, id, h->length);
	expect_payload(s, id, len, true, h->flags & YAMUX_FIN);
}

static void rtt_sample(struct yamux_session *s, uint64_t ms)
{
	/* TCP's smoothing (RFC 6298): one odd round trip moves it 1/8. */
	if (s->rtt_ms == RTT_UNKNOWN)
		s->rtt_ms = ms;
	else
		s->rtt_ms = (7 * s->rtt_ms + ms) / 8;
}

static void ping_frame(struct yamux_session *s, const struct yamux_header *h)
{
	if (h->stream_id != 0) {
		fail(s, YAMUX_E_NOT_STREAM_ZERO);
		return;
	}
	if (h->flags & YAMUX_SYN) {
		queue_control(s, YAMUX_PING, YAMUX_ACK, 0, h->length);
		return;
	}
	/* Anything else is an answer; a stale or unknown one is ignored. */
	if (s->ping_outstanding && h->length == s->ping_value) {
		s->ping_outstanding = false;
		s->ping_last_ms = elapsed(s->now_ms, s->ping_sent_ms);
		rtt_sample(s, s->ping_last_ms);
	}
}

static void goaway_frame(struct yamux_session *s, const struct yamux_header *h)
{
	if (h->stream_id != 0) {
		fail(s, YAMUX_E_NOT_STREAM_ZERO);
		return;
	}
	s->remote_goaway = true;
	if (s->ev.on_goaway)
		s->ev.on_goaway(s->user, h->length);
	/* Any code but normal means the peer is tearing the session down. */
	if (h->length != YAMUX_GOAWAY_NORMAL && s->error == YAMUX_OK)
		s->error = YAMUX_E_GOAWAY;
}

static void handle_frame(struct yamux_session *s, const struct yamux_header *h)
{
	if (h->version != YAMUX_VERSION) {
		fail(s, YAMUX_E_VERSION);
		return;
	}
	switch (h->type) {
	case YAMUX_DATA:
	case YAMUX_WINDOW_UPDATE:
		stream_frame(s, h);
		break;
	case YAMUX_PING:
		ping_frame(s, h);
		break;
	case YAMUX_GO_AWAY:
		goaway_frame(s, h);
		break;
	default:
		fail(s, YAMUX_E_TYPE);
	}
}

/* Input: the byte stream parser */

static size_t take_header(struct yamux_session *s, const uint8_t *p,
			  size_t len)
{
	struct input *in = &s->in;
	struct yamux_header h;
	size_t n;

	if (in->have == 0 && len >= YAMUX_HEADER_LEN) {
		/* The common case: the whole header is here, parse in place. */
		yamux_header_decode(&h, p);
		n = YAMUX_HEADER_LEN;
	} else {
		n = min_size(len, YAMUX_HEADER_LEN - in->have);
		memcpy(in->hdr + in->have, p, n);
		in->have += n;
		if (in->have < YAMUX_HEADER_LEN)
			return n;
		in->have = 0;
		yamux_header_decode(&h, in->hdr);
	}
	handle_frame(s, &h);
	return n;
}

/*
 * The data round trip of a sampled credit, and whether the peer stalled
 * on the window: the credit left while the peer could still send, the
 * data came in up to the old edge exactly and then stopped, and what the
 * credit allowed came within 1.5 round trips (the ping's) of it. The
 * peer waited at the edge for the credit and sent as soon as it came:
 * more window would have kept it sending. On a lossy path that is how a
 * window limits: TCP holds back what follows each loss, so a whole
 * window seldom goes through within 1.5 round trips (the other test, in
 * grow_window()), yet the sender sits at the edge after every stall.
 * Neither a sender that takes its time after a credit nor a slow reader
 * (whose credit leaves after the peer reached the edge) looks like it.
 */
/* The latest ping or the smoothed one, whichever is longer: a ping's
 * answer queues behind the peer's data as the data that answers a credit
 * does, and under load that queue moves faster than smoothing follows. */
static uint64_t recent_rtt(const struct yamux_session *s)
{
	return s->ping_last_ms > s->rtt_ms ? s->ping_last_ms : s->rtt_ms;
}

static void sample_data(struct yamux_session *s, struct yamux_stream *st)
{
	uint64_t waited;

	if (st->received == st->edge) {
		st->at_edge = true;
		st->edge_ms = s->now_ms;
		return;
	}
	if (st->received < st->edge)
		return;
	st->awaiting_data = false;
	st->data_rtt_ms = elapsed(s->now_ms, st->credit_ms);
	waited = st->at_edge ? elapsed(s->now_ms, st->edge_ms) : 0;
	if (st->credit_early && waited > 0 && 4 * waited >= st->data_rtt_ms &&
	    s->rtt_ms != RTT_UNKNOWN &&
	    2 * st->data_rtt_ms <= 3 * recent_rtt(s))
		st->stalled = true;
}

static void deliver(struct yamux_session *s, struct yamux_stream *st,
		    const uint8_t *p, size_t n)
{
	/* n fits: the frame's length was checked against recv_window. */
	st->recv_window -= (uint32_t)n;
	st->received += n;
	s->data_since_ping = true;
	if (st->awaiting_data)
		sample_data(s, st);
	if (!s->ev.on_data) {
		credit_window(s, st);
		return;
	}
	st->unconsumed += (uint32_t)n;
	s->ev.on_data(s->user, st->id, p, n);
}

/* Payload goes to the application as it arrives, never buffered here. */
static size_t take_payload(struct yamux_session *s, const uint8_t *p,
			   size_t len)
{
	struct input *in = &s->in;
	size_t n = min_size(len, in->left);
	struct yamux_stream *st = in->deliver ? stream_find(s, in->stream_id) : NULL;

	in->left -= (uint32_t)n;
	if (st)
		deliver(s, st, p, n);
	if (in->left == 0)
		frame_end(s);
	return n;
}

/*
 * A dead path. TCP retransmits for many minutes into a path that is gone
 * (a laptop changed networks, a NAT forgot us), and the keepalive notices
 * only after its timeout. But a stream we open is answered at once by a
 * live peer, so silence while an open waits is a sign, and a new stream
 * should not hang on it: answer_timeout_ms of hearing nothing at all from
 * the peer (or four round trips, if longer) ends the session. Anything
 * heard counts: on a slow link the ACK may queue behind the data the peer
 * is sending us, and that data shows the path is alive.
 */
static void heard_from_peer(struct yamux_session *s)
{
	s->heard_ms = s->now_ms;
	s->waiting_ms = s->now_ms;
	s->waiting_unstamped = false;
}

static uint64_t answer_limit_ms(const struct yamux_session *s)
{
	uint64_t rtt4 = s->rtt_ms == RTT_UNKNOWN ? 0 : 4 * s->rtt_ms;

	return rtt4 > s->cfg.answer_timeout_ms ? rtt4 : s->cfg.answer_timeout_ms;
}

static bool answer_awaited(const struct yamux_session *s)
{
	return s->cfg.answer_timeout_ms > 0 && s->pending_opens > 0;
}

/* The clock moved: an open made since starts its wait now. */
static void stamp_wait(struct yamux_session *s)
{
	if (s->waiting_unstamped) {
		s->waiting_unstamped = false;
		s->waiting_ms = s->now_ms;
	}
}

static uint64_t answer_deadline(const struct yamux_session *s)
{
	if (!answer_awaited(s))
		return UINT64_MAX;
	if (s->waiting_unstamped)
		return s->now_ms;
	return (s->waiting_ms > s->heard_ms ? s->waiting_ms : s->heard_ms) +
	       answer_limit_ms(s);
}

int yamux_input(struct yamux_session *s, const uint8_t *p, size_t len,
		uint64_t now_ms)
{
	advance_clock(s, now_ms);
	if (len > 0)
		heard_from_peer(s);
	while (len > 0 && s->error == YAMUX_OK) {
		size_t n = s->in.left > 0 ? take_payload(s, p, len)
					  : take_header(s, p, len);

		p += n;
		len -= n;
	}
	return -(int)s->error;
}

/* Keepalive */

/*
 * The next ping, or the end of waiting for its answer. While data comes
 * in, a ping a second at least: window growth compares with the round
 * trip, and a path's round trip changes under load (queues fill) and when
 * a laptop moves (a tunnel opened on a fast network, used on a slow
 * one); the 20 s keepalive alone would leave it stale.
 */
static uint64_t keepalive_deadline(const struct yamux_session *s)
{
	uint64_t next = s->next_ping_ms;

	if (s->cfg.keepalive_ms == 0)
		return UINT64_MAX;
	if (s->ping_outstanding)
		return s->ping_sent_ms + s->cfg.keepalive_timeout_ms;
	if (s->data_since_ping && s->ping_sent_ms + ACTIVE_PING_MS < next)
		next = s->ping_sent_ms + ACTIVE_PING_MS;
	return next;
}

static void send_ping(struct yamux_session *s, uint64_t now_ms)
{
	s->ping_value++;
	if (!queue_control(s, YAMUX_PING, YAMUX_SYN, 0, s->ping_value))
		return;
	s->ping_outstanding = true;
	s->ping_sent_ms = now_ms;
	s->next_ping_ms = now_ms + s->cfg.keepalive_ms;
	s->data_since_ping = false;
}

int yamux_tick(struct yamux_session *s, uint64_t now_ms)
{
	advance_clock(s, now_ms);
	stamp_wait(s);
	if (s->error == YAMUX_OK && s->now_ms >= answer_deadline(s))
		s->error = YAMUX_E_NO_ANSWER;
	if (s->error != YAMUX_OK || s->cfg.keepalive_ms == 0)
		return -(int)s->error;
	if (s->ping_outstanding) {
		if (elapsed(s->now_ms, s->ping_sent_ms) >= s->cfg.keepalive_timeout_ms)
			s->error = YAMUX_E_KEEPALIVE;
	} else if (s->now_ms >= keepalive_deadline(s)) {
		send_ping(s, s->now_ms);
	}
	return -(int)s->error;
}


uint64_t yamux_next_tick(const struct yamux_session *s)
{
	uint64_t a, k;

	if (s->error != YAMUX_OK)
		return UINT64_MAX;
	a = answer_deadline(s);
	k = keepalive_deadline(s);
	return a < k ? a : k;
}

/* Session */

static bool config_ok(const struct yamux_config *c)
{
	return c->initial_window >= YAMUX_PROTOCOL_WINDOW &&
	       c->max_window >= c->initial_window &&
	       (c->keepalive_ms == 0 || c->keepalive_timeout_ms > 0) &&
	       c->max_output > YAMUX_HEADER_LEN &&
	       c->max_output <= MAX_OUTPUT_LIMIT;
}

struct yamux_session *yamux_new(const struct yamux_config *cfg,
				const struct yamux_events *events, void *user)
{
	struct yamux_session *s;

	if (!config_ok(cfg)) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->cfg = *cfg;
	if (events)
		s->ev = *events;
	s->user = user;
	s->next_id = cfg->is_client ? 1 : 2;
	s->out.limit = cfg->max_output + OUTPUT_RESERVE;
	s->rtt_ms = RTT_UNKNOWN;
	/* next_ping_ms 0: the first tick pings at once, which measures the
	 * round trip that window growth needs. */
	if (!table_init(&s->streams)) {
		free(s);
		return NULL;
	}
	return s;
}

void yamux_free(struct yamux_session *s)
{
	struct stream_table *t;

	if (!s)
		return;
	t = &s->streams;
	s->freeing = true;
	/* Every call into the session is a no-op now, so the table holds
	 * still while the application hears of each stream. */
	for (uint32_t i = 0; i <= table_mask(t); i++)
		if (t->slot[i] && s->ev.on_closed)
			s->ev.on_closed(s->user, t->slot[i]->id, t->slot[i]->user);
	for (uint32_t i = 0; i <= table_mask(t); i++)
		free(t->slot[i]);
	free(t->slot);
	free(s->out.buf);
	free(s);
}

enum yamux_error yamux_error(const struct yamux_session *s)
{
	return s->error;
}

uint64_t yamux_rtt_ms(const struct yamux_session *s)
{
	return s->rtt_ms;
}

/* Output */

size_t yamux_output_peek(const struct yamux_session *s, const uint8_t **p)
{
	const struct out_queue *q = &s->out;

	if (q->len == 0) {
		*p = NULL;
		return 0;
	}
	*p = q->buf + q->head;
	return min_size(q->len, q->size - q->head);
}

size_t yamux_output_pending(const struct yamux_session *s)
{
	return s->out.len;
}

void yamux_output_consume(struct yamux_session *s, size_t n)
{
	struct out_queue *q = &s->out;

	n = min_size(n, q->len);
	q->head += n;
	if (q->head >= q->size)
		q->head -= q->size;
	q->len -= n;
	if (q->len == 0)
		q->head = 0;
	if (s->queue_blocked > 0 && queue_has_room(s) && !s->freeing &&
	    s->error == YAMUX_OK)
		wake_queue_blocked(s);
}

/* Streams, from the application */

uint32_t yamux_open(struct yamux_session *s)
{
	uint32_t id = s->next_id;
	struct yamux_stream *st;

	if (s->error != YAMUX_OK || s->freeing || s->local_goaway ||
	    s->remote_goaway || id >= UINT32_MAX - 1 ||
	    s->streams.count >= s->cfg.max_streams ||
	    s->pending_opens >= s->cfg.max_pending_opens ||
	    s->out.len + YAMUX_HEADER_LEN > s->cfg.max_output)
		return 0;
	st = stream_new(s, id, true);
	if (!st)
		return 0;
	/* As hashicorp does: a window update with SYN, its delta what
	 * initial_window adds to the protocol's 256 KiB. */
	if (!queue_control(s, YAMUX_WINDOW_UPDATE, YAMUX_SYN, id,
			   s->cfg.initial_window - YAMUX_PROTOCOL_WINDOW)) {
		stream_release(s, st, RELEASE_REFUSED);
		return 0;
	}
	s->next_id += 2;
	return id;
}

size_t yamux_writable(const struct yamux_session *s, uint32_t id)
{
	const struct yamux_stream *st = app_stream(s, id);

	if (!st || st->local_fin)
		return 0;
	return min_size(st->send_window, data_room(s));
}

size_t yamux_write(struct yamux_session *s, uint32_t id, const uint8_t *p,
		   size_t n)
{
	struct yamux_stream *st = app_stream(s, id);
	size_t take;

	if (!st || st->local_fin)
		return 0;
	take = min_size(n, min_size(st->send_window, data_room(s)));
	if (take > 0 && out_reserve(&s->out, YAMUX_HEADER_LEN + take)) {
		/* The one copy of the data: into the queue, behind its
		 * header. */
		put_header(&s->out, YAMUX_DATA, 0, id, (uint32_t)take);
		out_put(&s->out, p, take);
		st->send_window -= (uint32_t)take;
	} else {
		take = 0;
	}
	if (take < n)
		block(s, st);
	return take;
}

void yamux_consumed(struct yamux_session *s, uint32_t id, size_t n,
		    uint64_t now_ms)
{
	struct yamux_stream *st = app_stream(s, id);

	if (!st)
		return;
	advance_clock(s, now_ms);
	st->unconsumed -= (uint32_t)min_size(n, st->unconsumed);
	credit_window(s, st);
}

void yamux_close(struct yamux_session *s, uint32_t id)
{
	struct yamux_stream *st = app_stream(s, id);

	if (!st || st->local_fin)
		return;
	if (!queue_control(s, YAMUX_WINDOW_UPDATE, YAMUX_FIN, id, 0))
		return;
	st->local_fin = true;
	unblock(s, st);
	if (st->remote_fin)
		stream_release(s, st, RELEASE_CLOSED);
}

void yamux_reset(struct yamux_session *s, uint32_t id)
{
	struct yamux_stream *st = app_stream(s, id);

	if (!st)
		return;
	queue_control(s, YAMUX_WINDOW_UPDATE, YAMUX_RST, id, 0);
	stream_release(s, st, RELEASE_CLOSED);
}

void yamux_goaway(struct yamux_session *s, enum yamux_goaway_code code)
{
	if (s->error != YAMUX_OK || s->freeing || s->local_goaway)
		return;
	if (queue_control(s, YAMUX_GO_AWAY, 0, 0, code))
		s->local_goaway = true;
}

void yamux_set_stream_user(struct yamux_session *s, uint32_t id, void *p)
{
	struct yamux_stream *st = stream_find(s, id);

	if (st)
		st->user = p;
}

void *yamux_stream_user(const struct yamux_session *s, uint32_t id)
{
	const struct yamux_stream *st = stream_find(s, id);

	return st ? st->user : NULL;
}
