/* postern-tunneld: state shared by its listener, sessions and egress. */
#ifndef POSTERN_TUNNELD_H
#define POSTERN_TUNNELD_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "dh_cache.h"
#include "log_throttle.h"
#include "noise.h"
#include "secrets.h"
#include "uv_tunnel.h"

#define EGRESS_TIMEOUT_MS 5000
#define DRAIN_TIMEOUT_MS 10000

struct tsession;

/* Counters for STATUS=: what the caps and timeouts did. */
struct tunneld_counts {
	uint64_t accepted;		/* sessions confirmed */
	uint64_t refused;		/* handshakes failed or refused */
	uint64_t unconfirmed;		/* message 2 sent, nothing valid after */
	uint64_t evicted_source;	/* oldest pending of a source, for a newer */
	uint64_t evicted_total;		/* oldest pending of all, for a newer */
	uint64_t sessions_refused;	/* max_sessions reached */
	uint64_t streams, streams_refused, stream_timeouts;
	uint64_t streams_failed;	/* answered with an error status */
	uint64_t bytes_in, bytes_out;
};

struct tunneld {
	uv_loop_t *loop;
	const char *config_path;
	struct server_config *cfg;
	struct secrets *keys;		/* the server's key pair and the PSK */
	struct dh_cache *dh;		/* DH(server, client) of cfg's clients */
	uv_tcp_t *listeners;
	size_t n_listeners;
	struct tsession *sessions;	/* every accepted connection */
	struct tsession *pending_head, *pending_tail;	/* oldest first */
	unsigned int pending;		/* in that list */
	unsigned int established;	/* confirmed sessions, not ended */
	unsigned int open_streams;	/* egress not yet freed, in all */
	bool draining;
	struct tunneld_counts n;
	/* The last session confirmed, for the status file: postern gate
	 * apply-nft takes one after its change as proof that admins still
	 * get in. */
	uint64_t last_session_at_ms;	/* Unix ms; 0: none yet */
	char last_session_client[65], last_session_src[64];
	/* As posternd's: tried again a minute later, said once. */
	uint64_t status_retry_at;	/* uv_now; 0: now */
	bool status_warned;
};

enum tsession_state {
	TS_HELLO,			/* waiting for message 1 */
	TS_UNCONFIRMED,			/* message 2 sent: waiting for a valid
					 * transport message */
	TS_ESTABLISHED,			/* the client proved its keys */
	TS_CLOSING,
};

/* stream_open log lines of a session, one subject per status (egress.c). */
#define TSESSION_STREAM_LOGS 5

/* The per-source key of the handshake caps: an IPv4 address, or the /64
 * of an IPv6 one (one host usually holds a whole /64). */
struct source_key {
	uint8_t family;
	uint8_t addr[8];
};

/* A TCP connection: first the handshake, then an established session. */
struct tsession {
	struct uvt_conn *conn;		/* until its freed hook */
	struct tunneld *d;
	struct tsession *next, **pprev;
	struct tsession *pending_next, *pending_prev;
	enum tsession_state state;
	bool confirmed;			/* reached TS_ESTABLISHED */
	bool quiet;			/* closed for a cap: counted, not logged */
	uv_timer_t timer;		/* handshake timeout, then expiry */
	uint8_t client_pub[KEY_LEN];
	char client_name[65];		/* claimed until TS_ESTABLISHED */
	int64_t expires_at;		/* of the client, once established */
	char src[64];
	struct source_key source;
	uint64_t started_ms;
	unsigned int streams;
	unsigned int open_streams;	/* egress not yet freed: t outlives them */
	bool conn_closed;		/* the uvt_conn freed, and the timer closed */
	bool streams_capped_logged, stream_timeout_logged;
	struct log_throttle stream_log;	/* over stream_log_slots */
	struct log_throttle_slot stream_log_slots[TSESSION_STREAM_LOGS];
};

/* daemon/tunnel_session.c */
void tsession_accept(struct tunneld *d, uv_stream_t *listener);
void tsession_close(struct tsession *t, const char *why);
/* Close a pending handshake for a newer one: counted, logged at most once
 * a minute per source and reason. */
void tsession_evict(struct tsession *t, const char *reason);
/* After a reload: drop a session whose client is gone or expired, re-arm
 * the expiry of the others. */
void tsession_recheck(struct tsession *t);
bool tsession_expired(const struct tsession *t);
/* The egress of one of t's streams is freed (t may be freed with it). */
void tsession_stream_freed(struct tsession *t);

/* daemon/pending.c: pending handshakes, capped per source and in total. */
void pending_admit(struct tunneld *d, struct tsession *t);
void pending_remove(struct tunneld *d, struct tsession *t);
void source_key_of(const struct sockaddr_storage *sa, struct source_key *k);

/* daemon/limit_log.c: at most one line a minute per reason and source,
 * with the count of those not logged. True: log now; *suppressed is how
 * many were not logged since the last line. */
bool limit_log_allow(const char *reason, const struct source_key *src,
		     uint64_t now_ms, uint64_t *suppressed);

/* daemon/egress.c: a stream the client opened. */
struct uvt_stream *egress_accept(struct tsession *t, uint32_t id);
/* Summary lines for the stream_open lines not written: those whose minute
 * is over, or all of them when the session is ending. */
void egress_flush_logs(struct tsession *t, bool ending);

#endif
