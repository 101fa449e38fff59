/* An established tunnel: Noise transport and yamux, joined. */
#include "session.h"

#include <stdlib.h>
#include <string.h>

struct session *session_new(struct tunnel_transport *t,
			    const struct yamux_config *cfg,
			    const struct yamux_events *events, void *user)
{
	/* malloc, not calloc: the reader's 64 KiB buffer is written before
	 * it is read, and untouched pages cost an idle session nothing. */
	struct session *s = malloc(sizeof(*s));

	if (!s)
		return NULL;
	s->mux = yamux_new(cfg, events, user);
	if (!s->mux) {
		free(s);
		return NULL;
	}
	s->transport = *t;
	wipe(t, sizeof(*t));
	s->error = SESSION_OK;
	s->confirmed = false;
	s->on_confirm = NULL;
	s->confirm_user = NULL;
	tunnel_reader_init(&s->reader, TUNNEL_EXPECT_TRANSPORT);
	return s;
}

void session_free(struct session *s)
{
	if (!s)
		return;
	yamux_free(s->mux);
	tunnel_transport_free(&s->transport);
	wipe(s, sizeof(*s));
	free(s);
}

void session_on_confirm(struct session *s, bool (*cb)(void *user), void *user)
{
	s->on_confirm = cb;
	s->confirm_user = user;
}

/* The first message that decrypts: ask before yamux acts on it. */
static bool confirm(struct session *s)
{
	if (s->confirmed)
		return true;
	s->confirmed = true;
	return !s->on_confirm || s->on_confirm(s->confirm_user);
}

enum session_error session_input(struct session *s, const uint8_t *p,
				 size_t len, uint64_t now_ms)
{
	while (s->error == SESSION_OK && len > 0) {
		const uint8_t *msg;
		size_t msg_len, plain_len;
		enum tunnel_error e = tunnel_read(&s->reader, &p, &len, &msg, &msg_len);

		if (e == TUNNEL_AGAIN)
			break;
		if (e != TUNNEL_OK) {
			s->error = SESSION_E_FRAME;
			break;
		}
		/* Decrypt in place when the message sits in the reader's own
		 * buffer; a message that arrived whole in p cannot be
		 * written to, so it goes to the buffer instead. */
		if (tunnel_open(&s->transport, msg, msg_len, s->reader.buf,
				&plain_len) != TUNNEL_OK) {
			s->error = SESSION_E_DECRYPT;
			break;
		}
		if (!confirm(s)) {
			s->error = SESSION_E_REFUSED;
			break;
		}
		if (yamux_input(s->mux, s->reader.buf, plain_len, now_ms) < 0)
			s->error = SESSION_E_YAMUX;
	}
	return s->error;
}

bool session_output_pending(const struct session *s)
{
	return yamux_output_pending(s->mux) > 0;
}

/* When the queue's first contiguous piece holds all the message will
 * take, seal it from there: the cipher's write is the only copy. False
 * when the message must be gathered instead; else *n is what it sealed,
 * 0 if the seal failed (s->error says so). */
static bool seal_in_one_piece(struct session *s, uint8_t *msg, size_t room,
			      size_t *n)
{
	const uint8_t *q;
	size_t avail = yamux_output_peek(s->mux, &q);
	size_t want = yamux_output_pending(s->mux);

	if (want > room)
		want = room;
	if (avail < want)
		return false;
	if (tunnel_seal(&s->transport, q, want, msg) != TUNNEL_OK) {
		s->error = SESSION_E_DECRYPT;
		*n = 0;
		return true;
	}
	yamux_output_consume(s->mux, want);
	*n = want;
	return true;
}

size_t session_output(struct session *s, uint8_t *out, size_t cap)
{
	size_t written = 0;

	while (cap - written > TUNNEL_OVERHEAD && yamux_output_pending(s->mux)) {
		uint8_t *msg = out + written;
		uint8_t *plain = msg + TUNNEL_LEN_PREFIX;
		size_t room = cap - written - TUNNEL_OVERHEAD, n = 0;

		if (room > TUNNEL_MAX_PLAIN)
			room = TUNNEL_MAX_PLAIN;
		if (seal_in_one_piece(s, msg, room, &n)) {
			if (n == 0)
				break;
			written += n + TUNNEL_OVERHEAD;
			continue;
		}
		/* Gather queued frames, in whatever pieces the queue has,
		 * into one Noise message: few large messages, not one per
		 * yamux frame. */
		while (n < room) {
			const uint8_t *q;
			size_t avail = yamux_output_peek(s->mux, &q);

			if (avail == 0)
				break;
			if (avail > room - n)
				avail = room - n;
			memcpy(plain + n, q, avail);
			yamux_output_consume(s->mux, avail);
			n += avail;
		}
		if (tunnel_seal(&s->transport, plain, n, msg) != TUNNEL_OK) {
			s->error = SESSION_E_DECRYPT;
			break;
		}
		written += n + TUNNEL_OVERHEAD;
	}
	return written;
}

const char *session_strerror(const struct session *s)
{
	switch (s->error) {
	case SESSION_OK:	return "no error";
	case SESSION_E_FRAME:	return "malformed frame";
	case SESSION_E_DECRYPT:	return "a message failed to authenticate";
	case SESSION_E_YAMUX:	return yamux_strerror(yamux_error(s->mux));
	case SESSION_E_MEMORY:	return "out of memory";
	case SESSION_E_REFUSED:	return "refused";
	}
	return "unknown error";
}

uint32_t session_open(struct session *s)
{
	return s->error == SESSION_OK ? yamux_open(s->mux) : 0;
}

size_t session_write(struct session *s, uint32_t id, const uint8_t *p, size_t n)
{
	return yamux_write(s->mux, id, p, n);
}

void session_consumed(struct session *s, uint32_t id, size_t n, uint64_t now_ms)
{
	yamux_consumed(s->mux, id, n, now_ms);
}

void session_close_stream(struct session *s, uint32_t id)
{
	yamux_close(s->mux, id);
}

void session_reset_stream(struct session *s, uint32_t id)
{
	yamux_reset(s->mux, id);
}

void session_set_stream_user(struct session *s, uint32_t id, void *p)
{
	yamux_set_stream_user(s->mux, id, p);
}

void *session_stream_user(const struct session *s, uint32_t id)
{
	return yamux_stream_user(s->mux, id);
}

void session_goaway(struct session *s)
{
	yamux_goaway(s->mux, YAMUX_GOAWAY_NORMAL);
}

enum session_error session_tick(struct session *s, uint64_t now_ms)
{
	if (s->error == SESSION_OK && yamux_tick(s->mux, now_ms) < 0)
		s->error = SESSION_E_YAMUX;
	return s->error;
}

uint64_t session_next_tick(const struct session *s)
{
	return yamux_next_tick(s->mux);
}

enum session_error session_error(const struct session *s)
{
	if (s->error == SESSION_OK && yamux_error(s->mux) != YAMUX_OK)
		return SESSION_E_YAMUX;
	return s->error;
}
