/*
 * A connection's start, for both ends: the server reads message 1 and
 * answers, the client sends message 1 and reads message 2, over the
 * sans-I/O cores of common/tunnel.h. The bytes come from the one read
 * loop of uv_conn.c; what follows message 2 in the same read is the
 * session's. Which key is allowed, and what an answer means, the hooks
 * say.
 */
#include "uv_internal.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A connection that cannot start: closed and freed, no hook called. */
static void drop(struct uvt_conn *c)
{
	uvc_forget_hooks(c);
	uvc_end(c, NULL);
}

static struct uvt_conn *conn_new(uv_loop_t *loop, bool is_client,
				 enum tunnel_expect what,
				 const struct uvt_conn_hooks *hooks, void *user)
{
	struct uvt_conn *c = malloc(sizeof(*c));

	if (!c)
		return NULL;
	uvc_init(c, loop, is_client, hooks, user);
	/* malloc: the reader's buffer is written before it is read. */
	c->hs = malloc(sizeof(*c->hs));
	if (!c->hs) {
		drop(c);
		return NULL;
	}
	memset(&c->hs->hs, 0, sizeof(c->hs->hs));
	tunnel_reader_init(&c->hs->reader, what);
	return c;
}

static struct uvt_conn *server_start(struct uvt_conn *c)
{
	uv_tcp_nodelay(&c->tcp, 1);
	uv_tcp_keepalive(&c->tcp, 1, 60);
	if (!uvc_start_reading(c)) {
		drop(c);
		return NULL;
	}
	return c;
}

struct uvt_conn *uvt_conn_accept(uv_loop_t *loop, uv_stream_t *listener,
				 const struct uvt_conn_hooks *hooks, void *user)
{
	struct uvt_conn *c = conn_new(loop, false, TUNNEL_EXPECT_MSG1, hooks, user);

	if (!c)
		return NULL;
	if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
		drop(c);
		return NULL;
	}
	return server_start(c);
}

struct uvt_conn *uvt_conn_accept_fd(uv_loop_t *loop, int fd,
				    const struct uvt_conn_hooks *hooks, void *user)
{
	struct uvt_conn *c = conn_new(loop, false, TUNNEL_EXPECT_MSG1, hooks, user);

	if (!c || uv_tcp_open(&c->tcp, fd) != 0) {
		close(fd);
		if (c)
			drop(c);
		return NULL;
	}
	return server_start(c);
}

struct uvt_conn *uvt_conn_connect(uv_loop_t *loop, int fd,
				  const struct uvt_keys *keys,
				  const struct uvt_conn_hooks *hooks, void *user,
				  const char **err)
{
	struct uvt_conn *c = conn_new(loop, true, TUNNEL_EXPECT_MSG2, hooks, user);
	uint8_t msg1[TUNNEL_LEN_PREFIX + TUNNEL_MSG1_LEN];
	size_t len = sizeof(msg1);
	enum tunnel_error e;
	int rc;

	if (!c) {
		close(fd);
		*err = "out of memory";
		return NULL;
	}
	if ((rc = uv_tcp_open(&c->tcp, fd)) != 0) {
		close(fd);
		*err = uv_strerror(rc);
		drop(c);
		return NULL;
	}
	e = tunnel_client_init(&c->hs->hs, keys->key, keys->server_pub, keys->psk);
	if (e == TUNNEL_OK)
		e = tunnel_client_start(&c->hs->hs, msg1, &len);
	*err = e != TUNNEL_OK ? tunnel_strerror(e) : "cannot send message 1";
	if (e != TUNNEL_OK || !uvc_write(c, msg1, len) || !uvc_start_reading(c)) {
		drop(c);
		return NULL;
	}
	*err = NULL;
	return c;
}

/* The handshake ends here unless the session starts: hs_failed, then
 * closed (the hook may have closed it already). */
static void uvh_fail(struct uvt_conn *c, enum uvt_hs_error e, const char *detail)
{
	if (c->phase != UVC_HANDSHAKE)
		return;
	if (c->hooks->hs_failed)
		c->hooks->hs_failed(c, e, detail);
	uvc_end(c, NULL);
}

void uvh_read_error(struct uvt_conn *c, int err)
{
	const char *detail = err == UV_EOF ? NULL : uv_strerror(err);

	if (err != UV_EOF && err != UV_ECONNRESET)
		uvh_fail(c, UVT_HS_IO, detail);
	else if (tunnel_reader_idle(&c->hs->reader))
		uvh_fail(c, UVT_HS_CLOSED, detail);
	else
		uvh_fail(c, UVT_HS_CUT, detail);
}

/* Message 1 not taken: a peer that has closed. */
void uvh_write_error(struct uvt_conn *c, int err)
{
	uvh_fail(c, err == UV_ECONNRESET || err == UV_EPIPE ? UVT_HS_CLOSED : UVT_HS_IO,
		 uv_strerror(err));
}

static void start_session(struct uvt_conn *c, struct tunnel_transport *tr,
			  const struct yamux_config *cfg,
			  const uint8_t *rest, size_t rest_len)
{
	if (c->phase != UVC_HANDSHAKE) {	/* a hook closed it */
		tunnel_transport_free(tr);
		return;
	}
	if (!uvc_session_start(c, tr, cfg, rest, rest_len)) {
		tunnel_transport_free(tr);
		uvh_fail(c, UVT_HS_INTERNAL, "out of memory starting a session");
	}
}

/* Message 1: ask the hooks, answer, start the session. */
static void server_read(struct uvt_conn *c, const uint8_t *msg, size_t len,
			const uint8_t *rest, size_t rest_len)
{
	uint8_t pub[KEY_LEN], out[TUNNEL_LEN_PREFIX + TUNNEL_HANDSHAKE_MAX];
	size_t out_len = sizeof(out);
	struct uvt_keys k = { 0 };
	struct uvt_reply reply;
	struct tunnel_transport tr;

	c->hooks->keys(c, &k);
	if (tunnel_server_read_hello(&c->hs->hs, k.key, k.psk, k.ss, msg, len,
				     pub) != TUNNEL_OK) {
		uvh_fail(c, UVT_HS_AUTH, NULL);
		return;
	}
	memset(&reply, 0, sizeof(reply));
	reply.cfg = yamux_config_default(false);
	if (!c->hooks->hello(c, pub, &reply)) {
		uvc_end(c, NULL);
		return;
	}
	if (tunnel_server_accept(&c->hs->hs, reply.ports, reply.n_ports, realtime_ms(),
				 out, &out_len, &tr) != TUNNEL_OK) {
		uvh_fail(c, UVT_HS_INTERNAL, "cannot write message 2");
		return;
	}
	if (!uvc_write(c, out, out_len)) {
		tunnel_transport_free(&tr);
		uvh_fail(c, UVT_HS_INTERNAL, "cannot write message 2");
		return;
	}
	start_session(c, &tr, &reply.cfg, rest, rest_len);
}

/* Message 2: the server took us (as far as it can say before our first
 * transport message); the hooks hear its hello. */
static void client_read(struct uvt_conn *c, const uint8_t *msg, size_t len,
			const uint8_t *rest, size_t rest_len)
{
	struct yamux_config cfg = yamux_config_default(true);
	struct tunnel_server_hello hello;
	struct tunnel_transport tr;
	enum tunnel_error e;

	e = tunnel_client_finish(&c->hs->hs, msg, len, &hello, &tr);
	if (e != TUNNEL_OK) {
		uvh_fail(c, e == TUNNEL_E_HANDSHAKE ? UVT_HS_AUTH : UVT_HS_PROTO,
			 tunnel_strerror(e));
		return;
	}
	if (c->hooks->answered && !c->hooks->answered(c, &hello)) {
		tunnel_transport_free(&tr);
		uvc_end(c, NULL);
		return;
	}
	start_session(c, &tr, &cfg, rest, rest_len);
}

void uvh_input(struct uvt_conn *c, const uint8_t *p, size_t n)
{
	const uint8_t *msg;
	size_t len;
	enum tunnel_error e = tunnel_read(&c->hs->reader, &p, &n, &msg, &len);

	if (e == TUNNEL_AGAIN)
		return;
	if (e != TUNNEL_OK)
		uvh_fail(c, UVT_HS_PROTO, tunnel_strerror(e));
	else if (c->is_client)
		client_read(c, msg, len, p, n);
	else
		server_read(c, msg, len, p, n);
}
