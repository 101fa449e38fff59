/* postern-tunneld: state shared by its listener, sessions and egress. */
#ifndef POSTERN_TUNNELD_H
#define POSTERN_TUNNELD_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "noise.h"
#include "secrets.h"
#include "uv_tunnel.h"

#define HANDSHAKE_TIMEOUT_MS 5000
#define MAX_PENDING_HANDSHAKES 64
#define EGRESS_TIMEOUT_MS 5000
#define DRAIN_TIMEOUT_MS 10000

struct tsession;

struct tunneld {
	uv_loop_t *loop;
	const char *config_path;
	struct server_config *cfg;
	struct secrets *keys;		/* the server's key pair and the PSK */
	uv_tcp_t *listeners;
	size_t n_listeners;
	struct tsession *sessions;	/* every accepted connection */
	unsigned int pending;		/* of them, still in the handshake */
	bool draining;
	/* counters for STATUS= */
	uint64_t accepted, refused, streams, bytes_in, bytes_out;
};

/* A TCP connection: first the handshake, then an established session. */
struct tsession {
	struct uvt_conn conn;		/* first: its tcp is the socket */
	struct tunneld *d;
	struct tsession *next, **pprev;
	bool established, closing;
	struct tunnel_reader *reader;	/* during the handshake only */
	struct tunnel_handshake hs;
	uv_timer_t timer;		/* handshake timeout */
	const struct client_entry *client;	/* once the key is known */
	uint8_t client_pub[KEY_LEN];
	char client_name[65];
	char src[64];
	uint64_t started_ms;
	unsigned int streams;
};

/* daemon/tunnel_session.c */
void tsession_accept(struct tunneld *d, uv_stream_t *listener);
void tsession_close(struct tsession *t, const char *why);

/* daemon/egress.c: a stream the client opened. */
struct uvt_stream *egress_accept(struct tsession *t, uint32_t id);

#endif
