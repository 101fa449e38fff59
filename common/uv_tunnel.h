/*
 * The libuv side of a tunnel, shared by postern-tunneld and the postern
 * client. A struct uvt_conn is one TCP connection from accept (or from a
 * socket the client connected) to close: the Noise_IKpsk2 handshake, read
 * in one loop over the sans-I/O cores of common/tunnel.h, then the session
 * (common/session.h) with its yamux streams relayed to local libuv
 * streams (a loopback socket, a forwarded connection, or stdin/stdout).
 * What either end decides (which client key is allowed, what to do when
 * the tunnel is up or ends) comes in through hooks; how bytes move is
 * here. Both structs are opaque.
 *
 *   uv_handshake.c  accept/connect, messages 1 and 2
 *   uv_conn.c       the TCP pump around the session, and its events
 *   uv_stream.c     one stream's relay and its life (enum uvs_state)
 *
 * This is the only I/O in common/, and it is a library of its own
 * (postern_uv): the protocol cores (postern_proto) never touch a socket.
 *
 * Backpressure, both ways, keeps memory bounded by the yamux windows:
 *   local → tunnel: a local read is written to yamux; what the peer's
 *     window does not take is kept (one read buffer) and local reading
 *     stops until the window reopens.
 *   tunnel → local: bytes are copied into a local write and credited back
 *     to the peer's window only once written.
 *   TCP: sealed output goes to uv_write; while too much is in flight the
 *     yamux output queue fills and writes to it come back short.
 */
#ifndef POSTERN_UV_TUNNEL_H
#define POSTERN_UV_TUNNEL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "tunnel.h"
#include "yamux.h"

struct uvt_conn;
struct uvt_stream;

/* The keys of a handshake: the client's names the server it expects
 * (server_pub); the server's has none. */
struct uvt_keys {
	const struct noise_keypair *key;
	const uint8_t *psk;
	const uint8_t *server_pub;
	const struct noise_ss_source *ss;	/* server: or NULL (noise.h) */
};

/* The server's answer to a message 1 it allows. */
struct uvt_reply {
	uint16_t ports[TUNNEL_MAX_PORTS];	/* the hello's list */
	size_t n_ports;
	struct yamux_config cfg;		/* of the session */
};

/* Why a handshake ended before its session started. */
enum uvt_hs_error {
	UVT_HS_CLOSED,		/* the peer closed between messages */
	UVT_HS_CUT,		/* ...in the middle of one */
	UVT_HS_IO,		/* a socket error */
	UVT_HS_PROTO,		/* not a postern handshake message */
	UVT_HS_AUTH,		/* the message did not authenticate */
	UVT_HS_INTERNAL,	/* out of memory, or a message not written */
};

struct uvt_conn_hooks {
	/* Server: the keys to read a message 1 with; they may change with
	 * a reload, so they are asked for when it arrives. */
	void (*keys)(struct uvt_conn *c, struct uvt_keys *k);
	/* Server: message 1 authenticated as far as IK's message 1 can
	 * (it can be replayed). Fill reply and return true to answer;
	 * false closes without a word (the hook logs why). */
	bool (*hello)(struct uvt_conn *c, const uint8_t client_pub[KEY_LEN],
		      struct uvt_reply *reply);
	/* Client: message 2 read; the session starts when this returns
	 * true (false closes it). */
	bool (*answered)(struct uvt_conn *c, const struct tunnel_server_hello *h);
	/* The handshake failed; detail may be NULL. freed follows. */
	void (*hs_failed)(struct uvt_conn *c, enum uvt_hs_error e, const char *detail);
	/* The first transport message from the peer decrypted, and yamux
	 * has seen none of it yet. For the responder, only now is the peer
	 * known to hold the PSK and the session keys: until then the
	 * connection has no keepalive timer and takes no stream. For the
	 * initiator, it says the responder took the session. Return false
	 * to end the session (ended follows, error "refused"); do not
	 * close c from here (optional). */
	bool (*authenticated)(struct uvt_conn *c);
	/* Incoming stream (server side). Return a stream from
	 * uvt_stream_new(), or NULL to refuse it. */
	struct uvt_stream *(*accept)(struct uvt_conn *c, uint32_t id);
	/* The session ended: error is NULL for a clean end (EOF or close).
	 * The connection is closing; freed follows. */
	void (*ended)(struct uvt_conn *c, const char *error);
	/* The connection's handles are closed: c is freed on return. */
	void (*freed)(struct uvt_conn *c);
};

/* Server: accept a connection from listener, or take fd (a connected
 * socket: tests). NULL when it cannot start (nothing to free, no hook
 * called). */
struct uvt_conn *uvt_conn_accept(uv_loop_t *loop, uv_stream_t *listener,
				 const struct uvt_conn_hooks *hooks, void *user);
struct uvt_conn *uvt_conn_accept_fd(uv_loop_t *loop, int fd,
				    const struct uvt_conn_hooks *hooks, void *user);

/* Client: fd is connected (and tuned); send message 1 and read message 2.
 * keys are used before this returns. NULL (fd closed, *err says why)
 * when it cannot start. */
struct uvt_conn *uvt_conn_connect(uv_loop_t *loop, int fd,
				  const struct uvt_keys *keys,
				  const struct uvt_conn_hooks *hooks, void *user,
				  const char **err);

void *uvt_conn_user(const struct uvt_conn *c);
/* The peer's address; false if the socket cannot say. */
bool uvt_conn_peer(const struct uvt_conn *c, struct sockaddr_storage *sa);
/* Ours. */
bool uvt_conn_local(const struct uvt_conn *c, struct sockaddr_storage *sa);
/* Bytes on the TCP connection, the handshake's included. */
void uvt_conn_bytes(const struct uvt_conn *c, uint64_t *in, uint64_t *out);
/* True while a new stream may be opened: the session runs, has no error,
 * and the peer has not sent go-away. */
bool uvt_conn_healthy(const struct uvt_conn *c);

/* Send go-away: no new streams either way, those open go on. */
void uvt_conn_goaway(struct uvt_conn *c);
/* End the session: go-away, flush, close. */
void uvt_conn_close(struct uvt_conn *c);
/* Close without a word (a handshake, or a peer not yet authenticated);
 * once the session runs, error goes to hooks->ended. Any number of
 * calls, until freed. */
void uvt_conn_abort(struct uvt_conn *c, const char *error);

struct uvt_stream_hooks {
	/* Stream bytes that arrive before uvt_stream_relay(): return how many
	 * the side's own preamble took (a request, a status byte); the rest
	 * is kept for the relay. */
	size_t (*preamble)(struct uvt_stream *s, const uint8_t *p, size_t n);
	/* The peer refused, reset, or the session ended before the relay. */
	void (*failed)(struct uvt_stream *s);
	/* The stream is over both ways and every local write has completed;
	 * or its session ended (uvt_stream_lost), whatever is still being
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

void *uvt_stream_user(const struct uvt_stream *s);
/* Closed cleanly: a FIN each way. */
bool uvt_stream_finished(const struct uvt_stream *s);
/* Reset, by either side or refused. */
bool uvt_stream_was_reset(const struct uvt_stream *s);
/* Its tunnel ended under it. */
bool uvt_stream_lost(const struct uvt_stream *s);
/* Reset or lost while relaying, before the peer's FIN was passed on: the
 * local end did not get the whole stream. */
bool uvt_stream_cut_short(const struct uvt_stream *s);
/* Still known to the session (not yet closed, reset or lost). */
bool uvt_stream_live(const struct uvt_stream *s);
bool uvt_stream_relaying(const struct uvt_stream *s);
/* Bytes in local writes not yet completed. */
size_t uvt_stream_out_inflight(const struct uvt_stream *s);

#endif
