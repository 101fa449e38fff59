/*
 * postern forward [-L [BIND:]LPORT:NAME:RPORT]...
 *
 * Listens on local TCP ports and carries each accepted connection over
 * one stream to RPORT on server NAME's loopback. Without -L, the config's
 * forward { listen server port } blocks. One pool per server, shared by
 * its listeners; a tunnel that dies ends only the connections it carried.
 * Runs until SIGINT or SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "context.h"
#include "local_listen.h"
#include "pool.h"
#include "tunnel_client.h"

struct forward;

struct listener {
	uv_tcp_t tcp;
	struct forward *fwd;
	struct pool *pool;
	const struct server_entry *server;
	struct sockaddr_storage sa;
	socklen_t sa_len;
	uint16_t rport;
	bool open;			/* tcp initialised */
	bool unlisted_said;		/* rport not in a hello: said once */
	char name[ADDR_TEXT_MAX];	/* "127.0.0.1:2201", for messages */
};

/* One accepted connection. */
struct fwd_conn {
	uv_tcp_t tcp;			/* first: close callbacks cast from it */
	struct listener *l;
	struct pool_stream *ps;
};

struct forward {
	uv_loop_t loop;
	struct client_ctx ctx;
	struct listener *listeners;
	size_t n_listeners;
	struct pool **pools;		/* one per server, by server index */
	uv_signal_t sigint, sigterm;
	bool signals_open, stopping;
};

/* Connections. */

static void conn_closed(uv_handle_t *h)
{
	struct fwd_conn *fc = (struct fwd_conn *)h;

	if (fc->ps)
		pool_stream_free(fc->ps);
	free(fc);
}

static void conn_close(struct fwd_conn *fc)
{
	if (!uv_is_closing((uv_handle_t *)&fc->tcp))
		uv_close((uv_handle_t *)&fc->tcp, conn_closed);
}

static void conn_log(const struct fwd_conn *fc, const char *err)
{
	if (!fc->l->fwd->stopping)
		fprintf(stderr, "%s: %s: %s\n", PROG_NAME, fc->l->name, err);
}

static void on_ready(struct pool_stream *ps, struct uvt_stream *s)
{
	struct fwd_conn *fc = pool_stream_user(ps);

	uvt_stream_relay(s, (uv_stream_t *)&fc->tcp, (uv_stream_t *)&fc->tcp);
}

static void on_failed(struct pool_stream *ps, const char *err)
{
	struct fwd_conn *fc = pool_stream_user(ps);

	conn_log(fc, err);
	conn_close(fc);
}

static void on_done(struct pool_stream *ps, const char *err)
{
	struct fwd_conn *fc = pool_stream_user(ps);

	if (err)
		conn_log(fc, err);
	conn_close(fc);
}

static const struct pool_stream_hooks stream_hooks = {
	.ready = on_ready,
	.failed = on_failed,
	.done = on_done,
};

static void on_connection(uv_stream_t *server, int status)
{
	struct listener *l = (struct listener *)server;
	struct fwd_conn *fc;

	if (status < 0) {
		fprintf(stderr, "%s: %s: accept: %s\n", PROG_NAME, l->name,
			uv_strerror(status));
		return;
	}
	fc = calloc(1, sizeof(*fc));
	if (!fc || uv_tcp_init(server->loop, &fc->tcp) < 0) {
		free(fc);
		return;
	}
	fc->l = l;
	if (uv_accept(server, (uv_stream_t *)&fc->tcp) < 0) {
		conn_close(fc);
		return;
	}
	uv_tcp_nodelay(&fc->tcp, 1);
	/* Nothing is read from the connection until its stream is ready. */
	fc->ps = pool_open(l->pool, l->rport, &stream_hooks, fc);
	if (!fc->ps)
		conn_close(fc);
}

/* Setting up and shutting down. */

static void stop(struct forward *f)
{
	if (f->stopping)
		return;
	f->stopping = true;
	for (size_t i = 0; i < f->n_listeners; i++)
		if (f->listeners[i].open)
			uv_close((uv_handle_t *)&f->listeners[i].tcp, NULL);
	if (f->signals_open) {
		uv_close((uv_handle_t *)&f->sigint, NULL);
		uv_close((uv_handle_t *)&f->sigterm, NULL);
	}
	for (size_t i = 0; i < f->ctx.cfg.n_servers; i++)
		if (f->pools[i])
			pool_close(f->pools[i]);
}

static void on_signal(uv_signal_t *h, int signum)
{
	(void)signum;
	stop(h->data);
}

/*
 * [BIND:]LPORT:NAME:RPORT, split from the right (BIND may be "[v6]").
 * BIND: a numeric address, "localhost" or "*" (all IPv4 interfaces).
 */
static bool parse_spec(const char *spec, struct listener *l, const char **name)
{
	static char buf[512];	/* *name points into it */
	char *rport, *server;

	if (strlen(spec) >= sizeof(buf))
		return false;
	strcpy(buf, spec);
	rport = strrchr(buf, ':');
	if (!rport)
		return false;
	*rport++ = '\0';
	server = strrchr(buf, ':');
	if (!server)
		return false;
	*server++ = '\0';
	*name = server;
	if (!**name || !addr_parse_port(rport, &l->rport))
		return false;
	return local_listen_parse(buf, &l->sa, &l->sa_len);
}

/* A tunnel is up: a listener whose port its hello does not list would
 * fail every connection; say so now, once, rather than then. */
static void tunnel_up(void *user, const struct tclient *tc)
{
	struct forward *f = user;
	char ports[512];

	for (size_t i = 0; i < f->n_listeners; i++) {
		struct listener *l = &f->listeners[i];

		if (l->server != tc->server || l->unlisted_said ||
		    tclient_port_allowed(tc, l->rport))
			continue;
		l->unlisted_said = true;
		tclient_ports_text(tc, ports, sizeof(ports));
		fprintf(stderr, "%s: %s: port %u not allowed (server allows: %s): "
			"the forward from %s fails until the server's "
			"tunnel.egress lists it\n", PROG_NAME, tc->server->name,
			l->rport, ports, l->name);
	}
}

static struct pool *pool_for(struct forward *f, const struct server_entry *s)
{
	size_t i = (size_t)(s - f->ctx.cfg.servers);

	if (!f->pools[i]) {
		f->pools[i] = pool_new(&f->loop, &f->ctx, s, true);
		if (f->pools[i])
			pool_on_up(f->pools[i], tunnel_up, f);
	}
	return f->pools[i];
}

static bool start_listener(struct forward *f, struct listener *l)
{
	l->fwd = f;
	l->pool = pool_for(f, l->server);
	if (!l->pool) {
		fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		return false;
	}
	l->open = true;
	if (!local_listen(&f->loop, &l->tcp, &l->sa, on_connection, l->name))
		return false;
	printf("forwarding %s to %s port %u\n", l->name, l->server->name, l->rport);
	return true;
}

static bool start(struct forward *f)
{
	for (size_t i = 0; i < f->n_listeners; i++)
		if (!start_listener(f, &f->listeners[i]))
			return false;
	fflush(stdout);
	uv_signal_init(&f->loop, &f->sigint);
	uv_signal_init(&f->loop, &f->sigterm);
	f->signals_open = true;
	f->sigint.data = f->sigterm.data = f;
	uv_signal_start(&f->sigint, on_signal, SIGINT);
	uv_signal_start(&f->sigterm, on_signal, SIGTERM);
	/* Knock and shake hands now: errors show at once, and the first
	 * connection does not wait for them. */
	for (size_t i = 0; i < f->ctx.cfg.n_servers; i++)
		if (f->pools[i])
			pool_warm(f->pools[i]);
	return true;
}

static bool block_wanted(const struct forward_entry *e, const char *only)
{
	return !only || strcmp(e->server, only) == 0;
}

/* The listeners from -L, else from the config's forward blocks (only
 * those of server only, if given). */
static int collect(struct forward *f, char **specs, size_t n_specs,
		   const char *only)
{
	const struct cli_config *cfg = &f->ctx.cfg;
	size_t n = n_specs;

	if (only && !client_ctx_server(&f->ctx, only))
		return EXIT_FAIL;
	for (size_t i = 0; !n_specs && i < cfg->n_forwards; i++)
		n += block_wanted(&cfg->forwards[i], only);
	if (n == 0 && only) {
		fprintf(stderr, "%s: nothing to forward: %s has no forward blocks "
			"for %s\n", PROG_NAME, cfg->path, only);
		return EXIT_FAIL;
	}
	if (n == 0) {
		fprintf(stderr, "%s: nothing to forward: give -L [BIND:]LPORT:NAME:RPORT "
			"or add forward blocks to %s\n", PROG_NAME, cfg->path);
		return EXIT_FAIL;
	}
	f->listeners = calloc(n, sizeof(*f->listeners));
	f->pools = calloc(cfg->n_servers ? cfg->n_servers : 1, sizeof(*f->pools));
	if (!f->listeners || !f->pools) {
		fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		return EXIT_FAIL;
	}
	for (size_t i = 0; i < (n_specs ? n_specs : cfg->n_forwards); i++) {
		struct listener *l = &f->listeners[f->n_listeners];
		const char *name;

		if (n_specs) {
			if (!parse_spec(specs[i], l, &name)) {
				fprintf(stderr, "%s: forward: bad -L '%s': want "
					"[BIND:]LPORT:NAME:RPORT\n", PROG_NAME, specs[i]);
				return EXIT_USAGE;
			}
		} else {
			const struct forward_entry *e = &cfg->forwards[i];

			if (!block_wanted(e, only))
				continue;
			name = e->server;
			l->rport = e->port;
			addr_parse(e->listen, &l->sa, &l->sa_len);
		}
		l->server = client_ctx_server(&f->ctx, name);
		if (!l->server)
			return EXIT_FAIL;
		f->n_listeners++;
	}
	return EXIT_OK;
}

static int usage(void)
{
	fprintf(stderr, "Usage: %s forward [-L [BIND:]LPORT:NAME:RPORT]... | "
		"forward [NAME]\n", PROG_NAME);
	return EXIT_USAGE;
}

static int run_forward(struct forward *f, char **specs, size_t n_specs,
		       const char *only)
{
	int status = collect(f, specs, n_specs, only);

	if (status != EXIT_OK)
		return status;
	if (uv_loop_init(&f->loop) < 0) {
		fprintf(stderr, "%s: cannot start an event loop\n", PROG_NAME);
		return EXIT_FAIL;
	}
	/* A peer that went away must be an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	if (!start(f)) {
		status = EXIT_FAIL;
		stop(f);
	}
	uv_run(&f->loop, UV_RUN_DEFAULT);
	for (size_t i = 0; i < f->ctx.cfg.n_servers; i++)
		pool_free(f->pools[i]);
	uv_loop_close(&f->loop);
	return status;
}

int forward_main(const struct cli_options *opt, int argc, char *argv[])
{
	static const struct option longopts[] = { { NULL, 0, NULL, 0 } };
	struct forward *f;
	char **specs = calloc((size_t)argc + 1, sizeof(*specs));
	size_t n_specs = 0;
	int c, status;

	optind = 1;
	while (specs && (c = getopt_long(argc, argv, "+L:", longopts, NULL)) != -1) {
		if (c != 'L') {
			free(specs);
			return usage();
		}
		specs[n_specs++] = optarg;
	}
	if (!specs)
		return EXIT_FAIL;
	/* One server's forward blocks (postern-forward@NAME.service), or
	 * -L listeners: not both. */
	if (argc - optind > 1 || (argc - optind == 1 && n_specs)) {
		free(specs);
		return usage();
	}
	/* Bad syntax is a usage error, before any config is read. */
	for (size_t i = 0; i < n_specs; i++) {
		struct listener l;
		const char *name;

		if (!parse_spec(specs[i], &l, &name)) {
			fprintf(stderr, "%s: forward: bad -L '%s': want "
				"[BIND:]LPORT:NAME:RPORT\n", PROG_NAME, specs[i]);
			free(specs);
			return EXIT_USAGE;
		}
	}
	f = calloc(1, sizeof(*f));
	if (!f || !client_ctx_load(&f->ctx, opt)) {
		free(f);
		free(specs);
		return EXIT_FAIL;
	}
	status = run_forward(f, specs, n_specs, optind < argc ? argv[optind] : NULL);
	free(f->listeners);
	free(f->pools);
	client_ctx_free(&f->ctx);
	free(f);
	free(specs);
	return status;
}
