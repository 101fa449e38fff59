/*
 * Inside postern_uv only: the structs uv_tunnel.h keeps opaque, and what
 * its files call of each other.
 */
#ifndef POSTERN_UV_INTERNAL_H
#define POSTERN_UV_INTERNAL_H

#include "session.h"
#include "uv_tunnel.h"

#define UVT_READ_SIZE 65536
#define UVT_MAX_INFLIGHT (1u << 20)	/* sealed bytes queued on the TCP socket */

enum uvc_phase {
	UVC_HANDSHAKE,		/* messages 1 and 2 (uv_handshake.c) */
	UVC_SESSION,		/* the session runs (uv_conn.c) */
	UVC_ENDED,		/* handles closing, then freed */
};

/* The handshake's state, freed when the session starts. */
struct uvc_handshake {
	struct tunnel_reader reader;
	struct tunnel_handshake hs;
};

struct uvt_conn {
	uv_tcp_t tcp;
	uv_timer_t tick;
	enum uvc_phase phase;
	bool is_client;
	struct uvc_handshake *hs;	/* UVC_HANDSHAKE only */
	struct session *sess;		/* UVC_SESSION only */
	const struct uvt_conn_hooks *hooks;
	void *user;
	size_t inflight;		/* bytes in uv_write requests */
	uint64_t bytes_in, bytes_out;	/* on the TCP connection */
	bool reading;
	bool authenticated;		/* the peer proved its keys */
	bool goaway;			/* the peer sent go-away: no new streams */
	bool failing;			/* sending our go-away, then closing */
	const char *end_error;
	bool flushing;			/* in uvc_flush: no nesting */
	int handles_open;
};

/*
 * A stream's life. Every change goes through uvs_step() (uv_stream.c):
 *
 *   OPEN ──fin sent──▶ FIN_SENT ──peer fin──▶ CLOSED
 *   OPEN ──peer fin──▶ PEER_FIN ──fin sent──▶ CLOSED
 *   OPEN, FIN_SENT, PEER_FIN ──uvt_stream_reset──▶ RESET
 *   OPEN, FIN_SENT, PEER_FIN ──the peer reset or refused it──▶ DROPPED
 *   OPEN, FIN_SENT, PEER_FIN ──the tunnel ended──▶ LOST
 *
 * yamux forgets a stream as it leaves the first three: from there
 * on s->conn is NULL and nothing goes to the session.
 */
enum uvs_state {
	UVS_OPEN,
	UVS_FIN_SENT,
	UVS_PEER_FIN,
	UVS_CLOSED,
	UVS_RESET,
	UVS_DROPPED,
	UVS_LOST,
};

enum uvs_event {
	UVS_EV_FIN_SENT,
	UVS_EV_PEER_FIN,
	UVS_EV_RESET,
	UVS_EV_FORGOTTEN,	/* yamux let go of it */
	UVS_EV_LOST,
};

struct uvt_pending;

struct uvt_stream {
	struct uvt_conn *conn;		/* NULL once the session forgot it */
	uint32_t id;
	enum uvs_state state;
	const struct uvt_stream_hooks *hooks;
	void *user;
	uv_stream_t *in, *out;		/* local ends, once relaying */
	/* tunnel → local */
	struct uvt_pending *queue, **queue_tail;	/* before the relay */
	size_t out_inflight;		/* in local writes */
	bool out_shut;			/* the peer's FIN passed on to out */
	/* local → tunnel: the preamble first (it may have to wait for room
	 * in the output queue like any data), then what the relay reads */
	uint8_t pre[16];
	size_t pre_len;
	bool fin_wanted;		/* FIN once what is kept has gone */
	bool in_reading;
	uint8_t *rbuf;
	size_t r_off, r_len;		/* what the window did not take yet */
	bool reported;			/* done or failed called */
};

/* uv_conn.c */
void uvc_init(struct uvt_conn *c, uv_loop_t *loop, bool is_client,
	      const struct uvt_conn_hooks *hooks, void *user);
bool uvc_start_reading(struct uvt_conn *c);
bool uvc_write(struct uvt_conn *c, const uint8_t *p, size_t n);
void uvc_flush(struct uvt_conn *c);
void uvc_end(struct uvt_conn *c, const char *error);
void uvc_forget_hooks(struct uvt_conn *c);
bool uvc_session_start(struct uvt_conn *c, struct tunnel_transport *t,
		       const struct yamux_config *cfg,
		       const uint8_t *early, size_t early_len);

/* uv_handshake.c: bytes read, or a write failed, during UVC_HANDSHAKE. */
void uvh_input(struct uvt_conn *c, const uint8_t *p, size_t n);
void uvh_read_error(struct uvt_conn *c, int err);
void uvh_write_error(struct uvt_conn *c, int err);

/* uv_stream.c: yamux's events about a stream, from uv_conn.c. */
void uvs_event_data(struct uvt_stream *s, const uint8_t *p, size_t n);
void uvs_event_fin(struct uvt_stream *s);
void uvs_event_reset(struct uvt_stream *s);
void uvs_event_writable(struct uvt_stream *s);
void uvs_event_closed(struct uvt_stream *s, bool conn_ended);

#endif
