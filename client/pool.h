/*
 * A small pool of tunnel connections to one server, and the streams
 * opened over them.
 *
 * A new stream goes to the live connection carrying the fewest streams.
 * Without one, the request waits while a connection comes up (a knock if
 * the gate is closed). Another connection is added, up to POOL_MAX_CONNS,
 * only when every live one already carries POOL_SPREAD streams, so bulk
 * copies do not queue keystrokes behind them. A connection that dies is
 * dropped: its streams end, and the next request brings a new one. Failed
 * connects back off exponentially with jitter (100 ms doubling to 10 s).
 * A new connection knocks with its first connect, unless a knock of ours
 * opened the gate less than POOL_OPEN_BELIEVED_MS ago: then it connects
 * first and knocks only if that goes unanswered (client/gate.h).
 */
#ifndef POSTERN_POOL_H
#define POSTERN_POOL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "context.h"
#include "uv_tunnel.h"

#define POOL_MAX_CONNS 2
#define POOL_SPREAD 8
#define POOL_BACKOFF_MIN_MS 100
#define POOL_BACKOFF_MAX_MS 10000
/* Under the server's default open_seconds (30), which we cannot know. */
#define POOL_OPEN_BELIEVED_MS 20000

struct pool;
struct pool_stream;

/* Exactly one of failed and done ends every stream; after it, close the
 * local handles and, once they are closed, call pool_stream_free(). */
struct pool_stream_hooks {
	/* The server connected the port: start uvt_stream_relay(s, …). */
	void (*ready)(struct pool_stream *ps, struct uvt_stream *s);
	/* No stream: err is one line ("web1: port 5432: connection
	 * refused", "web1: knock unanswered: …"). */
	void (*failed)(struct pool_stream *ps, const char *err);
	/* The relay is over: err is NULL when both sides ended it with a
	 * FIN, else what cut it short ("web1: port 22: tunnel lost: …"). */
	void (*done)(struct pool_stream *ps, const char *err);
	/* uvt_stream_hooks.out_ended, passed on (optional). */
	void (*out_ended)(struct pool_stream *ps, struct uvt_stream *s, int status);
};

/* log: report tunnels going up and down, and connects that fail with no
 * stream waiting, on stderr (for the long-running forward). */
struct pool *pool_new(uv_loop_t *loop, const struct client_ctx *ctx,
		      const struct server_entry *server, bool log);

/* Ask for a stream to port on the server's loopback. The answer comes
 * through hooks, never before this returns. NULL: out of memory. */
struct pool_stream *pool_open(struct pool *p, uint16_t port,
			      const struct pool_stream_hooks *hooks, void *user);
void *pool_stream_user(const struct pool_stream *ps);
void pool_stream_free(struct pool_stream *ps);

/* After failed: why, for a caller that answers in kind (socks). */
enum pool_fail {
	POOL_FAIL_TUNNEL,	/* no tunnel: knock, connect, handshake, closing */
	POOL_FAIL_NOT_LISTED,	/* the server hello does not list the port */
	POOL_FAIL_STATUS,	/* the server answered: pool_stream_status() */
	POOL_FAIL_LOST,		/* the stream or its tunnel ended unanswered */
};
enum pool_fail pool_stream_fail(const struct pool_stream *ps);
/* The server's status byte (TUNNEL_STATUS_*), after POOL_FAIL_STATUS. */
uint8_t pool_stream_status(const struct pool_stream *ps);

/* Called each time a tunnel comes up, before waiting streams go: tc's
 * hello is the server's (forward checks its ports against it). */
struct tclient;
typedef void pool_up_fn(void *user, const struct tclient *tc);
void pool_on_up(struct pool *p, pool_up_fn *fn, void *user);

/* Bring a connection up now, with nothing to carry yet: errors show at
 * once, and the first stream finds the tunnel ready. */
void pool_warm(struct pool *p);

/* End every connection and fail waiting requests. Callable from any
 * callback: the work is done on the next turn of the loop. */
void pool_close(struct pool *p);
/* Once the loop has run dry after pool_close. */
void pool_free(struct pool *p);

#endif
