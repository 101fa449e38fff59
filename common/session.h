/*
 * An established tunnel: the Noise transport and the yamux session over it,
 * joined sans-I/O. TCP bytes go in; yamux events come out through the
 * callbacks; what to send comes out as sealed, framed Noise messages.
 *
 *   TCP → tunnel_read → tunnel_open → yamux_input → events
 *   yamux output → gathered up to 65519 bytes → tunnel_seal → TCP
 *
 * A yamux frame may span Noise messages in either direction; neither layer
 * cares where the other's boundaries fall.
 */
#ifndef POSTERN_SESSION_H
#define POSTERN_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tunnel.h"
#include "yamux.h"

enum session_error {
	SESSION_OK = 0,
	SESSION_E_FRAME,	/* a length prefix out of range */
	SESSION_E_DECRYPT,	/* a transport message failed to verify */
	SESSION_E_YAMUX,	/* the yamux session ended: see yamux_error() */
	SESSION_E_MEMORY,
	SESSION_E_REFUSED,	/* the confirm callback said no */
};

struct session {
	struct tunnel_reader reader;
	struct tunnel_transport transport;
	struct yamux_session *mux;
	enum session_error error;
	bool confirmed;		/* a message from the peer decrypted */
	bool (*on_confirm)(void *user);
	void *confirm_user;
};

/* Take over t (it is wiped in the caller's copy) and start yamux. */
struct session *session_new(struct tunnel_transport *t,
			    const struct yamux_config *cfg,
			    const struct yamux_events *events, void *user);
void session_free(struct session *s);

/* Called once, when the peer's first transport message has decrypted and
 * before yamux sees any of it: for a responder, the first proof that the
 * initiator holds the PSK and the session keys (message 1 alone can be
 * replayed). Returning false ends the session with SESSION_E_REFUSED and
 * nothing of the message reaches yamux. */
void session_on_confirm(struct session *s, bool (*cb)(void *user), void *user);

/* Bytes read from TCP. SESSION_OK, or the error that ended the session
 * (the same one on every later call). */
enum session_error session_input(struct session *s, const uint8_t *p,
				 size_t len, uint64_t now_ms);

/* True while there is something to send. */
bool session_output_pending(const struct session *s);

/* Seal what yamux has queued into out (cap bytes, at least
 * TUNNEL_OVERHEAD + 1): whole framed messages only. Returns the bytes
 * written; 0 when nothing is queued. */
size_t session_output(struct session *s, uint8_t *out, size_t cap);

const char *session_strerror(const struct session *s);

/* What the libuv layer needs of yamux, so that it talks to the session
 * alone. Each is the yamux call of the same name (yamux.h). */
uint32_t session_open(struct session *s);
size_t session_write(struct session *s, uint32_t id, const uint8_t *p, size_t n);
void session_consumed(struct session *s, uint32_t id, size_t n, uint64_t now_ms);
void session_close_stream(struct session *s, uint32_t id);
void session_reset_stream(struct session *s, uint32_t id);
void session_set_stream_user(struct session *s, uint32_t id, void *p);
void *session_stream_user(const struct session *s, uint32_t id);
/* Go-away (first call only): the peer opens no more streams, nor do we. */
void session_goaway(struct session *s);

/* Keepalive and timeouts: run at session_next_tick() (UINT64_MAX: no
 * timer needed). SESSION_OK, or the error that ended the session. */
enum session_error session_tick(struct session *s, uint64_t now_ms);
uint64_t session_next_tick(const struct session *s);

/* SESSION_OK while nothing ended the session. */
enum session_error session_error(const struct session *s);

#endif
