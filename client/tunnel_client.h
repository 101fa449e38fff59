/*
 * One tunnel connection to one server, on a libuv loop: resolve the
 * server, reach its tunnel port (knocking only when it is closed), run the
 * Noise_IKpsk2 handshake, then hand the socket to a uvt_conn.
 *
 * Reaching the port is client/gate.c's strategy, shared with postern
 * knock --wait: a knock with the first connect in flight (or, when the
 * caller believes the gate open, a connect first), more connects in
 * bursts, re-knocks while it stays shut, and one message when
 * connect_timeout is up. From the socket connected on, the handshake
 * and the session are the uvt_conn's (common/uv_tunnel.h); what is
 * decided here is what an answer, or its absence, means.
 */
#ifndef POSTERN_TUNNEL_CLIENT_H
#define POSTERN_TUNNEL_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "context.h"
#include "gate.h"
#include "tunnel.h"
#include "uv_tunnel.h"

/* A gate believed open is given three connect times of the last success
 * plus this before we knock: a closed gate drops the SYN without a word.
 * A wrong guess costs that much and a log line on the server. */
#define TCLIENT_PROBE_MS 25
#define TCLIENT_HANDSHAKE_MS 10000	/* or 20 connect times: handshake_limit_ms() */
/* A server that closes before answering message 1 is most often busy (its
 * pending-handshake cap pushed us out): try again, 4 more times, after
 * 100, 200, 400, 800 ms, each drawn from [d/2, d] so that clients pushed
 * out together do not come back together. */
#define TCLIENT_HS_RETRIES 4
#define TCLIENT_HS_BACKOFF_MS 100
#define TCLIENT_MAX_SKEW_MS 30000	/* a server's default knock window */

struct tclient;

struct tclient_hooks {
	/* Handshake done: tc->hello is the server's, tc->conn runs. */
	void (*up)(struct tclient *tc);
	/* The tunnel never came up; err is one line ("web1: knock
	 * unanswered: …"). The handles are closing: freed follows. */
	void (*failed)(struct tclient *tc, const char *err);
	/* After up: the session ended (err NULL: a clean end). */
	void (*ended)(struct tclient *tc, const char *err);
	/* Every handle is closed: tc may be freed. */
	void (*freed)(struct tclient *tc);

	/* Optional, for postern doctor: each step as it happens. */
	void (*resolved)(struct tclient *tc);	/* tc->sa: the tunnel port */
	void (*reached)(struct tclient *tc);	/* connected; handshake next */
	/* Send each knock (to sa, the knock port) instead of knock_send(),
	 * for a caller that watches the socket for an ICMP answer. */
	bool (*knock)(struct tclient *tc, const struct sockaddr_storage *sa,
		      socklen_t len, char *err, size_t err_len);
};

/* Why the tunnel never came up, for a caller that explains it. */
enum tclient_failure {
	TCLIENT_FAIL_OTHER,
	TCLIENT_FAIL_RESOLVE,
	TCLIENT_FAIL_KNOCK,		/* the first knock could not be sent */
	TCLIENT_FAIL_REFUSED,		/* a reset from the tunnel port */
	TCLIENT_FAIL_UNANSWERED,	/* the port stayed shut */
	TCLIENT_FAIL_HS_CLOSED,		/* closed before message 2, each try */
	TCLIENT_FAIL_HS_AUTH,		/* message 2 did not authenticate */
	TCLIENT_FAIL_HS_PROTO,		/* not a postern tunnel's answer */
	TCLIENT_FAIL_HS_TIMEOUT,
};

enum tclient_state {
	TCLIENT_RESOLVING,
	TCLIENT_REACHING,		/* the gate machine: knocks, connects */
	TCLIENT_HANDSHAKE,
	TCLIENT_CONFIRMING,		/* message 2 read: until the server's
					 * first transport message, the server
					 * may still drop us as a pending one */
	TCLIENT_BACKOFF,		/* closed before an answer: retry */
	TCLIENT_UP,
	TCLIENT_DONE,			/* failed, ended or closed */
};

struct tclient_attempt;

struct tclient {
	struct uvt_conn *conn;		/* from the socket connected to freed */
	uv_loop_t *loop;
	const struct client_ctx *ctx;
	const struct server_entry *server;
	const struct tclient_hooks *hooks;
	void *user;
	enum tclient_state state;
	int refs;			/* our handles and requests in flight */
	bool up_reported, freed_reported;

	uv_getaddrinfo_t gai;
	uv_timer_t timer;
	struct gate *gate;		/* while reaching the port */
	struct tclient_attempt *attempts[GATE_ATTEMPTS];
	struct sockaddr_storage sa;	/* the tunnel port */
	socklen_t sa_len;
	uint64_t started_ms, attempt_deadline_ms;
	uint64_t probe_ms;		/* as given to tclient_connect */
	uint64_t gate_connect_ms;	/* the last connect's time */
	bool knocked;
	unsigned int knocks;		/* sent, in all */
	unsigned int hs_retries;	/* handshakes closed before an answer */
	enum tclient_failure failure;	/* when failed was called */
	int last_error;			/* UNANSWERED: the last connect's errno */

	/* Once up. */
	struct tunnel_server_hello hello;
	int64_t skew_ms;		/* the server's clock minus ours */
	uint64_t connect_ms;		/* from start to the handshake's end */
};

/* Start connecting. tc must stay put until hooks->freed; ctx and s must
 * outlive it. probe_ms: 0 to knock at once, else the gate is believed
 * open (struct gate_params). False (nothing started, no hook called) only
 * when the loop refuses a timer. */
bool tclient_connect(struct tclient *tc, uv_loop_t *loop,
		     const struct client_ctx *ctx, const struct server_entry *s,
		     uint64_t probe_ms, const struct tclient_hooks *hooks,
		     void *user);

/* Give up: before up, silently (no failed); after, end the session (ended
 * with NULL). Not from inside a yamux callback: it frees the session. */
void tclient_close(struct tclient *tc);

/* True if the server's hello lists port. */
bool tclient_port_allowed(const struct tclient *tc, uint16_t port);

/* "22, 2222" (or "none"), for messages. */
void tclient_ports_text(const struct tclient *tc, char *buf, size_t len);

#endif
