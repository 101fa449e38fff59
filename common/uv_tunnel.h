/*
 * The libuv side of an established tunnel, shared by postern-tunneld and
 * the postern client: a TCP connection pumping a struct session, and yamux
 * streams relayed to local libuv streams (a loopback socket, a forwarded
 * connection, or stdin/stdout).
 *
 * This is the only I/O in common/, and it is a library of its own
 * (postern_uv): the protocol cores (postern_proto) never touch a socket.
 *
 * Backpressure, both ways, keeps memory bounded by the yamux windows:
 *   local → tunnel: a local read is written to yamux; what the peer's
 *     window does not take is kept (one read buffer) and local reading
 *     stops until the window reopens.
 *   tunnel → local: bytes are copied into a local write and credited back
 *     to the peer's window (yamux_consumed) only once written.
 *   TCP: sealed output goes to uv_write; while too much is in flight the
 *     yamux output queue fills and writes to it come back short.
 */
#ifndef POSTERN_UV_TUNNEL_H
#define POSTERN_UV_TUNNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "session.h"

#define UVT_READ_SIZE 65536
#define UVT_MAX_INFLIGHT (1u << 20)	/* sealed bytes queued on the TCP socket */

struct uvt_conn;
struct uvt_stream;

struct uvt_conn_hooks {
	/* The first transport message from the peer decrypted, and yamux
	 * has seen none of it yet. For the responder, only now is the peer
	 * known to hold the PSK and the session keys (IK's message 1 can be
	 * replayed by anyone who captured it): until then the connection
	 * has no keepalive timer and takes no stream. For the initiator, it
	 * says the responder took the session. Return false to end the
	 * session (ended follows, error "refused"); do not close c from
	 * here (optional). */
	bool (*authenticated)(struct uvt_conn *c);
	/* Incoming stream (server side). Return a stream from
	 * uvt_stream_new(), or NULL to refuse it. */
	struct uvt_stream *(*accept)(struct uvt_conn *c, uint32_t id);
	/* The session ended: error is NULL for a clean end (EOF or close).
	 * The connection is closing; free it in freed. */
	void (*ended)(struct uvt_conn *c, const char *error);
	/* The connection's handles are closed: free what holds it. */
	void (*freed)(struct uvt_conn *c);
};

struct uvt_conn {
	uv_tcp_t tcp;
	uv_timer_t tick;
	struct session *sess;
	const struct uvt_conn_hooks *hooks;
	void *user;
	size_t inflight;		/* bytes in uv_write requests */
	uint64_t bytes_in, bytes_out;	/* on the TCP connection */
	bool reading, ended;
	bool authenticated;		/* the peer proved its keys (above) */
	bool goaway;			/* the peer sent go-away: no new streams */
	bool failing;			/* sending our go-away, then closing */
	const char *end_error;
	bool flushing;			/* in uvt_conn_flush: no nesting */
	int handles_open;
};

struct uvt_stream_hooks {
	/* Stream bytes that arrive before uvt_stream_relay(): return how many
	 * the side's own preamble took (a request, a status byte); the rest
	 * is kept for the relay. */
	size_t (*preamble)(struct uvt_stream *s, const uint8_t *p, size_t n);
	/* The peer refused, reset, or the session ended before the relay. */
	void (*failed)(struct uvt_stream *s);
	/* The stream is over both ways and every local write has completed;
	 * or its session ended (conn_lost), whatever is still being
	 * written. Close the local handles now: a close cancels the writes
	 * in flight, and s stays valid until it completes (uvt_stream_free
	 * once they are closed). */
	void (*done)(struct uvt_stream *s);
	/* Client side: the peer accepted our open. */
	void (*established)(struct uvt_stream *s);
	/* The peer's FIN was passed on: everything written to out, then
	 * uv_shutdown(out) finished with status (optional). A pipe or a tty
	 * cannot half-close (status UV_ENOTSOCK): close out, if it is not
	 * also in, so that its reader sees the end. */
	void (*out_ended)(struct uvt_stream *s, int status);
};

struct uvt_pending;

struct uvt_stream {
	struct uvt_conn *conn;
	uint32_t id;
	const struct uvt_stream_hooks *hooks;
	void *user;
	uv_stream_t *in, *out;		/* local ends, once relaying */
	bool relaying;
	bool mux_closed;		/* yamux forgot the stream */
	bool conn_lost;			/* ...because its session ended */
	bool failed;
	/* tunnel → local */
	struct uvt_pending *queue, **queue_tail;	/* not yet written */
	size_t out_inflight;		/* in local writes */
	bool peer_fin, out_shut;
	/* local → tunnel: the preamble first (it may have to wait for room
	 * in the output queue like any data), then what the relay reads */
	uint8_t pre[16];
	size_t pre_len;
	bool close_after_pre;
	uint8_t *rbuf;
	size_t r_off, r_len;		/* what the window did not take yet */
	bool in_eof, fin_sent, in_reading;
	uint64_t bytes_up, bytes_down;
	bool done_called;
};

/* The one buffer every tunnel socket reads into. The loop runs one read
 * callback at a time and each consumes its bytes before returning, so one
 * buffer serves every connection: an idle session then holds no 64 KiB of
 * its own. */
uv_buf_t uvt_read_buf(void);

/* Wrap an accepted or connected TCP socket (already initialised as c->tcp
 * by the caller with uv_tcp_init) around an established session. The
 * initiator (cfg->is_client) has its peer authenticated by message 2; the
 * responder waits for the first transport message (hooks->authenticated). */
bool uvt_conn_start(struct uvt_conn *c, uv_loop_t *loop,
		    struct tunnel_transport *t, const struct yamux_config *cfg,
		    const struct uvt_conn_hooks *hooks, void *user,
		    const uint8_t *early, size_t early_len);

/* Bytes already read past the handshake go through here too. Flush sealed
 * output to the socket; call after any change to the session. */
void uvt_conn_flush(struct uvt_conn *c);

/* End the session: go-away, flush, close. */
void uvt_conn_close(struct uvt_conn *c);
/* Close without a word (a peer not yet authenticated); error goes to
 * hooks->ended. */
void uvt_conn_abort(struct uvt_conn *c, const char *error);

/* Client side: open a stream. NULL when the session refuses. */
struct uvt_stream *uvt_stream_open(struct uvt_conn *c,
				   const struct uvt_stream_hooks *hooks,
				   void *user);

/* Server side, from hooks->accept. */
struct uvt_stream *uvt_stream_new(struct uvt_conn *c, uint32_t id,
				  const struct uvt_stream_hooks *hooks,
				  void *user);

/* Write preamble bytes (a request, a status byte; 16 at most) into the
 * stream. They go out before anything the relay reads, and before a
 * uvt_stream_close() that follows; when the output queue is full they
 * wait for room. */
bool uvt_stream_send(struct uvt_stream *s, const uint8_t *p, size_t n);

/* Start relaying between the stream and local streams in (read) and out
 * (write); they may be the same socket. Kept bytes go out first. */
void uvt_stream_relay(struct uvt_stream *s, uv_stream_t *in, uv_stream_t *out);

/* Half-close towards the peer, or abort. */
void uvt_stream_close(struct uvt_stream *s);
void uvt_stream_reset(struct uvt_stream *s);

/* After hooks->done (or failed) and once the local handles are closed. */
void uvt_stream_free(struct uvt_stream *s);

uint64_t uvt_now_ms(uv_loop_t *loop);

#endif
