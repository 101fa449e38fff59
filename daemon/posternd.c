/*
 * posternd: the knock daemon. It reads knocks from one NFQUEUE, verifies
 * them, and opens `source . port` in the administrator's nftables sets. It
 * holds no listening socket and never answers: every queued packet is
 * dropped. Needs CAP_NET_ADMIN and nothing else.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "config_lint.h"
#include "log.h"
#include "nocore.h"
#include "posternd.h"
#include "print_nft.h"
#include "privdrop.h"
#include "secrets.h"

/* STATUS= goes out every second, and soon after a burst (at most ten
 * times a second), so that counters follow the traffic closely. */
#define STATUS_INTERVAL_MS 1000
#define STATUS_MIN_INTERVAL_MS 100
#define STATE_NAME "knock.state"
#define STATE_DIR_DEFAULT "/var/lib/postern"

/* knock.state_file, else knock.state in the directory systemd made for
 * the unit (StateDirectory=), else in /var/lib/postern. */
static const char *state_path(const struct server_config *cfg, char *buf,
			      size_t len)
{
	const char *dir = getenv("STATE_DIRECTORY");

	if (cfg->knock.state_file)
		return cfg->knock.state_file;
	if (!dir || dir[0] != '/')
		dir = STATE_DIR_DEFAULT;
	/* STATE_DIRECTORY lists one path per StateDirectory= entry */
	snprintf(buf, len, "%.*s/%s", (int)strcspn(dir, ":"), dir, STATE_NAME);
	return buf;
}

/* Load the last run's replay state. Without it, knocks made before this
 * start open nothing: the last run may have accepted them. */
static void load_state(struct posternd *d)
{
	const char *path = replay_file_path(d->state);
	struct knock_clock now = posternd_clock();
	struct replay_header h;
	char err[ERR_LEN];
	bool writable = replay_file_writable(d->state, err, sizeof(err));

	/* A file posternd cannot keep up to date may be stale: what it says
	 * is kept, and knocks made before this start are refused as well. */
	if (!writable)
		log_event(LOG_WARNING, "state_error", NULL, "%s: replay state will "
			  "not survive a restart", err);
	switch (replay_file_load(d->state, &d->verifier.replay, now.boot_ms, &h,
				 err, sizeof(err))) {
	case REPLAY_LOADED:
		d->verifier.history = writable;
		knock_verifier_file_loaded(&d->verifier, &h, &now);
		log_msg(LOG_INFO, "replay state loaded from %s", path);
		break;
	case REPLAY_MISSING:
		log_msg(LOG_NOTICE, "no replay state in %s yet (first start?): "
			"only knocks made since this start open the gate", path);
		break;
	case REPLAY_CORRUPT:
		log_event(LOG_WARNING, "state_error", NULL, "ignoring the replay "
			  "state: %s; only knocks made since this start open the "
			  "gate", err);
		break;
	}
	/* A fresh file with what was loaded, its journal folded in. */
	knock_verifier_file_header(&d->verifier, &now, &h);
	if (!replay_file_rewrite(d->state, &d->verifier.replay, &h, err, sizeof(err))) {
		d->state_errors++;
		log_event(LOG_ERR, "state_error", NULL, "%s", err);
	}
}

static void notify_status(struct posternd *d)
{
	const uint64_t *c = d->verifier.counters;
	uint64_t refused = d->qstats.not_udp + d->qstats.bad_source, qdrop = 0, udrop = 0;
	char queue_full[32] = "unknown";
	bool known = nfqueue_kernel_drops(d->queue, &qdrop, &udrop);

	for (int r = KNOCK_OK + 1; r < KNOCK_REASONS; r++)
		refused += c[r];
	if (known)
		snprintf(queue_full, sizeof(queue_full), "%llu", (unsigned long long)qdrop);
	sd_notifyf(0, "STATUS=received %llu, accepted %llu, refused %llu "
		   "(length %llu, mac1 %llu, rate %llu, noise %llu, unknown key %llu, "
		   "expired %llu, skew %llu, replay %llu, target %llu, truncated %llu, "
		   "source %llu), nft errors %llu, state errors %llu, "
		   "kernel drops %llu (queue full %s, socket %llu, enobufs %llu)",
		   (unsigned long long)d->qstats.packets, (unsigned long long)c[KNOCK_OK],
		   (unsigned long long)refused,
		   (unsigned long long)(c[KNOCK_BAD_LENGTH] + c[KNOCK_BAD_VERSION] + d->qstats.not_udp),
		   (unsigned long long)c[KNOCK_BAD_MAC1], (unsigned long long)c[KNOCK_RATE_LIMITED],
		   (unsigned long long)(c[KNOCK_BAD_NOISE] + c[KNOCK_BAD_PAYLOAD]),
		   (unsigned long long)c[KNOCK_UNKNOWN_KEY], (unsigned long long)c[KNOCK_EXPIRED],
		   (unsigned long long)c[KNOCK_SKEW], (unsigned long long)c[KNOCK_REPLAY],
		   (unsigned long long)c[KNOCK_TARGET_REFUSED],
		   (unsigned long long)c[KNOCK_TRUNCATED],
		   (unsigned long long)d->qstats.bad_source,
		   (unsigned long long)d->nft_errors, (unsigned long long)d->state_errors,
		   (unsigned long long)(qdrop + udrop), queue_full,
		   (unsigned long long)udrop, (unsigned long long)d->qstats.enobufs);
	posternd_write_status(d, qdrop, udrop, known);
}

/* What a reload may not change while running. NULL if nothing. */
static const char *fixed_option(const struct server_config *old,
				const struct server_config *cfg)
{
	const char *a = old->knock.state_file, *b = cfg->knock.state_file;

	if (cfg->knock.queue != old->knock.queue)
		return "knock.queue";
	if ((a || b) && (!a || !b || strcmp(a, b) != 0))
		return "knock.state_file";
	if (strcmp(old->user, cfg->user) != 0)
		return "user";
	return NULL;
}

/* Everything is read and checked before anything changes: a bad file
 * leaves the running configuration, key and PSK whole. */
static bool reload_config(struct posternd *d, const char **kept, char *err)
{
	struct server_config *cfg = server_config_new(d->config_path, err, ERR_LEN);
	struct nft_set_ref s4, s6;
	struct log_throttle refusals = { 0 };
	struct secrets *sec = NULL;
	struct knock_clock now = posternd_clock();
	struct knock_seen *seen = NULL;
	const char *fixed;
	bool ok = false;

	*kept = "";
	if (!cfg)
		return false;
	if ((fixed = fixed_option(d->cfg, cfg)))
		snprintf(err, ERR_LEN, "%s changed; restart posternd to change it", fixed);
	else if ((sec = secrets_reload_server(cfg, d->cfg, &d->verifier.keys->s,
						kept, err, ERR_LEN)) &&
		 posternd_check_sets(d, cfg, &s4, &s6, err)) {
		ok = posternd_refusals_init(&refusals, cfg) &&
		     (seen = posternd_seen_for(d, cfg)) &&
		     knock_verifier_reload(&d->verifier, cfg, &sec->key, sec->psk, &now);
		if (!ok)
			snprintf(err, ERR_LEN, "out of memory");
	}
	secrets_free(sec);
	if (!ok) {
		log_throttle_free(&refusals);
		free(seen);
		server_config_delete(cfg);
		return false;
	}
	free(d->accepted_seen);
	d->accepted_seen = seen;
	d->status_retry_at = 0;
	log_throttle_free(&d->refusals);
	d->refusals = refusals;
	d->set4 = s4;
	d->set6 = s6;
	d->sets_checked = true;
	server_config_delete(d->cfg);
	d->cfg = cfg;
	return true;
}

static void reload(struct posternd *d)
{
	char err[ERR_LEN] = "";
	const char *kept;

	sd_notify(0, "RELOADING=1");
	if (reload_config(d, &kept, err))
		log_event(LOG_NOTICE, "daemon_reload", NULL,
			  "reloaded %s: %zu clients; %s", d->config_path,
			  d->cfg->n_clients, kept);
	else
		log_msg(LOG_ERR, "reload failed, keeping the running configuration, "
			"key and PSK: %s", err);
	sd_notify(0, "READY=1");
}

static int make_signalfd(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	return signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
}

/* Drain what is queued, one burst and one verdict at a time. False on a
 * socket error. */
static bool drain_queue(struct posternd *d)
{
	struct knock_packet burst[NFQUEUE_BURST];
	char err[ERR_LEN];

	for (int rounds = 0; rounds < 64; rounds++) {
		int n = nfqueue_receive(d->queue, burst, &d->qstats, err, sizeof(err));

		if (n < 0) {
			log_msg(LOG_ERR, "%s", err);
			return false;
		}
		if (n == 0)
			break;
		posternd_handle_burst(d, burst, n);
	}
	return true;
}

/* The main loop: returns the exit status. */
static int run(struct posternd *d)
{
	struct pollfd pfd[2];
	uint64_t next_status = 0, last_status = 0, status_packets = 0;
	uint64_t next_watchdog = 0, next_flush = 0;
	int sfd = make_signalfd(), status = 0;

	if (sfd < 0) {
		log_msg(LOG_ERR, "signalfd: %s", strerror(errno));
		return 1;
	}
	pfd[0] = (struct pollfd){ .fd = nfqueue_fd(d->queue), .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	sd_notify(0, "READY=1");
	for (;;) {
		struct signalfd_siginfo si;
		struct knock_clock now = posternd_clock();
		int timeout = 1000;

		/* counters changed since the last STATUS=: wake for the next */
		if (d->qstats.packets != status_packets)
			timeout = last_status + STATUS_MIN_INTERVAL_MS > now.boot_ms ?
				  (int)(last_status + STATUS_MIN_INTERVAL_MS - now.boot_ms) : 0;
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
			log_msg(LOG_ERR, "poll: %s", strerror(errno));
			status = 1;
			break;
		}
		if ((pfd[1].revents & POLLIN) && read(sfd, &si, sizeof(si)) == sizeof(si)) {
			if (si.ssi_signo != SIGHUP)
				break;
			reload(d);
		}
		if ((pfd[0].revents & POLLIN) && !drain_queue(d)) {
			status = 1;
			break;
		}
		now = posternd_clock();
		if (now.boot_ms >= next_flush) {	/* off the per-packet path */
			posternd_flush_logs(d, &now);
			next_flush = now.boot_ms + 1000;
		}
		if (d->qstats.packets != status_packets &&
		    now.boot_ms >= last_status + STATUS_MIN_INTERVAL_MS)
			next_status = now.boot_ms;
		if (now.boot_ms >= next_status) {
			notify_status(d);
			status_packets = d->qstats.packets;
			last_status = now.boot_ms;
			next_status = now.boot_ms + STATUS_INTERVAL_MS;
		}
		if (d->watchdog_usec && now.boot_ms >= next_watchdog) {
			sd_notify(0, "WATCHDOG=1");
			next_watchdog = now.boot_ms + d->watchdog_usec / 2000;
		}
	}
	sd_notify(0, "STOPPING=1");
	notify_status(d);
	close(sfd);
	return status;
}

static void usage(FILE *f)
{
	fprintf(f, "Usage: %s [-c FILE] [-t | --print-nft]\n"
		"  -c FILE      configuration (default %s)\n"
		"  -t           check the configuration, keys and nft sets, then exit\n"
		"  --print-nft  print an nftables ruleset for this configuration\n"
		"  -h, --help   show this help\n"
		"  -V, --version\n", PROG_NAME, POSTERN_SERVER_CONFIG);
}

/* posternd -t: what a start would check, and whether the replay state is
 * usable. */
static void print_warning(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "%s: warning: %s\n", PROG_NAME, msg);
}

static int test_config(struct posternd *d, const char *state)
{
	char err[ERR_LEN];
	struct replay_file *f = replay_file_open(state, err, sizeof(err));

	if (!f && errno == ENOENT)
		fprintf(stderr, "%s: note: the directory of %s is made at start "
			"(by StateDirectory= under systemd, by posternd when it "
			"starts as root)\n", PROG_NAME, state);
	else if (!f)
		fprintf(stderr, "%s: warning: %s: replay state would not survive a "
			"restart\n", PROG_NAME, err);
	replay_file_close(f);
	server_config_lint(d->cfg, (int64_t)(posternd_clock().wall_ms / 1000),
			   print_warning, NULL);
	printf("%s: %s is valid: %zu client%s, knock port %u, queue %u, state %s\n",
	       PROG_NAME, d->config_path, d->cfg->n_clients,
	       d->cfg->n_clients == 1 ? "" : "s", d->cfg->knock.port,
	       d->cfg->knock.queue, state);
	return 0;
}

/* The state file's directory, made for the user posternd becomes when
 * it runs as root and the directory is not there yet (outside systemd;
 * under systemd StateDirectory= makes it). */
static void make_state_dir(const char *state, const struct privdrop *priv)
{
	char dir[4096];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", state);
	slash = strrchr(dir, '/');
	if (!slash || slash == dir || !priv->switch_user)
		return;
	*slash = '\0';
	if (mkdir(dir, 0700) == 0 && chown(dir, priv->uid, priv->gid) < 0)
		log_msg(LOG_WARNING, "%s: %s", dir, strerror(errno));
}

/* The steps that need privilege, then the drop, before the first packet. */
static bool bind_and_drop(struct posternd *d, const struct privdrop *priv,
			  const char *state, char *err)
{
	make_state_dir(state, priv);
	d->state = replay_file_open(state, err, ERR_LEN);
	if (!d->state)
		log_event(LOG_WARNING, "state_error", NULL, "%s; replay state will "
			  "not survive a restart, and after one only knocks made "
			  "since open the gate", err);
	d->queue = nfqueue_open(d->cfg->knock.queue, err, ERR_LEN);
	return d->queue && privdrop_apply(priv, err, ERR_LEN);
}

static int serve(struct posternd *d, struct secrets *sec,
		 const struct privdrop *priv, const char *state)
{
	struct knock_clock now = posternd_clock();
	char err[ERR_LEN];
	int status;

	d->sets_checked = true;
	if (!bind_and_drop(d, priv, state, err)) {
		log_msg(LOG_ERR, "%s", err);
		return 1;
	}
	if (!knock_verifier_init(&d->verifier, &sec->key, sec->psk, d->cfg, &now) ||
	    !posternd_refusals_init(&d->refusals, d->cfg) ||
	    !(d->accepted_seen = posternd_seen_for(d, d->cfg)) ||
	    !log_throttle_init(&d->errors, THROTTLE_ERRORS)) {
		log_msg(LOG_ERR, "out of memory");
		return 1;
	}
	if (d->state)
		load_state(d);
	sd_watchdog_enabled(0, &d->watchdog_usec);
	log_event(LOG_INFO, "daemon_start", NULL,
		  "listening on queue %u for knocks to UDP %u; %zu clients",
		  d->cfg->knock.queue, d->cfg->knock.port, d->cfg->n_clients);
	status = run(d);
	log_event(LOG_INFO, "daemon_stop", NULL, "stopping");
	return status;
}

int main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "print-nft", no_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	struct posternd d = { .config_path = POSTERN_SERVER_CONFIG };
	struct secrets *sec = NULL;
	struct privdrop priv;
	char err[ERR_LEN] = "", state_buf[4096];
	const char *state;
	bool test = false, print = false;
	int c, status = 1;

	while ((c = getopt_long(argc, argv, "c:thV", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': d.config_path = optarg; break;
		case 't': test = true; break;
		case 'P': print = true; break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("%s %s\n", PROG_NAME, POSTERN_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || (test && print)) {
		usage(stderr);
		return 2;
	}
	no_core_dumps();
	log_open(PROG_NAME, LOG_INFO, LOG_TARGET_AUTO);
	if (!crypto_init()) {
		fprintf(stderr, "%s: libgcrypt is too old\n", PROG_NAME);
		return 1;
	}
	d.cfg = server_config_new(d.config_path, err, ERR_LEN);
	if (!d.cfg) {
		fprintf(stderr, "%s: %s\n", PROG_NAME, err);
		return 1;
	}
	if (print) {
		print_nft(stdout, d.cfg);
		server_config_delete(d.cfg);
		return 0;
	}
	state = state_path(d.cfg, state_buf, sizeof(state_buf));
	if (!(sec = secrets_load_server(d.cfg, err, sizeof(err))) ||
	    !privdrop_init(&priv, d.cfg->user, d.config_path, err, sizeof(err)) ||
	    !(d.nft = nft_conn_open(err, sizeof(err))) ||
	    !posternd_check_sets(&d, d.cfg, &d.set4, &d.set6, err))
		fprintf(stderr, "%s: %s\n", PROG_NAME, err);
	else if (test)
		status = test_config(&d, state);
	else
		status = serve(&d, sec, &priv, state);
	secrets_free(sec);
	knock_verifier_free(&d.verifier);
	log_throttle_free(&d.refusals);
	log_throttle_free(&d.errors);
	free(d.accepted_seen);
	replay_file_close(d.state);
	nfqueue_close(d.queue);
	if (d.nft)
		nft_conn_close(d.nft);
	server_config_delete(d.cfg);
	return status;
}
