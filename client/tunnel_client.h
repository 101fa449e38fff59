/*
 * One tunnel connection to one server, on a libuv loop: resolve the
 * server, reach its tunnel port (knocking only when it is closed), run the
 * Noise_IKpsk2 handshake, then hand the socket to a uvt_conn.
 *
 * Reaching the port: first one plain connect with a short timeout, since
 * the gate is often open already (an earlier knock, another tunnel). Only
 * when that fails, a knock, then fresh connect attempts at 10, 20, 40 …
 * 320 ms intervals rather than TCP's one-second SYN retransmit (the first
 * SYN may beat the server's set update), one re-knock after a second, and
 * "knock unanswered" after five: the strategy of postern knock --wait.
 */
#ifndef POSTERN_TUNNEL_CLIENT_H
#define POSTERN_TUNNEL_CLIENT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "context.h"
#include "tunnel.h"
#include "uv_tunnel.h"

/* The gate may be open: try first. A closed gate drops the SYN without a
 * word, so every millisecond here is added to each knocking setup; an open
 * gate on a LAN answers in well under this. A slower link knocks anyway,
 * which costs nothing but a log line on the server. */
#define TCLIENT_PROBE_MS 25
#define TCLIENT_KNOCK_WAIT_MS 5000	/* then knock, and give up after */
#define TCLIENT_REKNOCK_MS 1000		/* a lost knock is sent again once */
#define TCLIENT_ATTEMPT_MIN_MS 2
#define TCLIENT_ATTEMPT_MAX_MS 320
#define TCLIENT_HANDSHAKE_MS 10000
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
};

enum tclient_state {
	TCLIENT_RESOLVING,
	TCLIENT_PROBING,		/* connect without a knock */
	TCLIENT_KNOCKED,		/* fast connect attempts */
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
	struct uvt_conn conn;		/* conn.tcp: the tunnel socket */
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
	struct tclient_attempt *attempt;
	struct sockaddr_storage sa;	/* the tunnel port */
	socklen_t sa_len;
	uint64_t started_ms, knocked_ms, attempt_deadline_ms;
	unsigned int attempt_ms;
	bool knocked, reknocked, tcp_ours;
	bool tcp_closing;		/* conn.tcp closing: not yet reusable */
	unsigned int hs_retries;	/* handshakes closed before an answer */

	struct tunnel_handshake hs;
	struct tunnel_reader *reader;	/* during the handshake only */
	uv_write_t wreq;
	uint8_t msg1[TUNNEL_LEN_PREFIX + TUNNEL_MSG1_LEN];

	/* Once up. */
	struct tunnel_server_hello hello;
	int64_t skew_ms;		/* the server's clock minus ours */
	uint64_t connect_ms;		/* from start to the handshake's end */
};

/* Start connecting. tc must stay put until hooks->freed; ctx and s must
 * outlive it. False (nothing started, no hook called) only when the loop
 * refuses a timer. */
bool tclient_connect(struct tclient *tc, uv_loop_t *loop,
		     const struct client_ctx *ctx, const struct server_entry *s,
		     const struct tclient_hooks *hooks, void *user);

/* Give up: before up, silently (no failed); after, end the session (ended
 * with NULL). Not from inside a yamux callback: it frees the session. */
void tclient_close(struct tclient *tc);

/* True if the server's hello lists port. */
bool tclient_port_allowed(const struct tclient *tc, uint16_t port);

/* "22, 2222" (or "none"), for messages. */
void tclient_ports_text(const struct tclient *tc, char *buf, size_t len);

#endif
