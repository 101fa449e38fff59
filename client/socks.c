/*
 * postern socks [BIND:]PORT
 *
 * A SOCKS5 proxy (RFC 1928: no authentication, CONNECT; IPv4, IPv6 and
 * domain names) onto the servers of the configuration: the host of a
 * request is a server's name or its configured address, the port one on
 * that server's loopback. It is forward with the destination chosen per
 * connection: one pool per server, made at its first request, and the
 * same relay.
 *
 * Replies: 0x04 host unreachable for a host that is no server of ours
 * and for a tunnel that cannot be reached (knock, connect or handshake);
 * 0x02 not allowed for a port the server hello does not list (or the
 * server refuses); 0x05 refused when nothing listens there; 0x01 for the
 * rest. Each failure is one line on stderr.
 *
 * A connection gets SOCKS_REQUEST_MS to complete its greeting and request,
 * and at most SOCKS_MAX_PENDING connections wait for theirs: more are
 * closed as they come, so that idle sockets cannot pile up.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "context.h"
#include "local_listen.h"
#include "pool.h"
#include "socks_proto.h"
#include "tunnel.h"

#define SOCKS_REQUEST_MS 5000
#define SOCKS_MAX_PENDING 64

struct socks;

struct sconn {
	uv_tcp_t tcp;			/* first: close callbacks cast from it */
	uv_timer_t timer;		/* the request's deadline */
	uv_write_t wr_method, wr_reply;
	struct socks *sk;
	struct sconn *prev, *next;	/* while pending */
	struct pool_stream *ps;
	struct socks_parser parser;
	uint8_t rbuf[SOCKS_REQUEST_MAX];
	uint8_t method[2], reply[SOCKS_REPLY_LEN];
	int handles;			/* open: tcp, timer */
	bool pending, closing;
	char dest[300];			/* "HOST:PORT", for messages */
};

struct socks {
	uv_loop_t loop;
	struct client_ctx ctx;
	uv_tcp_t listener;
	struct sockaddr_storage sa;
	socklen_t sa_len;
	char name[ADDR_TEXT_MAX];
	struct pool **pools;		/* by server index, made when used */
	struct sconn *pending;		/* waiting for their request */
	unsigned int n_pending;
	bool full_logged;		/* once per time the cap is reached */
	uv_signal_t sigint, sigterm;
	bool listener_open, signals_open, stopping;
};

static void slog(const struct socks *sk, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void slog(const struct socks *sk, const char *fmt, ...)
{
	va_list ap;

	if (sk->stopping)
		return;
	fprintf(stderr, "%s: %s: ", PROG_NAME, sk->name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Connections. */

static void unpend(struct sconn *c)
{
	struct socks *sk = c->sk;

	if (!c->pending)
		return;
	c->pending = false;
	if (c->prev)
		c->prev->next = c->next;
	else
		sk->pending = c->next;
	if (c->next)
		c->next->prev = c->prev;
	sk->n_pending--;
	if (sk->n_pending < SOCKS_MAX_PENDING / 2)
		sk->full_logged = false;
}

static void conn_handle_closed(struct sconn *c)
{
	if (--c->handles > 0)
		return;
	if (c->ps)
		pool_stream_free(c->ps);
	free(c);
}

static void tcp_closed(uv_handle_t *h)
{
	conn_handle_closed((struct sconn *)h);
}

static void timer_closed(uv_handle_t *h)
{
	conn_handle_closed(h->data);
}

static void conn_close(struct sconn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	unpend(c);
	uv_close((uv_handle_t *)&c->tcp, tcp_closed);
	uv_close((uv_handle_t *)&c->timer, timer_closed);
}

static void closing_written(uv_write_t *w, int status)
{
	(void)status;
	conn_close(w->data);
}

static void method_written(uv_write_t *w, int status)
{
	if (status < 0)
		conn_close(w->data);
}

/* A failed write shows in the relay, which ends the connection. */
static void ok_written(uv_write_t *w, int status)
{
	(void)w;
	(void)status;
}

/* The final reply; a failure closes the connection once it is out. */
static void send_reply(struct sconn *c, uint8_t rep)
{
	uv_buf_t b = uv_buf_init((char *)c->reply, sizeof(c->reply));

	socks_reply_encode(c->reply, rep);
	c->wr_reply.data = c;
	if (uv_write(&c->wr_reply, (uv_stream_t *)&c->tcp, &b, 1,
		     rep == SOCKS_REP_OK ? ok_written : closing_written) < 0)
		conn_close(c);
}

static void on_ready(struct pool_stream *ps, struct uvt_stream *s)
{
	struct sconn *c = pool_stream_user(ps);

	send_reply(c, SOCKS_REP_OK);
	/* Written in order: the relay's bytes go after the reply. */
	uvt_stream_relay(s, (uv_stream_t *)&c->tcp, (uv_stream_t *)&c->tcp);
}

static uint8_t rep_for(const struct pool_stream *ps)
{
	switch (pool_stream_fail(ps)) {
	case POOL_FAIL_TUNNEL:
		return SOCKS_REP_HOST_UNREACHABLE;
	case POOL_FAIL_NOT_LISTED:
		return SOCKS_REP_NOT_ALLOWED;
	case POOL_FAIL_STATUS:
		switch (pool_stream_status(ps)) {
		case TUNNEL_STATUS_NOT_ALLOWED:
			return SOCKS_REP_NOT_ALLOWED;
		case TUNNEL_STATUS_REFUSED:
			return SOCKS_REP_REFUSED;
		case TUNNEL_STATUS_UNREACHABLE:
			return SOCKS_REP_HOST_UNREACHABLE;
		default:
			return SOCKS_REP_FAILURE;
		}
	default:
		return SOCKS_REP_FAILURE;
	}
}

static void on_failed(struct pool_stream *ps, const char *err)
{
	struct sconn *c = pool_stream_user(ps);

	slog(c->sk, "%s", err);
	if (c->sk->stopping)
		conn_close(c);
	else
		send_reply(c, rep_for(ps));
}

static void on_done(struct pool_stream *ps, const char *err)
{
	struct sconn *c = pool_stream_user(ps);

	if (err)
		slog(c->sk, "%s", err);
	conn_close(c);
}

static const struct pool_stream_hooks stream_hooks = {
	.ready = on_ready,
	.failed = on_failed,
	.done = on_done,
};

/* The request's host as an address: a literal of either family, or the
 * configured address in brackets. */
static int literal(const char *text, uint8_t addr[16])
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(text);

	if (inet_pton(AF_INET, text, addr) == 1)
		return AF_INET;
	if (n >= 2 && text[0] == '[' && text[n - 1] == ']' && n - 2 < sizeof(buf)) {
		memcpy(buf, text + 1, n - 2);
		buf[n - 2] = '\0';
		text = buf;
	}
	return inet_pton(AF_INET6, text, addr) == 1 ? AF_INET6 : 0;
}

/* A server's name, then a configured address as written (the first
 * server with it), then the same address however written. */
static const struct server_entry *find_server(const struct cli_config *cfg,
					      const struct socks_request *r)
{
	uint8_t want[16] = { 0 }, have[16];
	int family = r->atyp == SOCKS_ATYP_IPV4 ? AF_INET :
		     r->atyp == SOCKS_ATYP_IPV6 ? AF_INET6 : literal(r->host, want);

	if (r->atyp != SOCKS_ATYP_DOMAIN)
		memcpy(want, r->addr, sizeof(want));
	for (size_t i = 0; r->atyp == SOCKS_ATYP_DOMAIN && i < cfg->n_servers; i++)
		if (!strcmp(cfg->servers[i].name, r->host))
			return &cfg->servers[i];
	for (size_t i = 0; i < cfg->n_servers; i++)
		if (!strcasecmp(cfg->servers[i].address, r->host))
			return &cfg->servers[i];
	for (size_t i = 0; family && i < cfg->n_servers; i++)
		if (literal(cfg->servers[i].address, have) == family &&
		    !memcmp(have, want, family == AF_INET ? 4 : 16))
			return &cfg->servers[i];
	return NULL;
}

static struct pool *pool_for(struct socks *sk, const struct server_entry *s)
{
	size_t i = (size_t)(s - sk->ctx.cfg.servers);

	if (!sk->pools[i])
		sk->pools[i] = pool_new(&sk->loop, &sk->ctx, s, true);
	return sk->pools[i];
}

/* "HOST:PORT" with what does not print as '?': the host is the client's. */
static void set_dest(struct sconn *c, const struct socks_request *r)
{
	char host[sizeof(r->host)];
	size_t i;

	for (i = 0; r->host[i]; i++)
		host[i] = r->host[i] > ' ' && r->host[i] < 0x7f ? r->host[i] : '?';
	host[i] = '\0';
	snprintf(c->dest, sizeof(c->dest),
		 r->atyp == SOCKS_ATYP_IPV6 ? "[%s]:%u" : "%s:%u", host, r->port);
}

static void on_request(struct sconn *c)
{
	const struct socks_request *r = &c->parser.req;
	const struct server_entry *s = find_server(&c->sk->ctx.cfg, r);
	struct pool *p;

	set_dest(c, r);
	if (!s) {
		slog(c->sk, "%s: not a server of %s (by name or address): %s",
		     c->dest, c->sk->ctx.cfg.path,
		     socks_rep_str(SOCKS_REP_HOST_UNREACHABLE));
		send_reply(c, SOCKS_REP_HOST_UNREACHABLE);
		return;
	}
	p = pool_for(c->sk, s);
	c->ps = p ? pool_open(p, r->port, &stream_hooks, c) : NULL;
	if (!c->ps) {
		slog(c->sk, "%s: out of memory", c->dest);
		send_reply(c, SOCKS_REP_FAILURE);
	}
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct sconn *c = (struct sconn *)h;

	(void)suggested;
	/* Exactly what the parser needs: never a byte past the request. */
	*buf = uv_buf_init((char *)c->rbuf, (unsigned int)socks_want(&c->parser));
}

/* The method chosen, while the request is still to come. */
static bool send_method(struct sconn *c)
{
	uv_buf_t b = uv_buf_init((char *)c->method, sizeof(c->method));

	memcpy(c->method, c->parser.out, sizeof(c->method));
	c->wr_method.data = c;
	if (uv_write(&c->wr_method, (uv_stream_t *)&c->tcp, &b, 1,
		     method_written) < 0) {
		conn_close(c);
		return false;
	}
	return true;
}

/* The request is read, or refused: no more reading until the relay. */
static void request_over(struct sconn *c)
{
	uv_read_stop((uv_stream_t *)&c->tcp);
	uv_timer_stop(&c->timer);
	unpend(c);
}

static void conn_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct sconn *c = (struct sconn *)st;
	const uint8_t *in = (const uint8_t *)buf->base;
	size_t n = nread > 0 ? (size_t)nread : 0, used;

	if (nread < 0) {
		conn_close(c);	/* gone before its request: nothing to say */
		return;
	}
	while (n > 0) {
		switch (socks_input(&c->parser, in, n, &used)) {
		case SOCKS_MORE:
			return;
		case SOCKS_SEND:
			if (!send_method(c))
				return;
			break;
		case SOCKS_REQUEST:
			request_over(c);
			on_request(c);
			return;
		case SOCKS_REFUSE:
			request_over(c);
			slog(c->sk, "refused a request: %s", c->parser.err);
			if (c->parser.out_len == 0) {
				conn_close(c);
			} else {
				uv_buf_t b = uv_buf_init((char *)c->reply,
							 (unsigned int)c->parser.out_len);

				memcpy(c->reply, c->parser.out, c->parser.out_len);
				c->wr_reply.data = c;
				if (uv_write(&c->wr_reply, st, &b, 1, closing_written) < 0)
					conn_close(c);
			}
			return;
		}
		in += used;
		n -= used;
	}
}

static void conn_timeout(uv_timer_t *t)
{
	struct sconn *c = t->data;

	slog(c->sk, "no request within %d s: closed", SOCKS_REQUEST_MS / 1000);
	conn_close(c);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct socks *sk = server->data;
	struct sconn *c;

	if (status < 0) {
		slog(sk, "accept: %s", uv_strerror(status));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || uv_tcp_init(server->loop, &c->tcp) < 0) {
		free(c);
		return;
	}
	c->sk = sk;
	c->handles = 1;
	if (uv_timer_init(server->loop, &c->timer) == 0)
		c->handles++;
	c->timer.data = c;
	if (c->handles < 2 || uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		c->closing = true;
		uv_close((uv_handle_t *)&c->tcp, tcp_closed);
		if (c->handles == 2)
			uv_close((uv_handle_t *)&c->timer, timer_closed);
		return;
	}
	if (sk->n_pending >= SOCKS_MAX_PENDING) {
		if (!sk->full_logged)
			slog(sk, "%d connections wait for their request: "
			     "closing new ones", SOCKS_MAX_PENDING);
		sk->full_logged = true;
		conn_close(c);
		return;
	}
	c->pending = true;
	c->next = sk->pending;
	if (c->next)
		c->next->prev = c;
	sk->pending = c;
	sk->n_pending++;
	socks_parser_init(&c->parser);
	uv_tcp_nodelay(&c->tcp, 1);
	uv_timer_start(&c->timer, conn_timeout, SOCKS_REQUEST_MS, 0);
	if (uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read) < 0)
		conn_close(c);
}

/* Setting up and shutting down. */

static void stop(struct socks *sk)
{
	if (sk->stopping)
		return;
	sk->stopping = true;
	if (sk->listener_open)
		uv_close((uv_handle_t *)&sk->listener, NULL);
	if (sk->signals_open) {
		uv_close((uv_handle_t *)&sk->sigint, NULL);
		uv_close((uv_handle_t *)&sk->sigterm, NULL);
	}
	while (sk->pending)
		conn_close(sk->pending);
	/* Waiting streams fail, relays end with their tunnels. */
	for (size_t i = 0; i < sk->ctx.cfg.n_servers; i++)
		if (sk->pools[i])
			pool_close(sk->pools[i]);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)signum;
	stop(h->data);
}

static bool start(struct socks *sk)
{
	sk->listener_open = true;
	if (!local_listen(&sk->loop, &sk->listener, &sk->sa, on_connection, sk->name))
		return false;
	sk->listener.data = sk;
	printf("socks5 on %s\n", sk->name);
	fflush(stdout);
	uv_signal_init(&sk->loop, &sk->sigint);
	uv_signal_init(&sk->loop, &sk->sigterm);
	sk->signals_open = true;
	sk->sigint.data = sk->sigterm.data = sk;
	uv_signal_start(&sk->sigint, on_signal, SIGINT);
	uv_signal_start(&sk->sigterm, on_signal, SIGTERM);
	return true;
}

static int usage(void)
{
	fprintf(stderr, "Usage: %s socks [BIND:]PORT\n", PROG_NAME);
	return EXIT_USAGE;
}

static int run(struct socks *sk)
{
	int status = EXIT_OK;

	sk->pools = calloc(sk->ctx.cfg.n_servers ? sk->ctx.cfg.n_servers : 1,
			   sizeof(*sk->pools));
	if (!sk->pools) {
		fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		return EXIT_FAIL;
	}
	if (uv_loop_init(&sk->loop) < 0) {
		fprintf(stderr, "%s: cannot start an event loop\n", PROG_NAME);
		free(sk->pools);
		return EXIT_FAIL;
	}
	/* A peer that went away must be an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	if (!start(sk)) {
		status = EXIT_FAIL;
		stop(sk);
	}
	uv_run(&sk->loop, UV_RUN_DEFAULT);
	for (size_t i = 0; i < sk->ctx.cfg.n_servers; i++)
		pool_free(sk->pools[i]);
	uv_loop_close(&sk->loop);
	free(sk->pools);
	return status;
}

int socks_main(const struct cli_options *opt, int argc, char *argv[])
{
	static const struct option longopts[] = { { NULL, 0, NULL, 0 } };
	struct socks *sk;
	int status;

	optind = 1;
	if (getopt_long(argc, argv, "+", longopts, NULL) != -1 || argc - optind != 1)
		return usage();
	sk = calloc(1, sizeof(*sk));
	if (!sk) {
		fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		return EXIT_FAIL;
	}
	/* Bad syntax is a usage error, before any config is read. */
	if (!local_listen_parse(argv[optind], &sk->sa, &sk->sa_len)) {
		fprintf(stderr, "%s: socks: bad address '%s': want [BIND:]PORT\n",
			PROG_NAME, argv[optind]);
		free(sk);
		return EXIT_USAGE;
	}
	if (!client_ctx_load(&sk->ctx, opt)) {
		free(sk);
		return EXIT_FAIL;
	}
	status = run(sk);
	client_ctx_free(&sk->ctx);
	free(sk);
	return status;
}
