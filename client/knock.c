/*
 * postern knock NAME... | --all [--target ADDR] [--wait]
 *
 * Sends each server one knock. With --wait, proves each gate opened by
 * connecting to the server's tunnel port, and prints how long it took:
 * client/gate.c says when to connect, knock again and give up.
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

#include "gate.h"
#include "gate_memo.h"
#include "ip_udp.h"
#include "knocker.h"

/* One server being knocked. */
struct job {
	const struct server_entry *s;
	struct sockaddr_storage knock_sa, tunnel_sa;
	socklen_t knock_len, tunnel_len;
	const uint8_t *target;		/* --target, or NULL: our address */
	struct gate *gate;		/* --wait only */
	int fd[GATE_ATTEMPTS];		/* connects in flight, or −1 */
	uint32_t id[GATE_ATTEMPTS];
	uint64_t started_ms, deadline_ms;
	bool done, failed;
	char err[768];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void close_attempt(struct job *j, size_t i)
{
	if (j->fd[i] >= 0)
		close(j->fd[i]);
	j->fd[i] = -1;
}

static void close_attempts(struct job *j)
{
	for (size_t i = 0; i < GATE_ATTEMPTS; i++)
		close_attempt(j, i);
}

static void job_fail(struct job *j)
{
	j->failed = j->done = true;
	close_attempts(j);
}

static int slot_of(const struct job *j, uint32_t id)
{
	for (int i = 0; i < GATE_ATTEMPTS; i++)
		if (j->fd[i] >= 0 && j->id[i] == id)
			return i;
	return -1;
}

static void start_attempt(struct job *j, uint32_t id)
{
	int fd, i;

	for (i = 0; i < GATE_ATTEMPTS && j->fd[i] >= 0; i++)
		;
	fd = socket(j->tunnel_sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (i == GATE_ATTEMPTS || fd < 0 ||
	    (connect(fd, (struct sockaddr *)&j->tunnel_sa, j->tunnel_len) < 0 &&
	     errno != EINPROGRESS)) {
		snprintf(j->err, sizeof(j->err), "%s: connecting to port %u: %s",
			 j->s->name, j->s->tunnel_port,
			 i == GATE_ATTEMPTS ? "too many attempts" : strerror(errno));
		if (fd >= 0)
			close(fd);
		job_fail(j);
		return;
	}
	j->fd[i] = fd;
	j->id[i] = id;
}

/* Do what the gate says until it says wait. */
static void drive(const struct client_ctx *ctx, struct job *j, uint64_t now)
{
	while (!j->done) {
		struct gate_action a = gate_next(j->gate, now);
		int i;

		switch (a.what) {
		case GATE_WAIT:
			j->deadline_ms = a.deadline;
			return;
		case GATE_KNOCK:
			/* Again for the same target. The first knock failing
			 * ends it; a later one shows as "unanswered". */
			if (knock_send(ctx, j->s, &j->knock_sa, j->knock_len,
				       j->target, j->err, sizeof(j->err)))
				break;
			if (gate_knocks(j->gate) == 1) {
				job_fail(j);
				return;
			}
			fprintf(stderr, "%s: %s\n", PROG_NAME, j->err);
			j->err[0] = '\0';
			break;
		case GATE_CONNECT:
			start_attempt(j, a.attempt);
			break;
		case GATE_ABANDON:
			if ((i = slot_of(j, a.attempt)) >= 0)
				close_attempt(j, (size_t)i);
			break;
		case GATE_OPEN:
			printf("%s: open: connected to tunnel port %u in %.1f ms\n",
			       j->s->name, j->s->tunnel_port,
			       (double)(now - j->started_ms));
			j->done = true;
			close_attempts(j);
			gate_memo_put(j->s, gate_connect_ms(j->gate));
			break;
		case GATE_FAILED:
			gate_failure_text(j->err, sizeof(j->err), j->s, j->gate,
					  a.failure, ctx->connect_timeout_ms);
			job_fail(j);
			break;
		}
	}
}

static void attempt_ready(struct job *j, size_t i, uint64_t now)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(j->fd[i], SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		soerr = errno;
	if (soerr == 0)
		gate_connected(j->gate, j->id[i], now);
	else
		gate_connect_failed(j->gate, j->id[i], soerr, now);
	close_attempt(j, i);
}

/* Wait until every gate is open or has failed. */
static void wait_gates(const struct client_ctx *ctx, struct job *jobs, size_t n)
{
	size_t nfds = n * GATE_ATTEMPTS;
	struct pollfd *pfd = calloc(nfds, sizeof(*pfd));
	bool pending = true;

	for (size_t k = 0; pfd && k < n; k++)
		if (!jobs[k].done)
			drive(ctx, &jobs[k], now_ms());
	while (pfd && pending) {
		uint64_t now = now_ms(), next = GATE_NEVER;
		int timeout;

		pending = false;
		for (size_t k = 0; k < n; k++) {
			struct job *j = &jobs[k];

			for (size_t i = 0; i < GATE_ATTEMPTS; i++)
				pfd[k * GATE_ATTEMPTS + i] = (struct pollfd){
					.fd = j->done ? -1 : j->fd[i], .events = POLLOUT };
			if (j->done)
				continue;
			pending = true;
			if (j->deadline_ms < next)
				next = j->deadline_ms;
		}
		if (!pending)
			break;
		timeout = next <= now ? 0 : next - now > 1000 ? 1000 : (int)(next - now);
		if (poll(pfd, nfds, timeout) < 0)
			continue;
		now = now_ms();
		for (size_t k = 0; k < n; k++) {
			struct job *j = &jobs[k];

			if (j->done)
				continue;
			for (size_t i = 0; i < GATE_ATTEMPTS; i++)
				if (j->fd[i] >= 0 && (pfd[k * GATE_ATTEMPTS + i].revents &
						      (POLLOUT | POLLERR | POLLHUP)))
					attempt_ready(j, i, now);
			drive(ctx, j, now);
		}
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
	struct job *jobs;
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
	jobs = calloc(n, sizeof(*jobs));
	for (size_t i = 0; jobs && i < n; i++) {
		struct job *j = &jobs[i];

		for (size_t k = 0; k < GATE_ATTEMPTS; k++)
			j->fd[k] = -1;
		j->s = all ? &ctx.cfg.servers[i] : client_ctx_server(&ctx, argv[optind + i]);
		if (!j->s) {
			j->done = j->failed = true;
			continue;
		}
		j->started_ms = now_ms();
		j->target = has_target ? target : NULL;
		if (!resolve_server(j->s, j->s->knock_port, &j->knock_sa, &j->knock_len,
				    j->err, sizeof(j->err))) {
			j->done = j->failed = true;
			continue;
		}
		j->tunnel_sa = j->knock_sa;
		j->tunnel_len = j->knock_len;
		if (j->tunnel_sa.ss_family == AF_INET6)
			((struct sockaddr_in6 *)&j->tunnel_sa)->sin6_port = htons(j->s->tunnel_port);
		else
			((struct sockaddr_in *)&j->tunnel_sa)->sin_port = htons(j->s->tunnel_port);
		if (wait) {
			j->gate = gate_new(&(struct gate_params){
						.total_ms = ctx.connect_timeout_ms },
					   j->started_ms);
			if (!j->gate) {
				snprintf(j->err, sizeof(j->err), "out of memory");
				j->done = j->failed = true;
			}
		} else if (!knock_send(&ctx, j->s, &j->knock_sa, j->knock_len,
				       j->target, j->err, sizeof(j->err))) {
			j->done = j->failed = true;
		} else {
			j->done = true;
		}
	}
	if (jobs && wait)
		wait_gates(&ctx, jobs, n);
	for (size_t i = 0; jobs && i < n; i++) {
		gate_free(jobs[i].gate);
		if (!jobs[i].failed)
			continue;
		if (jobs[i].err[0])
			fprintf(stderr, "%s: %s\n", PROG_NAME, jobs[i].err);
		status = EXIT_FAIL;
	}
	if (!jobs)
		status = EXIT_FAIL;
	free(jobs);
	client_ctx_free(&ctx);
	return status;
}
