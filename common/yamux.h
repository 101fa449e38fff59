/*
 * yamux, the stream multiplexer of tunnel protocol v1: one session state
 * machine, byte-compatible with hashicorp/yamux (its spec.md).
 *
 * Sans-I/O. Bytes from the transport go in with yamux_input(), in pieces of
 * any size; frames to send collect in an output queue the caller drains with
 * yamux_output_peek() and yamux_output_consume(). Time is passed in (now_ms,
 * milliseconds from any monotonic origin). What happens is reported through
 * the callbacks of struct yamux_events.
 *
 * Callbacks may call back into the session (open, write, consumed, close,
 * reset, goaway, output_*), never yamux_input(), yamux_tick() or
 * yamux_free(). docs/YAMUX.md says what goes on the wire and when.
 */
#ifndef POSTERN_YAMUX_H
#define POSTERN_YAMUX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The wire format, as spec.md has it. */

#define YAMUX_HEADER_LEN 12
#define YAMUX_VERSION 0
/* The window each side assumes for a new stream, in each direction. */
#define YAMUX_PROTOCOL_WINDOW (256u * 1024)

enum yamux_type {
	YAMUX_DATA = 0,
	YAMUX_WINDOW_UPDATE = 1,
	YAMUX_PING = 2,
	YAMUX_GO_AWAY = 3,
};

enum yamux_flag {
	YAMUX_SYN = 0x1,
	YAMUX_ACK = 0x2,
	YAMUX_FIN = 0x4,
	YAMUX_RST = 0x8,
};

enum yamux_goaway_code {
	YAMUX_GOAWAY_NORMAL = 0,
	YAMUX_GOAWAY_PROTOCOL = 1,
	YAMUX_GOAWAY_INTERNAL = 2,
};

/* All fields big-endian on the wire, in this order. */
struct yamux_header {
	uint8_t version;
	uint8_t type;
	uint16_t flags;
	uint32_t stream_id;
	uint32_t length;	/* data: payload bytes; window update: delta;
				 * ping: opaque value; go-away: code */
};

void yamux_header_encode(uint8_t out[YAMUX_HEADER_LEN],
			 const struct yamux_header *h);
void yamux_header_decode(struct yamux_header *h,
			 const uint8_t in[YAMUX_HEADER_LEN]);

/* Why a session ended. The protocol errors, up to YAMUX_E_AFTER_FIN, make
 * the session queue GoAway(protocol error) before it stops. */
enum yamux_error {
	YAMUX_OK = 0,
	YAMUX_E_VERSION,	/* header version is not 0 */
	YAMUX_E_TYPE,		/* unknown frame type */
	YAMUX_E_TOO_LONG,	/* data frame longer than any window we grant */
	YAMUX_E_WINDOW,		/* data beyond the receive window granted */
	YAMUX_E_WINDOW_OVERFLOW,	/* window update past 2^32 − 1 */
	YAMUX_E_STREAM_ZERO,	/* data or window update on stream 0 */
	YAMUX_E_NOT_STREAM_ZERO,	/* ping or go-away on another stream */
	YAMUX_E_PARITY,		/* SYN for a stream id of our parity */
	YAMUX_E_DUPLICATE,	/* SYN for a stream that is open */
	YAMUX_E_AFTER_FIN,	/* data or a second FIN after the peer's FIN */
	YAMUX_E_KEEPALIVE,	/* no ping response within the timeout */
	YAMUX_E_NO_ANSWER,	/* an open waited, the peer silent, too long */
	YAMUX_E_GOAWAY,		/* the peer went away with an error code */
	YAMUX_E_OUTPUT,		/* output queue overflowed, or out of memory */
	YAMUX_ERRORS		/* count */
};

/* Accepts e and -e. */
const char *yamux_strerror(int e);

/* The session. */

struct yamux_config {
	bool is_client;			/* opens odd stream ids; server even */
	uint32_t initial_window;	/* receive window of a new stream;
					 * ≥ YAMUX_PROTOCOL_WINDOW */
	uint32_t max_window;		/* receive windows grow up to this */
	uint32_t max_streams;		/* open streams, both directions */
	uint32_t max_pending_opens;	/* our SYNs not yet ACKed */
	uint32_t keepalive_ms;		/* ping interval; 0: no keepalive */
	uint32_t keepalive_timeout_ms;	/* no answer within: session dead */
	uint32_t answer_timeout_ms;	/* an open of ours unanswered and the
					 * peer silent this long (or 4 round
					 * trips): session dead; 0: never */
	size_t max_output;		/* queued bytes beyond which writes and
					 * opens are refused */
};

/* 256 KiB initial window, 16 MiB max, 1024 streams, 256 pending opens,
 * ping every 20 s, dead after 30 s without an answer or 6 s of silence
 * while an open waits, 256 KiB output. */
struct yamux_config yamux_config_default(bool is_client);

/* Every callback is optional; user is yamux_new's. */
struct yamux_events {
	/* Incoming SYN. Return false to refuse it (RST); without on_open
	 * every open is refused. Until this returns true, only
	 * yamux_set_stream_user() applies to the new stream. */
	bool (*on_open)(void *user, uint32_t id);
	/* The peer ACKed a stream we opened. */
	void (*on_established)(void *user, uint32_t id);
	/* Stream bytes, as they arrive. Pass their count to yamux_consumed()
	 * once processed: that reopens the window. Without on_data, data is
	 * dropped and consumed at once. */
	void (*on_data)(void *user, uint32_t id, const uint8_t *p, size_t n);
	/* The peer half-closed: it sends no more. */
	void (*on_fin)(void *user, uint32_t id);
	/* The peer reset the stream, or refused our open. */
	void (*on_reset)(void *user, uint32_t id);
	/* A short yamux_write() may be retried: the window or the output
	 * queue reopened. */
	void (*on_writable)(void *user, uint32_t id);
	/* The peer sent go-away: no more opens from us. */
	void (*on_goaway)(void *user, uint32_t code);
	/* The stream is closed both ways, or reset, and its id is forgotten;
	 * stream_user is what yamux_set_stream_user() left. Fires once for
	 * every opened stream, from inside yamux_close(), yamux_reset() and
	 * yamux_free() too. */
	void (*on_closed)(void *user, uint32_t id, void *stream_user);
};

struct yamux_session;

/* NULL when the config is inconsistent (errno EINVAL) or memory is short. */
struct yamux_session *yamux_new(const struct yamux_config *cfg,
				const struct yamux_events *events, void *user);
/* Reports on_closed for each stream still open; calls from those
 * callbacks into the session do nothing. */
void yamux_free(struct yamux_session *s);

/* Feed transport bytes. 0, or -enum yamux_error once the session has ended
 * (the same error again on every later call). Feed at most 64 KiB at a
 * time, and stop reading the transport while yamux_output_pending() is
 * at or above max_output (see docs/YAMUX.md, "Output queue"). */
int yamux_input(struct yamux_session *s, const uint8_t *p, size_t len,
		uint64_t now_ms);

/* Keepalive: call at yamux_next_tick() or later. 0, or -YAMUX_E_* when the
 * session has ended. */
int yamux_tick(struct yamux_session *s, uint64_t now_ms);
/* When yamux_tick() next has something to do; UINT64_MAX: never. */
uint64_t yamux_next_tick(const struct yamux_session *s);

/* The output queue: frames in order, read in contiguous pieces. The
 * pointer stays valid until the next call into the session. */
size_t yamux_output_peek(const struct yamux_session *s, const uint8_t **p);
void yamux_output_consume(struct yamux_session *s, size_t n);
size_t yamux_output_pending(const struct yamux_session *s);

/* Open a stream (SYN now); its id, or 0 when refused: go-away either way,
 * a limit reached, ids exhausted, output queue full, session ended. */
uint32_t yamux_open(struct yamux_session *s);

/* Queue up to n bytes as one data frame; returns how many were taken: at
 * most the peer's window and the room left in the output queue. Short of
 * n (0 included), on_writable follows when more may be taken, unless the
 * stream ends first. 0 for an unknown or locally closed stream. */
size_t yamux_write(struct yamux_session *s, uint32_t id, const uint8_t *p,
		   size_t n);
/* What yamux_write() would take now. */
size_t yamux_writable(const struct yamux_session *s, uint32_t id);

/* The application is done with n more bytes of on_data: window credit.
 * now_ms matters: how fast windows go through the application decides
 * whether they grow. */
void yamux_consumed(struct yamux_session *s, uint32_t id, size_t n,
		    uint64_t now_ms);

/* Half-close (FIN): we send no more; data may still arrive. */
void yamux_close(struct yamux_session *s, uint32_t id);
/* Abort (RST) and forget the stream. */
void yamux_reset(struct yamux_session *s, uint32_t id);

/* Send go-away (first call only): incoming opens are refused from now on,
 * and yamux_open() refuses too. Streams already open go on. */
void yamux_goaway(struct yamux_session *s, enum yamux_goaway_code code);

/* The application's pointer for an open stream; NULL if unknown. */
void yamux_set_stream_user(struct yamux_session *s, uint32_t id, void *p);
void *yamux_stream_user(const struct yamux_session *s, uint32_t id);

/* 0, or the YAMUX_E_* that ended the session. */
enum yamux_error yamux_error(const struct yamux_session *s);
/* Smoothed ping round trip in ms; UINT64_MAX until one was measured. */
uint64_t yamux_rtt_ms(const struct yamux_session *s);

#endif
