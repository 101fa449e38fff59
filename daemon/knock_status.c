/*
 * posternd's status file (status_file.h): every counter of STATUS= under a
 * name of its own, when and from where each kind of refusal was last seen,
 * and each client's last accepted knock. postern gate status and gate ls
 * read it; an admin sees at once that the knocks of a device arrive and
 * why they are refused (mac1: the PSK or the server key it knocks with is
 * not this server's).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "posternd.h"
#include "status_file.h"

struct knock_seen *posternd_seen_for(const struct posternd *d,
				     const struct server_config *cfg)
{
	struct knock_seen *seen = calloc(cfg->n_clients + 1, sizeof(*seen));

	if (!seen || !d->cfg || !d->accepted_seen)
		return seen;
	for (size_t i = 0; i < cfg->n_clients; i++)
		for (size_t j = 0; j < d->cfg->n_clients; j++)
			if (!strcmp(cfg->clients[i].name, d->cfg->clients[j].name) &&
			    !memcmp(cfg->clients[i].public_key,
				    d->cfg->clients[j].public_key, KEY_LEN))
				seen[i] = d->accepted_seen[j];
	return seen;
}

static void add_seen(struct status_text *t, const char *key,
		     const struct knock_seen *s)
{
	char src[46];

	if (!s->wall_s)
		return;
	ip_addr_to_text(src, &s->src);
	status_add(t, "%s %llu %s\n", key, (unsigned long long)s->wall_s, src);
}

void posternd_write_status(struct posternd *d, uint64_t qdrop, uint64_t udrop,
			   bool drops_known)
{
	const uint64_t *c = d->verifier.counters;
	struct status_text t = { 0 };
	char key[128], err[ERR_LEN];

	uint64_t now = posternd_clock().boot_ms;

	if (now < d->status_retry_at)
		return;
	status_add(&t, "daemon posternd\npid %ld\nupdated %llu\n", (long)getpid(),
		   (unsigned long long)(posternd_clock().wall_ms / 1000));
	status_add(&t, "received %llu\naccepted %llu\n",
		   (unsigned long long)d->qstats.packets,
		   (unsigned long long)c[KNOCK_OK]);
	for (int r = KNOCK_OK + 1; r < KNOCK_REASONS; r++) {
		status_add(&t, "refused.%s %llu\n", knock_reason_name(r),
			   (unsigned long long)c[r]);
		snprintf(key, sizeof(key), "last.%s", knock_reason_name(r));
		add_seen(&t, key, &d->refused_seen[r]);
	}
	status_add(&t, "refused.not_udp %llu\nrefused.bad_source %llu\n"
		   "nft_errors %llu\nstate_errors %llu\nenobufs %llu\n",
		   (unsigned long long)d->qstats.not_udp,
		   (unsigned long long)d->qstats.bad_source,
		   (unsigned long long)d->nft_errors,
		   (unsigned long long)d->state_errors,
		   (unsigned long long)d->qstats.enobufs);
	if (drops_known)
		status_add(&t, "kernel.queue_full %llu\nkernel.socket %llu\n",
			   (unsigned long long)qdrop, (unsigned long long)udrop);
	for (size_t i = 0; i < d->cfg->n_clients; i++) {
		snprintf(key, sizeof(key), "client.%s.accepted",
			 d->cfg->clients[i].name);
		add_seen(&t, key, &d->accepted_seen[i]);
	}
	if (status_file_write(d->cfg->knock.status_file, &t, err, sizeof(err))) {
		d->status_warned = false;
	} else {
		/* The daemon works without it, gate status does not. No
		 * directory: run by hand, outside the unit that makes it. */
		d->status_retry_at = now + STATUS_RETRY_MS;
		if (errno != ENOENT && !d->status_warned)
			log_msg(LOG_WARNING, "status file not written (postern "
				"gate status will not see posternd; trying again "
				"each minute): %s", err);
		d->status_warned = true;
	}
	status_text_free(&t);
}
