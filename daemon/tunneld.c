/*
 * postern-tunneld: the tunnel end on the server. Unprivileged: it listens
 * on tunnel.listen, authenticates clients by the same list as posternd,
 * and connects their streams to allow-listed loopback ports. It cannot
 * touch the firewall.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "nocore.h"
#include "secrets.h"
#include "tunneld.h"

#define PROG_NAME "postern-tunneld"
#define ERR_LEN 512
#define STATUS_INTERVAL_MS 5000

static void on_connection(uv_stream_t *listener, int status)
{
	struct tunneld *d = listener->data;

	if (status < 0) {
		log_msg(LOG_WARNING, "accept: %s", uv_strerror(status));
		return;
	}
	tsession_accept(d, listener);
}

static bool listen_all(struct tunneld *d, char *err)
{
	const struct tunnel_config *tc = &d->cfg->tunnel;

	d->listeners = calloc(tc->n_listen, sizeof(*d->listeners));
	if (!d->listeners) {
		snprintf(err, ERR_LEN, "out of memory");
		return false;
	}
	for (size_t i = 0; i < tc->n_listen; i++) {
		struct sockaddr_storage sa;
		socklen_t len;
		uv_tcp_t *l = &d->listeners[i];
		int rc;

		config_parse_address(tc->listen[i], &sa, &len);
		uv_tcp_init(d->loop, l);
		l->data = d;
		d->n_listeners++;
		/* [::] only for IPv6, so that 0.0.0.0 can be bound beside it. */
		rc = uv_tcp_bind(l, (struct sockaddr *)&sa,
				 sa.ss_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
		if (rc == 0)
			rc = uv_listen((uv_stream_t *)l, 128, on_connection);
		if (rc < 0) {
			snprintf(err, ERR_LEN, "listen on %s: %s", tc->listen[i],
				 uv_strerror(rc));
			return false;
		}
	}
	return true;
}

static unsigned int count_sessions(const struct tunneld *d)
{
	unsigned int n = 0;

	for (const struct tsession *t = d->sessions; t; t = t->next)
		n += t->established && !t->conn.ended;
	return n;
}

static void notify_status(struct tunneld *d)
{
	sd_notifyf(0, "STATUS=sessions %u, handshakes %u, accepted %llu, refused %llu, "
		   "streams %llu",
		   count_sessions(d), d->pending, (unsigned long long)d->accepted,
		   (unsigned long long)d->refused, (unsigned long long)d->streams);
}

static void on_status_timer(uv_timer_t *t)
{
	struct tunneld *d = t->data;

	notify_status(d);
	sd_notify(0, "WATCHDOG=1");
}

/* Close the sessions of clients the new list no longer has, or whose
 * key has expired. */
static void drop_removed_clients(struct tunneld *d)
{
	struct tsession *t, *next;

	for (t = d->sessions; t; t = next) {
		next = t->next;
		if (!t->established || t->conn.ended)
			continue;
		t->client = server_config_find_client(d->cfg, t->client_pub);
		if (!t->client) {
			log_msg(LOG_NOTICE, "closing the tunnel of %s (%s): client removed",
				t->client_name, t->src);
			tsession_close(t, "client removed");
		}
	}
}

static void reload(struct tunneld *d)
{
	char err[ERR_LEN];
	struct server_config *cfg = server_config_new(d->config_path, err, ERR_LEN);

	sd_notify(0, "RELOADING=1");
	if (!cfg) {
		log_msg(LOG_ERR, "reload failed, keeping the running configuration: %s", err);
	} else {
		/* Listen addresses and keys stay as they are until a restart. */
		struct server_config *old = d->cfg;

		d->cfg = cfg;
		drop_removed_clients(d);
		/* Sessions hold client names by value; pending handshakes
		 * look clients up again when they finish. */
		for (struct tsession *t = d->sessions; t; t = t->next)
			if (!t->established)
				t->client = NULL;
		server_config_delete(old);
		log_event(LOG_NOTICE, "daemon_reload", (const char *const[]){ NULL },
			  "reloaded %s: %zu clients", d->config_path, cfg->n_clients);
	}
	sd_notify(0, "READY=1");
}

static void on_drained(uv_timer_t *t)
{
	uv_stop(t->loop);
}

static void stop_listening(struct tunneld *d)
{
	for (size_t i = 0; i < d->n_listeners; i++)
		if (!uv_is_closing((uv_handle_t *)&d->listeners[i]))
			uv_close((uv_handle_t *)&d->listeners[i], NULL);
}

/* SIGTERM: stop accepting, go away on every session, and wait for their
 * streams to end (at most DRAIN_TIMEOUT_MS). */
static void drain(struct tunneld *d, uv_timer_t *drain_timer)
{
	struct tsession *t, *next;

	if (d->draining)
		return;
	d->draining = true;
	sd_notify(0, "STOPPING=1");
	log_event(LOG_INFO, "daemon_stop", (const char *const[]){ NULL },
		  "draining %u sessions", count_sessions(d));
	stop_listening(d);
	for (t = d->sessions; t; t = next) {
		next = t->next;
		if (!t->established)
			tsession_close(t, "shutting down");
		else if (!t->conn.ended) {
			yamux_goaway(t->conn.sess->mux, YAMUX_GOAWAY_NORMAL);
			uvt_conn_flush(&t->conn);
		}
	}
	uv_timer_start(drain_timer, on_drained, DRAIN_TIMEOUT_MS, 0);
}

struct signals {
	uv_signal_t hup, term, intr;
	uv_timer_t drain;
	struct tunneld *d;
};

static void on_signal(uv_signal_t *h, int signum)
{
	struct signals *s = h->data;

	if (signum == SIGHUP)
		reload(s->d);
	else
		drain(s->d, &s->drain);
}

/* While draining, end the loop as soon as no session is left. */
static void on_check(uv_check_t *h)
{
	struct tunneld *d = h->data;

	if (d->draining && !d->sessions)
		uv_stop(h->loop);
}

static void close_walk(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static int run(struct tunneld *d)
{
	struct signals sig = { .d = d };
	uv_timer_t status;
	uv_check_t check;
	char err[ERR_LEN];

	if (!listen_all(d, err)) {
		log_msg(LOG_ERR, "%s", err);
		return 1;
	}
	uv_signal_init(d->loop, &sig.hup);
	uv_signal_init(d->loop, &sig.term);
	uv_signal_init(d->loop, &sig.intr);
	sig.hup.data = sig.term.data = sig.intr.data = &sig;
	uv_signal_start(&sig.hup, on_signal, SIGHUP);
	uv_signal_start(&sig.term, on_signal, SIGTERM);
	uv_signal_start(&sig.intr, on_signal, SIGINT);
	uv_timer_init(d->loop, &sig.drain);
	uv_timer_init(d->loop, &status);
	status.data = d;
	uv_timer_start(&status, on_status_timer, 0, STATUS_INTERVAL_MS);
	uv_check_init(d->loop, &check);
	check.data = d;
	uv_check_start(&check, on_check);

	log_event(LOG_INFO, "daemon_start", (const char *const[]){ NULL },
		  "listening on %s%s; %zu client%s", d->cfg->tunnel.listen[0],
		  d->cfg->tunnel.n_listen > 1 ? " and more" : "", d->cfg->n_clients,
		  d->cfg->n_clients == 1 ? "" : "s");
	sd_notify(0, "READY=1");
	uv_run(d->loop, UV_RUN_DEFAULT);

	/* Whatever is left after the drain: close it and let callbacks run. */
	for (struct tsession *t = d->sessions; t; t = t->next)
		tsession_close(t, "shutting down");
	uv_walk(d->loop, close_walk, NULL);
	uv_run(d->loop, UV_RUN_DEFAULT);
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: %s [-c FILE] [-t] [--allow-root]\n"
		"  -c FILE      configuration (default %s)\n"
		"  -t           check the configuration and keys, then exit\n"
		"  --allow-root run even as root (it needs no privilege)\n"
		"  -h, --help   show this help\n"
		"  -V, --version\n", PROG_NAME, POSTERN_SERVER_CONFIG);
}

int main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "allow-root", no_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct tunneld d = { .config_path = POSTERN_SERVER_CONFIG };
	char err[ERR_LEN];
	bool test = false, allow_root = false;
	int c, status = 1;

	while ((c = getopt_long(argc, argv, "c:thV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': d.config_path = optarg; break;
		case 't': test = true; break;
		case 'R': allow_root = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("%s %s\n", PROG_NAME, POSTERN_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	/* A bug here must not come with root's files and capabilities; -t
	 * only reads, and root may read the root-only key files it checks. */
	if (geteuid() == 0 && !allow_root && !test) {
		fprintf(stderr, "%s: refusing to run as root: it needs no "
			"privilege; run it as user postern (the unit does), or "
			"pass --allow-root\n", PROG_NAME);
		return 1;
	}
	no_core_dumps();
	/* It never runs a program: nothing it could exec may gain more. */
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	log_open(PROG_NAME, LOG_INFO, LOG_TARGET_AUTO);
	/* A peer that vanishes mid-write must not kill the daemon. */
	signal(SIGPIPE, SIG_IGN);
	if (!crypto_init()) {
		fprintf(stderr, "%s: libgcrypt is too old\n", PROG_NAME);
		return 1;
	}
	d.cfg = server_config_new(d.config_path, err, ERR_LEN);
	if (!d.cfg || !(d.keys = secrets_load_server(d.cfg, err, sizeof(err)))) {
		fprintf(stderr, "%s: %s\n", PROG_NAME, err);
		goto out;
	}
	if (test) {
		printf("%s: %s is valid: %zu client%s, %zu listen address%s, "
		       "egress ports %zu\n", PROG_NAME, d.config_path, d.cfg->n_clients,
		       d.cfg->n_clients == 1 ? "" : "s", d.cfg->tunnel.n_listen,
		       d.cfg->tunnel.n_listen == 1 ? "" : "es", d.cfg->tunnel.n_egress);
		status = 0;
		goto out;
	}
	d.loop = uv_default_loop();
	status = run(&d);
	uv_loop_close(d.loop);
out:
	secrets_free(d.keys);
	free(d.listeners);
	server_config_delete(d.cfg);
	return status;
}
