/*
 * postern knock NAME... | --all [--target ADDR] [--wait]
 *
 * Sends each server one knock. With --wait, proves each gate opened by
 * connecting to the server's tunnel port, and prints how long it took.
 * Connection attempts are repeated at short intervals rather than left to
 * TCP's one-second SYN retransmit: the first SYN may arrive a moment before
 * the server has added us to its set.
 */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ip_udp.h"
#include "knocker.h"

#define WAIT_TOTAL_MS 5000
#define REKNOCK_MS 1000		/* a lost knock is sent again once */
#define ATTEMPT_MIN_MS 10
#define ATTEMPT_MAX_MS 320

struct gate {
	const struct server_entry *s;
	struct sockaddr_storage knock_sa, tunnel_sa;
	socklen_t knock_len, tunnel_len;
	const uint8_t *target;		/* --target, or NULL: our address */
	int fd;				/* connect in progress, or −1 */
	uint64_t started_us, attempt_deadline_us;
	unsigned int attempt_ms;
	bool reknocked, done, failed;
	char err[512];
};

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* g->err holds the reason. */
static void fail(struct gate *g)
{
	g->failed = g->done = true;
	if (g->fd >= 0)
		close(g->fd);
	g->fd = -1;
}

static void start_attempt(struct gate *g, uint64_t now)
{
	if (g->fd >= 0)
		close(g->fd);
	g->fd = socket(g->tunnel_sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (g->fd < 0 ||
	    (connect(g->fd, (struct sockaddr *)&g->tunnel_sa, g->tunnel_len) < 0 &&
	     errno != EINPROGRESS)) {
		snprintf(g->err, sizeof(g->err), "%s: connecting to port %u: %s",
			 g->s->name, g->s->tunnel_port, strerror(errno));
		fail(g);
		return;
	}
	g->attempt_deadline_us = now + g->attempt_ms * 1000ull;
	if (g->attempt_ms < ATTEMPT_MAX_MS)
		g->attempt_ms *= 2;
}

static void finish_attempt(struct gate *g)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	getsockopt(g->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
	if (soerr == 0) {
		printf("%s: open: connected to tunnel port %u in %.1f ms\n",
		       g->s->name, g->s->tunnel_port,
		       (double)(now_us() - g->started_us) / 1000.0);
		close(g->fd);
		g->fd = -1;
		g->done = true;
	} else if (soerr == ECONNREFUSED) {
		/* The firewall let us through, but nothing listens. */
		snprintf(g->err, sizeof(g->err), "%s: the gate opened but the "
			 "tunnel port %u refused the connection: is postern-tunneld "
			 "running?", g->s->name, g->s->tunnel_port);
		fail(g);
	} else {
		close(g->fd);
		g->fd = -1;
		g->attempt_deadline_us = 0;	/* try again at once */
	}
}

static void reknock(const struct client_ctx *ctx, struct gate *g)
{
	char err[512];

	g->reknocked = true;
	/* the same knock again, for the same target */
	if (!knock_send(ctx, g->s, &g->knock_sa, g->knock_len, g->target, err,
			sizeof(err)))
		fprintf(stderr, "%s: %s\n", PROG_NAME, err);
}

/* Wait until every gate is open or has failed. */
static void wait_gates(const struct client_ctx *ctx, struct gate *gates, size_t n)
{
	struct pollfd *pfd = calloc(n, sizeof(*pfd));
	bool pending = true;

	while (pfd && pending) {
		uint64_t now = now_us();
		int timeout = 50;

		pending = false;
		for (size_t i = 0; i < n; i++) {
			struct gate *g = &gates[i];

			pfd[i] = (struct pollfd){ .fd = -1 };
			if (g->done)
				continue;
			if (now - g->started_us > WAIT_TOTAL_MS * 1000ull) {
				snprintf(g->err, sizeof(g->err), "%s: knock unanswered: "
					 "tunnel port %u still closed after %d s (wrong server "
					 "key, PSK or clock? see the server's journal)",
					 g->s->name, g->s->tunnel_port, WAIT_TOTAL_MS / 1000);
				fail(g);
				continue;
			}
			if (!g->reknocked && now - g->started_us > REKNOCK_MS * 1000ull)
				reknock(ctx, g);
			if (g->fd < 0 || now >= g->attempt_deadline_us)
				start_attempt(g, now);
			if (g->done)
				continue;
			pfd[i] = (struct pollfd){ .fd = g->fd, .events = POLLOUT };
			pending = true;
			if ((int)((g->attempt_deadline_us - now) / 1000) + 1 < timeout)
				timeout = (int)((g->attempt_deadline_us - now) / 1000) + 1;
		}
		if (!pending || poll(pfd, n, timeout) < 0)
			continue;
		for (size_t i = 0; i < n; i++)
			if (pfd[i].fd >= 0 && (pfd[i].revents & (POLLOUT | POLLERR | POLLHUP)))
				finish_attempt(&gates[i]);
	}
	free(pfd);
}

static int usage(void)
{
	fprintf(stderr, "Usage: %s knock NAME... | --all [--target ADDR] [--wait]\n",
		PROG_NAME);
	return EXIT_USAGE;
}

int knock_main(const struct cli_options *opt, int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "target", required_argument, NULL, 't' },
		{ "wait", no_argument, NULL, 'w' },
		{ NULL, 0, NULL, 0 },
	};
	struct client_ctx ctx;
	struct gate *gates;
	uint8_t target[16];
	bool all = false, wait = false, has_target = false;
	size_t n;
	int c, status = EXIT_OK;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (c) {
		case 'a': all = true; break;
		case 'w': wait = true; break;
		case 't':
			if (!addr_from_text(target, optarg)) {
				fprintf(stderr, "%s: --target: '%s' is not an IP address\n",
					PROG_NAME, optarg);
				return EXIT_USAGE;
			}
			has_target = true;
			break;
		default: return usage();
		}
	}
	if (all == (optind < argc))
		return usage();
	if (!client_ctx_load(&ctx, opt))
		return EXIT_FAIL;
	n = all ? ctx.cfg.n_servers : (size_t)(argc - optind);
	if (n == 0) {
		fprintf(stderr, "%s: no servers in %s\n", PROG_NAME, ctx.cfg.path);
		client_ctx_free(&ctx);
		return EXIT_FAIL;
	}
	gates = calloc(n, sizeof(*gates));
	for (size_t i = 0; gates && i < n; i++) {
		struct gate *g = &gates[i];

		g->fd = -1;
		g->attempt_ms = ATTEMPT_MIN_MS;
		g->s = all ? &ctx.cfg.servers[i] : client_ctx_server(&ctx, argv[optind + i]);
		if (!g->s) {
			g->done = g->failed = true;
			continue;
		}
		g->started_us = now_us();
		g->target = has_target ? target : NULL;
		if (!resolve_server(g->s, g->s->knock_port, &g->knock_sa, &g->knock_len,
				    g->err, sizeof(g->err)) ||
		    !knock_send(&ctx, g->s, &g->knock_sa, g->knock_len, g->target,
				g->err, sizeof(g->err))) {
			g->done = g->failed = true;
			continue;
		}
		g->tunnel_sa = g->knock_sa;
		g->tunnel_len = g->knock_len;
		if (g->tunnel_sa.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&g->tunnel_sa)->sin6_port = htons(g->s->tunnel_port);
		else
			((struct sockaddr_in *)&g->tunnel_sa)->sin_port = htons(g->s->tunnel_port);
		g->done = !wait;
	}
	if (gates && wait)
		wait_gates(&ctx, gates, n);
	for (size_t i = 0; gates && i < n; i++) {
		if (!gates[i].failed)
			continue;
		if (gates[i].err[0])
			fprintf(stderr, "%s: %s\n", PROG_NAME, gates[i].err);
		status = EXIT_FAIL;
	}
	if (!gates)
		status = EXIT_FAIL;
	free(gates);
	client_ctx_free(&ctx);
	return status;
}
