/*
 * posternd's work on a burst of queued knocks: verify each, make the
 * replay state of the accepted ones durable, open the gate for them, and
 * say so in the journal, once per knock accepted and at most once a minute
 * per client and reason refused.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "ip_udp.h"
#include "keys.h"
#include "log.h"
#include "posternd.h"

static uint64_t clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

struct knock_clock posternd_clock(void)
{
	return (struct knock_clock){ .wall_ms = clock_ms(CLOCK_REALTIME),
				     .boot_ms = clock_ms(CLOCK_BOOTTIME) };
}

/* The sets the family can hold: ip has no IPv6 set, ip6 no IPv4 set. */
static bool uses_family(const struct server_config *cfg, bool v6)
{
	return strcmp(cfg->knock.nft_family, v6 ? "ip" : "ip6") != 0;
}

bool posternd_check_sets(struct posternd *d, const struct server_config *cfg,
			 struct nft_set_ref *s4, struct nft_set_ref *s6, char *err)
{
	const struct knock_config *k = &cfg->knock;

	*s4 = (struct nft_set_ref){ .family = k->nft_family, .table = k->nft_table,
				    .set = k->nft_set4, .af = AF_INET };
	*s6 = (struct nft_set_ref){ .family = k->nft_family, .table = k->nft_table,
				    .set = k->nft_set6, .af = AF_INET6 };
	if (uses_family(cfg, false) && !nft_set_check(d->nft, s4, err, ERR_LEN))
		return false;
	return !uses_family(cfg, true) || nft_set_check(d->nft, s6, err, ERR_LEN);
}

bool posternd_refusals_init(struct log_throttle *t, const struct server_config *cfg)
{
	/* one subject per client and reason, then one per reason for
	 * unlisted keys */
	return log_throttle_init(t, (cfg->n_clients + 1) * KNOCK_REASONS);
}

/* An error that repeats with every knock (the table is gone, the disk is
 * full) is written once a minute, with how often it happened. */
static void log_error(struct posternd *d, int subject, const char *event,
		      const char *err)
{
	struct knock_clock now = posternd_clock();
	uint64_t held;

	if (log_throttle_event(&d->errors, (size_t)subject, now.boot_ms, &held))
		log_event(LOG_ERR, event, NULL, held ? "%s (and %llu more times "
			  "in the last minute)" : "%s", err, (unsigned long long)held);
}

static void join_ports(char *out, size_t len, const struct client_entry *c)
{
	size_t off = 0;

	out[0] = '\0';
	for (size_t i = 0; i < c->n_open && off < len; i++)
		off += (size_t)snprintf(out + off, len - off, "%s%u", i ? "," : "",
					c->open[i]);
}

static void log_accepted(const struct knock_decision *dec,
			 const struct ip_addr *src)
{
	char srct[46], tgtt[46], ports[CONFIG_MAX_OPEN * 6];
	char f_client[128], f_src[64], f_tgt[64], f_ports[sizeof(ports) + 16];
	const char *fields[] = { f_client, f_src, f_tgt, f_ports,
				 "POSTERN_REASON=ok", NULL };

	ip_addr_to_text(srct, src);
	ip_addr_to_text(tgtt, &dec->target);
	join_ports(ports, sizeof(ports), dec->client);
	snprintf(f_client, sizeof(f_client), "POSTERN_CLIENT=%s", dec->client->name);
	snprintf(f_src, sizeof(f_src), "POSTERN_SRC=%s", srct);
	snprintf(f_tgt, sizeof(f_tgt), "POSTERN_TARGET=%s", tgtt);
	snprintf(f_ports, sizeof(f_ports), "POSTERN_PORTS=%s", ports);
	log_event(LOG_NOTICE, "knock_accepted", fields,
		  "knock from %s (%s): opened %s port %s for %u s",
		  dec->client->name, srct, tgtt, ports, dec->open_seconds);
}

/* Who a refusal is about, as text and as a journal field: a listed
 * client by name, an unlisted key by the key itself (public, not a
 * secret: the admin needs it to allow the key). */
static void refusal_subject(const struct knock_decision *dec, char *who,
			    size_t who_len, char *field, size_t field_len)
{
	char key[KEY_B64_LEN + 1];

	if (dec->client) {
		snprintf(who, who_len, "%s", dec->client->name);
		snprintf(field, field_len, "POSTERN_CLIENT=%s", dec->client->name);
		return;
	}
	key_to_base64(key, dec->key);
	snprintf(who, who_len, "unlisted key %s", key);
	snprintf(field, field_len, "POSTERN_KEY=%s", key);
}

static void log_refused(struct posternd *d, const struct knock_decision *dec,
			const struct ip_addr *src, enum knock_reason r,
			const struct knock_clock *now)
{
	size_t client = dec->client ? (size_t)(dec->client - d->cfg->clients)
				    : d->cfg->n_clients;
	char who[128], srct[46], f_who[128], f_src[64], f_reason[64], f_count[48];
	const char *fields[] = { f_who, f_src, f_reason, f_count, NULL };
	uint64_t held;

	if (!log_throttle_event(&d->refusals, client * KNOCK_REASONS + r,
				now->boot_ms, &held))
		return;
	refusal_subject(dec, who, sizeof(who), f_who, sizeof(f_who));
	ip_addr_to_text(srct, src);
	snprintf(f_src, sizeof(f_src), "POSTERN_SRC=%s", srct);
	snprintf(f_reason, sizeof(f_reason), "POSTERN_REASON=%s", knock_reason_name(r));
	snprintf(f_count, sizeof(f_count), "POSTERN_COUNT=%llu",
		 (unsigned long long)held + 1);
	if (held)
		log_event(LOG_WARNING, "knock_rejected", fields,
			  "knock from %s (%s) refused: %s (and %llu more since "
			  "the last such line)", who, srct, knock_reason_name(r),
			  (unsigned long long)held);
	else
		log_event(LOG_WARNING, "knock_rejected", fields,
			  "knock from %s (%s) refused: %s", who, srct,
			  knock_reason_name(r));
}

void posternd_flush_logs(struct posternd *d, const struct knock_clock *now)
{
	const struct server_config *cfg = d->cfg;
	uint64_t held;

	for (size_t s = 0; s < d->refusals.n; s++) {
		size_t client = s / KNOCK_REASONS;
		const char *reason = knock_reason_name((enum knock_reason)(s % KNOCK_REASONS));
		char f_reason[64], f_count[48], f_client[128];
		const char *fields[] = { f_reason, f_count, f_client, NULL };
		const char *who = client < cfg->n_clients ?
				  cfg->clients[client].name : "unlisted keys";

		if (!log_throttle_due(&d->refusals, s, now->boot_ms, &held))
			continue;
		snprintf(f_reason, sizeof(f_reason), "POSTERN_REASON=%s", reason);
		snprintf(f_count, sizeof(f_count), "POSTERN_COUNT=%llu",
			 (unsigned long long)held);
		snprintf(f_client, sizeof(f_client), "POSTERN_CLIENT=%s", who);
		if (client == cfg->n_clients)
			fields[2] = NULL;
		log_event(LOG_WARNING, "knock_rejected", fields,
			  "knocks from %s refused: %s, %llu more in the last minute",
			  who, reason, (unsigned long long)held);
	}
}

_Static_assert(CONFIG_MAX_OPEN <= NFT_MAX_ELEMENTS,
	       "a client's open list must fit one nft_set_open batch");

/*
 * The accepted knocks of a burst that open the same family's set for the
 * same time go in one nf_tables batch: target . port for every port each
 * client may open. A transaction costs more than the elements in it, so
 * a burst of knocks (a fleet's Ansible run) costs one, not one per knock.
 */
struct gate_batch {
	bool v6;
	unsigned int open_seconds;
	struct nft_element el[NFT_MAX_ELEMENTS];
	size_t n_el;
	int knock[NFQUEUE_BURST];	/* indexes into the burst */
	size_t n_knocks;
};

static bool batch_takes(const struct gate_batch *b, const struct knock_decision *dec)
{
	return b->v6 == dec->target.v6 && b->open_seconds == dec->open_seconds &&
	       b->n_el + dec->client->n_open <= NFT_MAX_ELEMENTS;
}

static void batch_add(struct gate_batch *b, const struct knock_decision *dec, int i)
{
	const struct ip_addr *t = &dec->target;

	for (size_t k = 0; k < dec->client->n_open; k++) {
		struct nft_element *e = &b->el[b->n_el++];

		memset(e, 0, sizeof(*e));
		memcpy(e->addr, t->v6 ? t->b : t->b + 12, t->v6 ? 16 : 4);
		e->port = dec->client->open[k];
	}
	b->knock[b->n_knocks++] = i;
}

/* False, logged and counted (once per knock in it), when the batch failed. */
static bool open_gate(struct posternd *d, const struct gate_batch *b)
{
	char err[ERR_LEN], err2[ERR_LEN];

	/* After an error, the sets may have been deleted or re-made with
	 * another type: look again before writing to them. */
	if (!d->sets_checked) {
		if (!posternd_check_sets(d, d->cfg, &d->set4, &d->set6, err))
			goto fail;
		d->sets_checked = true;
	}
	if (nft_set_open(d->nft, b->v6 ? &d->set6 : &d->set4, b->el, b->n_el,
			 b->open_seconds * 1000u, err, sizeof(err)))
		return true;
	/* A set or table that is gone is the usual cause: then say so, with
	 * the command that makes it again. */
	d->sets_checked = posternd_check_sets(d, d->cfg, &d->set4, &d->set6, err2);
	if (!d->sets_checked)
		snprintf(err, sizeof(err), "%s", err2);
fail:
	d->nft_errors += b->n_knocks;
	log_error(d, THROTTLE_NFT, "nft_error", err);
	return false;
}

/* A knock for a family the configured nft family has no set for. */
static bool family_ok(struct posternd *d, const struct knock_decision *dec)
{
	char err[ERR_LEN];

	if (uses_family(d->cfg, dec->target.v6))
		return true;
	snprintf(err, sizeof(err), "knock from %s: no %s set in nft family %s",
		 dec->client->name, dec->target.v6 ? "IPv6" : "IPv4",
		 d->cfg->knock.nft_family);
	log_error(d, THROTTLE_NFT, "nft_error", err);
	return false;
}

static void accepted(struct posternd *d, const struct knock_decision *dec,
		     const struct ip_addr *src)
{
	size_t i = (size_t)(dec->client - d->cfg->clients);

	d->accepted_seen[i] = (struct knock_seen){
		posternd_clock().wall_ms / 1000, *src };
	log_accepted(dec, src);
}

/* Open the gate for every accepted knock of the burst, in as few batches
 * as their families and open times allow, in the order they came. */
static void open_accepted(struct posternd *d, const struct knock_decision *dec,
			  const enum knock_reason *r, const struct knock_packet *pkts,
			  int n)
{
	bool done[NFQUEUE_BURST] = { false };
	struct gate_batch b;

	for (int i = 0; i < n; i++) {
		if (r[i] != KNOCK_OK || done[i] || !family_ok(d, &dec[i]))
			continue;
		b.v6 = dec[i].target.v6;
		b.open_seconds = dec[i].open_seconds;
		b.n_el = b.n_knocks = 0;
		for (int j = i; j < n; j++) {
			if (r[j] == KNOCK_OK && !done[j] && batch_takes(&b, &dec[j])) {
				batch_add(&b, &dec[j], j);
				done[j] = true;
			}
		}
		if (open_gate(d, &b))
			for (size_t k = 0; k < b.n_knocks; k++)
				accepted(d, &dec[b.knock[k]], &pkts[b.knock[k]].src);
	}
}

static void state_error(struct posternd *d, const char *err)
{
	d->state_errors++;
	log_error(d, THROTTLE_STATE, "state_error", err);
}

/* Before any gate opens: a restart must see every knock accepted. */
static void record_state(struct posternd *d, const struct knock_clock *now)
{
	struct replay_table *t = &d->verifier.replay;
	struct replay_header h;
	char err[ERR_LEN];

	if (!d->state || (!t->n_fresh && !t->overflow))
		return;
	knock_verifier_file_header(&d->verifier, now, &h);
	if (!replay_file_record(d->state, t, &h, err, sizeof(err)))
		state_error(d, err);
}

/* After the gate opened: a long journal is written whole again, and what
 * was written is made durable. */
static void settle_state(struct posternd *d, const struct knock_clock *now)
{
	struct replay_header h;
	char err[ERR_LEN];

	if (!d->state)
		return;
	knock_verifier_file_header(&d->verifier, now, &h);
	if (!replay_file_compact(d->state, &d->verifier.replay, &h, err, sizeof(err)))
		state_error(d, err);
	replay_file_sync(d->state);
}

void posternd_handle_burst(struct posternd *d, const struct knock_packet *pkts,
			   int n)
{
	struct knock_decision dec[NFQUEUE_BURST];
	enum knock_reason r[NFQUEUE_BURST];
	struct knock_clock now = posternd_clock();

	for (int i = 0; i < n; i++) {
		r[i] = knock_verify(&d->verifier, &pkts[i], &now, &dec[i]);
		if (r[i] != KNOCK_OK)
			d->refused_seen[r[i]] = (struct knock_seen){
				now.wall_ms / 1000, pkts[i].src };
	}
	record_state(d, &now);
	open_accepted(d, dec, r, pkts, n);
	/* Only a knock that authenticated is worth a line; the rest is
	 * counted, so that a flood cannot flood the journal. */
	for (int i = 0; i < n; i++)
		if (r[i] != KNOCK_OK && dec[i].authenticated)
			log_refused(d, &dec[i], &pkts[i].src, r[i], &now);
	settle_state(d, &now);
}
