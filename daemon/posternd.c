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
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ip_udp.h"
#include "keys.h"
#include "knock_verify.h"
#include "log.h"
#include "nfqueue.h"
#include "nft.h"
#include "nocore.h"
#include "print_nft.h"
#include "privdrop.h"
#include "secrets.h"

#define PROG_NAME "posternd"
#define ERR_LEN 512
#define STATUS_INTERVAL_MS 5000

struct posternd {
	const char *config_path;
	struct server_config *cfg;
	struct knock_verifier verifier;
	struct nft_conn *nft;
	struct nft_set_ref set4, set6;
	struct nfqueue *queue;
	struct nfqueue_stats qstats;
	uint64_t nft_errors;
	uint64_t watchdog_usec;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void set_refs(struct posternd *d)
{
	const struct knock_config *k = &d->cfg->knock;

	d->set4 = (struct nft_set_ref){ .family = k->nft_family, .table = k->nft_table,
					.set = k->nft_set4, .af = AF_INET };
	d->set6 = (struct nft_set_ref){ .family = k->nft_family, .table = k->nft_table,
					.set = k->nft_set6, .af = AF_INET6 };
}

/* The sets the family can hold: ip has no IPv6 set, ip6 no IPv4 set. */
static bool uses_v4(const struct server_config *cfg)
{
	return strcmp(cfg->knock.nft_family, "ip6") != 0;
}

static bool uses_v6(const struct server_config *cfg)
{
	return strcmp(cfg->knock.nft_family, "ip") != 0;
}

static bool check_sets(struct posternd *d, char *err)
{
	set_refs(d);
	if (uses_v4(d->cfg) && !nft_set_check(d->nft, &d->set4, err, ERR_LEN))
		return false;
	if (uses_v6(d->cfg) && !nft_set_check(d->nft, &d->set6, err, ERR_LEN))
		return false;
	return true;
}

static void join_ports(char *out, size_t len, const struct client_entry *c)
{
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < c->n_open && off < len; i++)
		off += (size_t)snprintf(out + off, len - off, "%s%u", i ? "," : "",
					c->open[i]);
}

static void log_knock(int prio, const char *event, const struct knock_decision *dec,
		      const uint8_t src[16], const char *reason)
{
	char srct[46], tgtt[46], ports[256];
	char f_client[128], f_src[64], f_tgt[64], f_ports[300], f_reason[64];
	const char *fields[] = { f_client, f_src, f_tgt, f_ports, f_reason, NULL };

	addr_to_text(srct, src);
	addr_to_text(tgtt, is_zero_ct(dec->target, 16) ? src : dec->target);
	join_ports(ports, sizeof(ports), dec->client);
	snprintf(f_client, sizeof(f_client), "POSTERN_CLIENT=%s", dec->client->name);
	snprintf(f_src, sizeof(f_src), "POSTERN_SRC=%s", srct);
	snprintf(f_tgt, sizeof(f_tgt), "POSTERN_TARGET=%s", tgtt);
	snprintf(f_ports, sizeof(f_ports), "POSTERN_PORTS=%s", ports);
	snprintf(f_reason, sizeof(f_reason), "POSTERN_REASON=%s", reason);
	if (prio == LOG_NOTICE)
		log_event(prio, event, fields, "knock from %s (%s): opened %s port %s for %u s",
			  dec->client->name, srct, tgtt, ports, dec->open_seconds);
	else
		log_event(prio, event, fields, "knock from %s (%s) refused: %s",
			  dec->client->name, srct, reason);
}

/* One nf_tables batch: target . port for every port the client may open. */
static bool open_gate(struct posternd *d, const struct knock_decision *dec)
{
	struct nft_element el[64];
	const struct nft_set_ref *set;
	size_t n = dec->client->n_open < 64 ? dec->client->n_open : 64;
	char err[ERR_LEN];
	bool v4 = addr_is_v4(dec->target);

	if (v4 ? !uses_v4(d->cfg) : !uses_v6(d->cfg)) {
		log_msg(LOG_WARNING, "knock from %s: no %s set in nft family %s",
			dec->client->name, v4 ? "IPv4" : "IPv6", d->cfg->knock.nft_family);
		return false;
	}
	set = v4 ? &d->set4 : &d->set6;
	for (size_t i = 0; i < n; i++) {
		memset(&el[i], 0, sizeof(el[i]));
		if (v4)
			memcpy(el[i].addr, dec->target + 12, 4);
		else
			memcpy(el[i].addr, dec->target, 16);
		el[i].port = dec->client->open[i];
	}
	if (nft_set_open(d->nft, set, el, n, dec->open_seconds * 1000u, err, sizeof(err)))
		return true;
	d->nft_errors++;
	log_event(LOG_ERR, "nft_error", (const char *const[]){ NULL }, "%s", err);
	return false;
}

static void handle_knock(struct posternd *d, const struct queued_knock *k)
{
	struct knock_decision dec;
	enum knock_reason r;

	r = knock_verify(&d->verifier, k->data, k->len, k->src, now_ms(), &dec);
	if (r == KNOCK_OK) {
		if (open_gate(d, &dec))
			log_knock(LOG_NOTICE, "knock_accepted", &dec, k->src, "ok");
	} else if (dec.client) {
		/* Authenticated but refused: worth a line. Anything less is
		 * only counted, so a flood cannot flood the journal. */
		log_knock(LOG_WARNING, "knock_rejected", &dec, k->src,
			  knock_reason_name(r));
	}
}

static void notify_status(struct posternd *d)
{
	const uint64_t *c = d->verifier.counters;
	uint64_t refused = 0, qdrop = 0, udrop = 0;

	for (int r = KNOCK_OK + 1; r < KNOCK_REASONS; r++)
		refused += c[r];
	nfqueue_kernel_drops(d->queue, &qdrop, &udrop);
	sd_notifyf(0, "STATUS=received %llu, accepted %llu, refused %llu "
		   "(length %llu, mac1 %llu, rate %llu, noise %llu, unknown key %llu, "
		   "expired %llu, skew %llu, replay %llu, target %llu), nft errors %llu, "
		   "kernel drops %llu",
		   (unsigned long long)d->qstats.packets, (unsigned long long)c[KNOCK_OK],
		   (unsigned long long)refused,
		   (unsigned long long)(c[KNOCK_BAD_LENGTH] + c[KNOCK_BAD_VERSION] + d->qstats.not_udp),
		   (unsigned long long)c[KNOCK_BAD_MAC1], (unsigned long long)c[KNOCK_RATE_LIMITED],
		   (unsigned long long)(c[KNOCK_BAD_NOISE] + c[KNOCK_BAD_PAYLOAD]),
		   (unsigned long long)c[KNOCK_UNKNOWN_KEY], (unsigned long long)c[KNOCK_EXPIRED],
		   (unsigned long long)c[KNOCK_SKEW], (unsigned long long)c[KNOCK_REPLAY],
		   (unsigned long long)c[KNOCK_TARGET_REFUSED], (unsigned long long)d->nft_errors,
		   (unsigned long long)(qdrop + udrop));
}

static void reload(struct posternd *d)
{
	char err[ERR_LEN];
	struct server_config *cfg = server_config_new(d->config_path, err, ERR_LEN);
	struct server_config *old = d->cfg;

	sd_notify(0, "RELOADING=1");
	if (!cfg) {
		log_msg(LOG_ERR, "reload failed, keeping the running configuration: %s", err);
	} else if (cfg->knock.queue != old->knock.queue) {
		log_msg(LOG_ERR, "reload failed: knock.queue changed (%u → %u); restart "
			"posternd to move queues", old->knock.queue, cfg->knock.queue);
		server_config_delete(cfg);
	} else if (!knock_verifier_reload(&d->verifier, cfg)) {
		log_msg(LOG_ERR, "reload failed: out of memory");
		server_config_delete(cfg);
	} else {
		d->cfg = cfg;
		set_refs(d);
		if (!check_sets(d, err))
			log_msg(LOG_ERR, "%s", err);
		server_config_delete(old);
		log_event(LOG_NOTICE, "daemon_reload", (const char *const[]){ NULL },
			  "reloaded %s: %zu clients", d->config_path, cfg->n_clients);
	}
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

/* The main loop: returns the exit status. */
static int run(struct posternd *d)
{
	struct queued_knock burst[NFQUEUE_BURST];
	struct pollfd pfd[2];
	uint64_t next_status = 0, next_watchdog = 0, t;
	char err[ERR_LEN];
	int sfd = make_signalfd();

	if (sfd < 0) {
		log_msg(LOG_ERR, "signalfd: %s", strerror(errno));
		return 1;
	}
	pfd[0] = (struct pollfd){ .fd = nfqueue_fd(d->queue), .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	sd_notify(0, "READY=1");
	for (;;) {
		if (poll(pfd, 2, 1000) < 0 && errno != EINTR) {
			log_msg(LOG_ERR, "poll: %s", strerror(errno));
			break;
		}
		if (pfd[1].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP)
					reload(d);
				else
					break;
			}
		}
		if (pfd[0].revents & POLLIN) {
			/* Drain what is queued, one burst and one verdict at a time. */
			for (int rounds = 0; rounds < 64; rounds++) {
				int n = nfqueue_receive(d->queue, burst, &d->qstats, err, sizeof(err));

				if (n < 0) {
					log_msg(LOG_ERR, "%s", err);
					close(sfd);
					return 1;
				}
				for (int i = 0; i < n; i++)
					handle_knock(d, &burst[i]);
				if (n == 0)
					break;
			}
		}
		t = monotonic_ms();
		if (t >= next_status) {
			notify_status(d);
			next_status = t + STATUS_INTERVAL_MS;
		}
		if (d->watchdog_usec && t >= next_watchdog) {
			sd_notify(0, "WATCHDOG=1");
			next_watchdog = t + d->watchdog_usec / 2000;
		}
	}
	sd_notify(0, "STOPPING=1");
	notify_status(d);
	close(sfd);
	return 0;
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
	char err[ERR_LEN];
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
	if (!(sec = secrets_load_server(d.cfg, err, sizeof(err))) ||
	    !privdrop_init(&priv, d.cfg->user, d.config_path, err, sizeof(err)) ||
	    !(d.nft = nft_conn_open(err, sizeof(err))) || !check_sets(&d, err)) {
		fprintf(stderr, "%s: %s\n", PROG_NAME, err);
		goto out;
	}
	if (test) {
		printf("%s: %s is valid: %zu client%s, knock port %u, queue %u\n",
		       PROG_NAME, d.config_path, d.cfg->n_clients,
		       d.cfg->n_clients == 1 ? "" : "s", d.cfg->knock.port,
		       d.cfg->knock.queue);
		status = 0;
		goto out;
	}
	/* The last steps that need privilege; then drop it, before the
	 * first packet is read. */
	if (!(d.queue = nfqueue_open(d.cfg->knock.queue, err, sizeof(err))) ||
	    !privdrop_apply(&priv, err, sizeof(err))) {
		log_msg(LOG_ERR, "%s", err);
		goto out;
	}
	if (!knock_verifier_init(&d.verifier, &sec->key, sec->psk, d.cfg, now_ms())) {
		log_msg(LOG_ERR, "out of memory");
		goto out;
	}
	secrets_free(sec);
	sec = NULL;
	sd_watchdog_enabled(0, &d.watchdog_usec);
	log_event(LOG_INFO, "daemon_start", (const char *const[]){ NULL },
		  "listening on queue %u for knocks to UDP %u; %zu clients",
		  d.cfg->knock.queue, d.cfg->knock.port, d.cfg->n_clients);
	status = run(&d);
	log_event(LOG_INFO, "daemon_stop", (const char *const[]){ NULL }, "stopping");
	knock_verifier_free(&d.verifier);
out:
	secrets_free(sec);
	nfqueue_close(d.queue);
	if (d.nft)
		nft_conn_close(d.nft);
	server_config_delete(d.cfg);
	return status;
}
