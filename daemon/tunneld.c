/*
 * postern-tunneld: the tunnel end on the server. Unprivileged: it listens
 * on tunnel.listen, authenticates clients by the same list as posternd,
 * and connects their streams to allow-listed loopback ports. It cannot
 * touch the firewall.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "addr.h"
#include "config.h"
#include "config_lint.h"
#include "log.h"
#include "nocore.h"
#include "secrets.h"
#include "status_file.h"
#include "tunneld.h"

#define PROG_NAME "postern-tunneld"
#define ERR_LEN 512
#define STATUS_INTERVAL_MS 1000
#define WATCHDOG_EVERY 5		/* status ticks */

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

		addr_parse(tc->listen[i], &sa, &len);
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

static void print_warning(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "%s: warning: %s\n", PROG_NAME, msg);
}

/* The status file (status_file.h), for postern gate status and
 * gate apply-nft. */
static void write_status(struct tunneld *d)
{
	const struct tunneld_counts *n = &d->n;
	struct status_text t = { 0 };
	char err[ERR_LEN];

	if (uv_now(d->loop) < d->status_retry_at)
		return;
	status_add(&t, "daemon postern-tunneld\npid %ld\nupdated %lld\n"
		   "sessions %u\nstreams_open %u\nhandshakes %u\n"
		   "accepted %llu\nrefused.handshake %llu\nrefused.unconfirmed %llu\n"
		   "refused.evicted_source %llu\nrefused.evicted_total %llu\n"
		   "refused.max_sessions %llu\nstreams %llu\nstreams_refused %llu\n"
		   "stream_timeouts %llu\nstreams_failed %llu\n",
		   (long)getpid(), (long long)time(NULL), d->established,
		   d->open_streams, d->pending, (unsigned long long)n->accepted,
		   (unsigned long long)n->refused, (unsigned long long)n->unconfirmed,
		   (unsigned long long)n->evicted_source,
		   (unsigned long long)n->evicted_total,
		   (unsigned long long)n->sessions_refused,
		   (unsigned long long)n->streams,
		   (unsigned long long)n->streams_refused,
		   (unsigned long long)n->stream_timeouts,
		   (unsigned long long)n->streams_failed);
	if (d->last_session_at_ms)
		status_add(&t, "last_session_at %llu\nlast_session_at_ms %llu\n"
			   "last_session_client %s\nlast_session_src %s\n",
			   (unsigned long long)(d->last_session_at_ms / 1000),
			   (unsigned long long)d->last_session_at_ms,
			   d->last_session_client, d->last_session_src);
	if (status_file_write(d->cfg->tunnel.status_file, &t, err, sizeof(err))) {
		d->status_warned = false;
	} else {
		/* No directory: run by hand, outside the unit that makes it. */
		d->status_retry_at = uv_now(d->loop) + STATUS_RETRY_MS;
		if (errno != ENOENT && !d->status_warned)
			log_msg(LOG_WARNING, "status file not written (postern "
				"gate status will not see postern-tunneld; trying "
				"again each minute): %s", err);
		d->status_warned = true;
	}
	status_text_free(&t);
}

static void notify_status(struct tunneld *d)
{
	const struct tunneld_counts *n = &d->n;
	char status[512];
	static char last[512];

	snprintf(status, sizeof(status), "STATUS=sessions %u, streams open %u, "
		 "handshakes %u, "
		 "accepted %llu, refused %llu, unconfirmed %llu, evicted %llu "
		 "per source + %llu total, sessions refused %llu, "
		 "streams %llu, refused %llu, timed out %llu, failed %llu",
		 d->established, d->open_streams, d->pending,
		 (unsigned long long)n->accepted,
		 (unsigned long long)n->refused, (unsigned long long)n->unconfirmed,
		 (unsigned long long)n->evicted_source,
		 (unsigned long long)n->evicted_total,
		 (unsigned long long)n->sessions_refused,
		 (unsigned long long)n->streams,
		 (unsigned long long)n->streams_refused,
		 (unsigned long long)n->stream_timeouts,
		 (unsigned long long)n->streams_failed);
	/* Every second, but only what changed: an idle daemon stays quiet. */
	if (strcmp(status, last) == 0)
		return;
	memcpy(last, status, sizeof(last));
	sd_notify(0, status);
	write_status(d);
}

static void on_status_timer(uv_timer_t *t)
{
	static unsigned int ticks;
	struct tunneld *d = t->data;

	notify_status(d);
	for (struct tsession *s = d->sessions; s; s = s->next)
		if (s->state == TS_ESTABLISHED)
			egress_flush_logs(s, false);
	if (++ticks % WATCHDOG_EVERY == 0)
		sd_notify(0, "WATCHDOG=1");
}

static bool same_listen(const struct tunnel_config *a, const struct tunnel_config *b)
{
	if (a->n_listen != b->n_listen)
		return false;
	for (size_t i = 0; i < a->n_listen; i++)
		if (strcmp(a->listen[i], b->listen[i]))
			return false;
	return true;
}

/*
 * SIGHUP: the new configuration, private key and PSK are all loaded
 * before any takes effect; if one fails, the old three stay. Then
 * sessions of clients removed or expired close, and the others keep their
 * transport keys; new handshakes use the new key and PSK. Listen
 * addresses change only at a restart.
 */
static void reload(struct tunneld *d)
{
	char err[ERR_LEN];
	struct server_config *cfg, *old;
	struct secrets *keys = NULL, *old_keys;
	struct dh_cache *dh = NULL, *old_dh;
	struct tsession *t, *next;
	const char *kept = "";

	sd_notify(0, "RELOADING=1");
	cfg = server_config_new(d->config_path, err, ERR_LEN);
	if (cfg)
		keys = secrets_reload_server(cfg, d->cfg, d->keys, &kept, err, ERR_LEN);
	/* Made for the new key and clients, never patched: a changed key
	 * can find no result of the old one. */
	if (keys && !(dh = dh_cache_new(&keys->key, cfg))) {
		snprintf(err, ERR_LEN, "out of memory");
		secrets_free(keys);
		keys = NULL;
	}
	if (!keys) {
		log_msg(LOG_ERR, "reload failed, keeping the running configuration, "
			"key and PSK: %s", err);
		server_config_delete(cfg);
		sd_notify(0, "READY=1");
		return;
	}
	if (!same_listen(&d->cfg->tunnel, &cfg->tunnel))
		log_msg(LOG_WARNING, "reload: tunnel.listen changed; it takes "
			"effect at a restart");
	old = d->cfg;
	old_keys = d->keys;
	old_dh = d->dh;
	d->cfg = cfg;
	d->status_retry_at = 0;
	d->keys = keys;
	d->dh = dh;
	/* Sessions hold the names and expiry of their clients by value. */
	for (t = d->sessions; t; t = next) {
		next = t->next;
		tsession_recheck(t);
	}
	server_config_delete(old);
	secrets_free(old_keys);
	dh_cache_free(old_dh);
	log_event(LOG_NOTICE, "daemon_reload", (const char *const[]){ NULL },
		  "reloaded %s: %zu clients; %s", d->config_path, cfg->n_clients,
		  kept);
	notify_status(d);
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
		  "draining %u sessions", d->established);
	stop_listening(d);
	for (t = d->sessions; t; t = next) {
		next = t->next;
		if (t->state != TS_ESTABLISHED)
			tsession_close(t, "shutting down");
		else
			uvt_conn_goaway(t->conn);
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
		server_config_lint(d.cfg, (int64_t)time(NULL), print_warning, NULL);
		printf("%s: %s is valid: %zu client%s, %zu listen address%s, "
		       "egress ports %zu\n", PROG_NAME, d.config_path, d.cfg->n_clients,
		       d.cfg->n_clients == 1 ? "" : "s", d.cfg->tunnel.n_listen,
		       d.cfg->tunnel.n_listen == 1 ? "" : "es", d.cfg->tunnel.n_egress);
		status = 0;
		goto out;
	}
	if (!(d.dh = dh_cache_new(&d.keys->key, d.cfg))) {
		fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		goto out;
	}
	d.loop = uv_default_loop();
	status = run(&d);
	uv_loop_close(d.loop);
out:
	dh_cache_free(d.dh);
	secrets_free(d.keys);
	free(d.listeners);
	server_config_delete(d.cfg);
	return status;
}
