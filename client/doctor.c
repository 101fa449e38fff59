/*
 * postern doctor [NAME...]
 *
 * Checks each server (every one in the config without names), all at
 * once on one loop: resolve its address, see whether the tunnel port is
 * open already, knock, time the port's opening, run the handshake, and
 * show the ports and the clock skew its hello gives. The steps are the
 * tunnel client's (client/tunnel_client.c), watched through its optional
 * hooks; the knocks go out on a connected UDP socket so that an ICMP
 * answer to one is seen.
 *
 * Each server's lines are printed in the order of the arguments (or of
 * the config), each as soon as it and the ones before it are done. A
 * failure ends with what most likely caused it and where to look; what
 * the client cannot tell apart (the server answers a refused knock with
 * silence, by design) is listed, most likely first.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gate_memo.h"
#include "knock.h"
#include "knocker.h"
#include "tunnel_client.h"

/* Long enough for an open gate to answer across continents; a closed one
 * costs this before the knock. */
#define DOCTOR_PROBE_MS 500

struct doctor;

struct check {
	struct tclient tc;		/* first: tc.user is the check */
	struct doctor *d;
	const struct server_entry *s;
	uv_poll_t kpoll;		/* the knock socket, for ICMP */
	int kfd;
	bool kpoll_open;
	int knock_err;			/* an ICMP answer to a knock, as errno */
	char addr[INET6_ADDRSTRLEN];
	uint64_t t0, t_knock, t_reached;	/* uv_hrtime(), ns */
	struct check *after;		/* the next of the same address */
	bool done, failed, printed;
	char out[4096];
	size_t len;
};

struct doctor {
	uv_loop_t loop;
	struct client_ctx ctx;
	struct check *checks;
	size_t n;
};

static double ms_since(uint64_t t)
{
	return (double)(uv_hrtime() - t) / 1e6;
}

static void say(struct check *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void say(struct check *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (c->len >= sizeof(c->out))
		return;
	n = snprintf(c->out + c->len, sizeof(c->out) - c->len, "%s: ", c->s->name);
	if (n > 0)
		c->len += (size_t)n;
	va_start(ap, fmt);
	n = c->len < sizeof(c->out) ?
	    vsnprintf(c->out + c->len, sizeof(c->out) - c->len, fmt, ap) : 0;
	va_end(ap);
	if (n > 0)
		c->len += (size_t)n;
	if (c->len < sizeof(c->out) - 1) {
		c->out[c->len++] = '\n';
		c->out[c->len] = '\0';
	} else {
		c->len = sizeof(c->out) - 1;
		c->out[c->len - 1] = '\n';
	}
}

/* Print every finished check not yet printed that has none unfinished
 * before it: the argument order, whatever order they finish in. */
static void flush_done(struct doctor *d)
{
	for (size_t i = 0; i < d->n && d->checks[i].done; i++) {
		struct check *c = &d->checks[i];

		if (c->printed)
			continue;
		fwrite(c->out, 1, c->len, stdout);
		c->printed = true;
	}
	fflush(stdout);
}

static void knock_closed(uv_handle_t *h)
{
	struct check *c = h->data;

	close(c->kfd);
	c->kfd = -1;
}

static void start(struct check *c);

static void finish(struct check *c, bool ok)
{
	if (c->done)
		return;
	c->done = true;
	c->failed = !ok;
	if (ok)
		say(c, "ok");
	if (c->kpoll_open) {
		c->kpoll_open = false;
		uv_close((uv_handle_t *)&c->kpoll, knock_closed);
	}
	flush_done(c->d);
	if (c->after)
		start(c->after);
}

/* The causes a refused or lost knock leaves, most likely first: the
 * server drops it without a word whichever it is. */
static void fail_unanswered(struct check *c)
{
	say(c, "fail: the knocks were not accepted: the server key, the PSK "
	    "or knock_port may be wrong, this device's key may not be allowed "
	    "(on the server: postern gate allow), the clocks may be further "
	    "apart than the knock window, the knocks may not open tunnel_port, "
	    "posternd may not be running, or the link lost them; on the "
	    "server, postern gate status says which");
}

static void fail_icmp(struct check *c)
{
	say(c, "knock to port %u answered: %s", c->s->knock_port,
	    strerror(c->knock_err));
	if (c->knock_err == ECONNREFUSED)
		say(c, "fail: nothing takes knocks at port %u: the server's "
		    "firewall lets them through to a port where nothing "
		    "listens (a queue rule with bypass while posternd is not "
		    "running, or a knock_port that is wrong and not filtered); "
		    "on the server: systemctl status posternd",
		    c->s->knock_port);
	else
		say(c, "fail: the server's address cannot be reached from here: "
		    "check address, and the route (ip route get %s)", c->addr);
}

static void knock_line(struct check *c, const char *what)
{
	unsigned int k = c->tc.knocks;

	say(c, "knock port %u: tunnel port %u %s (%u knock%s)", c->s->knock_port,
	    c->s->tunnel_port, what, k, k == 1 ? "" : "s");
}

static void fail_refused(struct check *c)
{
	char what[96];

	if (c->tc.knocked) {
		snprintf(what, sizeof(what), "refused the connection after %.1f ms",
			 ms_since(c->t_knock));
		knock_line(c, what);
		say(c, "fail: the gate opened but nothing listens at port %u: "
		    "postern-tunneld is not running, or tunnel_port is not its "
		    "tunnel.listen port; on the server: systemctl status "
		    "postern-tunneld", c->s->tunnel_port);
		return;
	}
	say(c, "tunnel port %u refused the connection before any knock (%.1f ms)",
	    c->s->tunnel_port, ms_since(c->t0));
	say(c, "fail: the port is reachable without a knock (the gate is open "
	    "already, or not filtered) but nothing listens: postern-tunneld is "
	    "not running, or tunnel_port is not its tunnel.listen port; on the "
	    "server: systemctl status postern-tunneld");
}

static void fail_reach(struct check *c)
{
	char what[160];

	if (c->tc.last_error && c->tc.last_error != ETIMEDOUT) {
		snprintf(what, sizeof(what), "unreachable: %s",
			 strerror(c->tc.last_error));
		knock_line(c, what);
		say(c, "fail: the server cannot be reached: it is down, address "
		    "is wrong, or a route is missing (ip route get %s)", c->addr);
		return;
	}
	snprintf(what, sizeof(what), "no answer in %u s",
		 c->d->ctx.cfg.connect_timeout);
	knock_line(c, what);
	fail_unanswered(c);
}

/* The handshake failed: what it means depends on whether our knock just
 * opened the gate, since posternd then checked the server key, the PSK
 * and this device's key. */
static void fail_handshake(struct check *c, const char *err)
{
	bool k = c->tc.knocked;

	switch (c->tc.failure) {
	case TCLIENT_FAIL_HS_CLOSED:
		say(c, "handshake: the server closed the connection before its "
		    "answer (%u tries)", c->tc.hs_retries + 1);
		if (k)
			say(c, "fail: posternd accepted the knock, so the keys and "
			    "the PSK are right, but postern-tunneld closed the "
			    "handshake: it is busy, or its configuration differs "
			    "from posternd's (on the server: systemctl reload "
			    "postern-tunneld; its journal says which)");
		else
			say(c, "fail: the server key is wrong, this device's key is "
			    "not allowed, or the server is busy (the gate was open "
			    "before any knock); on the server: postern gate status");
		return;
	case TCLIENT_FAIL_HS_AUTH:
		say(c, "handshake: the server's answer does not authenticate");
		if (k)
			say(c, "fail: posternd accepted the knock with this PSK, so "
			    "postern-tunneld's PSK differs (on the server: systemctl "
			    "reload postern-tunneld), or the answer was altered on "
			    "the way");
		else
			say(c, "fail: the PSK differs from the server's (the gate was "
			    "open before any knock, or the knock would have shown "
			    "it), or the answer was altered on the way");
		return;
	case TCLIENT_FAIL_HS_TIMEOUT:
		say(c, "handshake: no answer");
		say(c, "fail: the tunnel port took the connection but did not "
		    "answer the handshake: is tunnel_port postern-tunneld's port? "
		    "(a very slow or lossy link does this too)");
		return;
	default:
		say(c, "handshake: %s", err);
		say(c, "fail: the tunnel port does not speak postern's protocol: "
		    "is tunnel_port postern-tunneld's tunnel.listen port?");
		return;
	}
}

/* The tunnel client's steps. */

static struct check *check_of(struct tclient *tc)
{
	return tc->user;
}

static void on_resolved(struct tclient *tc)
{
	struct check *c = check_of(tc);
	const void *a = tc->sa.ss_family == AF_INET6 ?
		(const void *)&((const struct sockaddr_in6 *)&tc->sa)->sin6_addr :
		(const void *)&((const struct sockaddr_in *)&tc->sa)->sin_addr;

	inet_ntop(tc->sa.ss_family, a, c->addr, sizeof(c->addr));
	say(c, "resolve %s (%.1f ms)", c->addr, ms_since(c->t0));
}

static void knock_readable(uv_poll_t *h, int status, int events)
{
	struct check *c = h->data;
	uint8_t buf[1];

	(void)status;
	(void)events;
	if (recv(c->kfd, buf, sizeof(buf), MSG_DONTWAIT) >= 0 ||
	    errno == EAGAIN || errno == EINTR)
		return;		/* nothing is sent to us; ignore it */
	if (c->done || c->t_reached)
		return;
	c->knock_err = errno;
	tclient_close(&c->tc);	/* no failed hook: we say it */
	fail_icmp(c);
	finish(c, false);
}

/* A connected socket, kept: an ICMP error for a knock comes back to it. */
static bool on_knock(struct tclient *tc, const struct sockaddr_storage *sa,
		     socklen_t len, char *err, size_t err_len)
{
	struct check *c = check_of(tc);
	uint8_t pkt[KNOCK_LEN];

	if (c->kfd < 0) {
		c->kfd = socket(sa->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (c->kfd < 0 || connect(c->kfd, (const struct sockaddr *)sa, len) < 0 ||
		    uv_poll_init_socket(&c->d->loop, &c->kpoll, c->kfd) < 0) {
			snprintf(err, err_len, "%s: knock socket: %s", c->s->name,
				 strerror(errno));
			if (c->kfd >= 0)
				close(c->kfd);
			c->kfd = -1;
			return false;
		}
		c->kpoll.data = c;
		c->kpoll_open = true;
		uv_poll_start(&c->kpoll, UV_READABLE, knock_readable);
	}
	if (!c->t_knock)
		c->t_knock = uv_hrtime();
	if (!knock_packet(tc->ctx, c->s, NULL, pkt, err, err_len))
		return false;
	if (send(c->kfd, pkt, sizeof(pkt), 0) == (ssize_t)sizeof(pkt))
		return true;
	/* An ICMP answer to the knock before: said at the end. */
	if (errno == ECONNREFUSED || errno == EHOSTUNREACH || errno == ENETUNREACH)
		c->knock_err = errno;
	snprintf(err, err_len, "%s: sending the knock to %s: %s", c->s->name,
		 c->s->address, strerror(errno));
	return false;
}

static void on_reached(struct tclient *tc)
{
	struct check *c = check_of(tc);
	char what[64];

	if (c->t_reached)
		return;		/* again, after a handshake closed early */
	c->t_reached = uv_hrtime();
	if (!tc->knocked) {
		say(c, "knock skipped: tunnel port %u open before any knock "
		    "(%.1f ms): the gate was open already, the knock is not tested",
		    c->s->tunnel_port, ms_since(c->t0));
		return;
	}
	snprintf(what, sizeof(what), "open after %.1f ms", ms_since(c->t_knock));
	knock_line(c, what);
}

static void on_up(struct tclient *tc)
{
	struct check *c = check_of(tc);
	char ports[2048];
	/* Rounded to tenths of a second, away from zero. */
	long long tenths = (tc->skew_ms + (tc->skew_ms < 0 ? -50 : 50)) / 100;
	long long mag = tenths < 0 ? -tenths : tenths;
	bool ok = true;

	say(c, "handshake ok (%.1f ms)", ms_since(c->t_reached));
	tclient_ports_text(tc, ports, sizeof(ports));
	say(c, "ports %s", ports);
	say(c, "clock skew %c%lld.%lld s", tenths < 0 ? '-' : '+', mag / 10, mag % 10);
	if (tc->hello.n_ports == 0) {
		say(c, "fail: the server offers this device no port: on the "
		    "server, list the ports in tunnel.egress and reload "
		    "postern-tunneld");
		ok = false;
	}
	if (llabs(tc->skew_ms) > TCLIENT_MAX_SKEW_MS) {
		say(c, "%s: the clocks are %lld s apart, more than the default "
		    "knock window (%d s): knocks are refused unless knock.window "
		    "allows it; set the clock right (NTP) on the side that is off",
		    tc->knocked ? "warning" : "fail", mag / 10,
		    TCLIENT_MAX_SKEW_MS / 1000);
		ok = ok && tc->knocked;
	}
	if (tc->knocked)
		gate_memo_put(c->s, tc->gate_connect_ms);
	tclient_close(tc);
	finish(c, ok);
}

static void on_failed(struct tclient *tc, const char *err)
{
	struct check *c = check_of(tc);
	const char *msg = err;
	size_t n = strlen(c->s->name);

	/* err begins with "NAME: ", which say() adds again. */
	if (!strncmp(msg, c->s->name, n) && !strncmp(msg + n, ": ", 2))
		msg += n + 2;
	if (c->knock_err) {
		fail_icmp(c);
	} else {
		switch (tc->failure) {
		case TCLIENT_FAIL_RESOLVE:
			say(c, "resolve: %s", msg);
			say(c, "fail: the address does not resolve: check address in "
			    "%s (a host name or an IP address, without a port) and "
			    "this device's DNS", c->d->ctx.cfg.path);
			break;
		case TCLIENT_FAIL_KNOCK:
			say(c, "knock: %s", msg);
			say(c, "fail: this device cannot send to the server's address: "
			    "check its network and route (ip route get %s)", c->addr);
			break;
		case TCLIENT_FAIL_REFUSED:
			fail_refused(c);
			break;
		case TCLIENT_FAIL_UNANSWERED:
			fail_reach(c);
			break;
		case TCLIENT_FAIL_HS_CLOSED:
		case TCLIENT_FAIL_HS_AUTH:
		case TCLIENT_FAIL_HS_PROTO:
		case TCLIENT_FAIL_HS_TIMEOUT:
			fail_handshake(c, msg);
			break;
		case TCLIENT_FAIL_OTHER:
			say(c, "fail: %s", msg);
			break;
		}
	}
	finish(c, false);
}

static void on_ended(struct tclient *tc, const char *err)
{
	(void)tc;
	(void)err;	/* our own close, after up */
}

static void on_freed(struct tclient *tc)
{
	(void)tc;
}

static const struct tclient_hooks hooks = {
	.up = on_up,
	.failed = on_failed,
	.ended = on_ended,
	.freed = on_freed,
	.resolved = on_resolved,
	.reached = on_reached,
	.knock = on_knock,
};

static int usage(void)
{
	fprintf(stderr, "Usage: %s doctor [NAME...]\n", PROG_NAME);
	return EXIT_USAGE;
}

static void start(struct check *c)
{
	c->t0 = uv_hrtime();
	if (!tclient_connect(&c->tc, &c->d->loop, &c->d->ctx, c->s,
			     DOCTOR_PROBE_MS, &hooks, c)) {
		say(c, "fail: cannot start a timer");
		finish(c, false);
	}
}

/*
 * Servers at one address are checked one after the other: a knock for
 * one opens the gate for all of them (it opens our address), and would
 * pass for the knock of another. The later ones find the gate open and
 * say so.
 */
static int run(struct doctor *d)
{
	int status = EXIT_OK;

	for (size_t i = 0; i < d->n; i++) {
		d->checks[i].d = d;
		d->checks[i].kfd = -1;
		for (size_t j = i + 1; !d->checks[i].after && j < d->n; j++)
			if (!strcmp(d->checks[i].s->address, d->checks[j].s->address))
				d->checks[i].after = &d->checks[j];
	}
	for (size_t i = 0; i < d->n; i++) {
		bool first = true;

		for (size_t j = 0; first && j < i; j++)
			first = d->checks[j].after != &d->checks[i];
		if (first)
			start(&d->checks[i]);
	}
	uv_run(&d->loop, UV_RUN_DEFAULT);
	for (size_t i = 0; i < d->n; i++)
		if (!d->checks[i].done || d->checks[i].failed)
			status = EXIT_FAIL;
	return status;
}

int doctor_main(const struct cli_options *opt, int argc, char *argv[])
{
	struct doctor *d;
	int status;

	for (int i = 1; i < argc; i++)
		if (argv[i][0] == '-')
			return usage();
	d = calloc(1, sizeof(*d));
	if (!d || !client_ctx_load(&d->ctx, opt)) {
		free(d);
		return EXIT_FAIL;
	}
	d->n = argc > 1 ? (size_t)(argc - 1) : d->ctx.cfg.n_servers;
	d->checks = calloc(d->n ? d->n : 1, sizeof(*d->checks));
	status = d->checks ? EXIT_OK : EXIT_FAIL;
	if (d->n == 0) {
		fprintf(stderr, "%s: no servers in %s\n", PROG_NAME, d->ctx.cfg.path);
		status = EXIT_FAIL;
	}
	for (size_t i = 0; status == EXIT_OK && i < d->n; i++) {
		d->checks[i].s = argc > 1 ? client_ctx_server(&d->ctx, argv[i + 1])
					  : &d->ctx.cfg.servers[i];
		if (!d->checks[i].s)
			status = EXIT_FAIL;
	}
	if (status == EXIT_OK && uv_loop_init(&d->loop) < 0) {
		fprintf(stderr, "%s: cannot start an event loop\n", PROG_NAME);
		status = EXIT_FAIL;
	} else if (status == EXIT_OK) {
		status = run(d);
		uv_loop_close(&d->loop);
	}
	free(d->checks);
	client_ctx_free(&d->ctx);
	free(d);
	return status;
}
