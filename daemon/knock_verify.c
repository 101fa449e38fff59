/* posternd's knock pipeline: every check of a knock, in order. */
#include "knock_verify.h"

#include <stdlib.h>
#include <string.h>

bool knock_verifier_init(struct knock_verifier *v,
			 const struct noise_keypair *server,
			 const uint8_t psk[KEY_LEN],
			 const struct server_config *cfg, uint64_t now_ms)
{
	uint8_t key[HASH_LEN];
	bool ok;

	memset(v, 0, sizeof(*v));
	v->server = *server;
	memcpy(v->psk, psk, KEY_LEN);
	knock_mac1_key(key, server->pub);
	ok = keyed_blake2s_init(&v->mac1, key);
	wipe(key, sizeof(key));
	v->start_ms = now_ms;
	v->cfg = cfg;
	v->last_ms = calloc(cfg->n_clients ? cfg->n_clients : 1, sizeof(*v->last_ms));
	ratelimit_init(&v->rl, KNOCK_RATE_PER_SECOND, KNOCK_RATE_BURST);
	return ok && v->last_ms != NULL;
}

bool knock_verifier_reload(struct knock_verifier *v,
			   const struct server_config *cfg)
{
	uint64_t *last = calloc(cfg->n_clients ? cfg->n_clients : 1, sizeof(*last));

	if (!last)
		return false;
	for (size_t i = 0; i < cfg->n_clients; i++) {
		const struct client_entry *old =
			server_config_find_client(v->cfg, cfg->clients[i].public_key);

		if (old)
			last[i] = v->last_ms[old - v->cfg->clients];
	}
	free(v->last_ms);
	v->last_ms = last;
	v->cfg = cfg;
	return true;
}

void knock_verifier_free(struct knock_verifier *v)
{
	keyed_blake2s_free(&v->mac1);
	free(v->last_ms);
	wipe(v, sizeof(*v));
}

static enum knock_reason check_time(const struct knock_verifier *v, size_t i,
				    uint64_t ts, uint64_t now_ms)
{
	uint64_t window = (uint64_t)v->cfg->knock.window * 1000;
	uint64_t skew = ts > now_ms ? ts - now_ms : now_ms - ts;

	if (skew > window)
		return KNOCK_SKEW;
	/* Strictly newer than the last knock accepted from this key, and not
	 * made before the daemon started: a captured knock opens nothing,
	 * ever, not even after a restart wiped the per-key state. */
	if (ts <= v->last_ms[i] || ts < v->start_ms)
		return KNOCK_REPLAY;
	return KNOCK_OK;
}

static enum knock_reason decide(struct knock_verifier *v, const uint8_t *pkt,
				size_t len, const uint8_t src[16],
				uint64_t now_ms, struct knock_decision *d)
{
	const struct knock_config *kc = &v->cfg->knock;
	uint8_t client_pub[KEY_LEN];
	struct knock_payload p;
	enum knock_reason r;
	size_t i;

	r = knock_check_outer(&v->mac1, pkt, len);
	if (r != KNOCK_OK)
		return r;
	if (!ratelimit_allow(&v->rl, src, now_ms))
		return KNOCK_RATE_LIMITED;
	r = knock_open(&v->server, v->psk, pkt, client_pub, &p);
	if (r != KNOCK_OK)
		return r;
	d->client = server_config_find_client(v->cfg, client_pub);
	wipe(client_pub, sizeof(client_pub));
	if (!d->client)
		return KNOCK_UNKNOWN_KEY;
	d->timestamp_ms = p.timestamp_ms;
	if (client_expired(d->client, (int64_t)(now_ms / 1000)))
		return KNOCK_EXPIRED;
	i = (size_t)(d->client - v->cfg->clients);
	r = check_time(v, i, p.timestamp_ms, now_ms);
	if (r != KNOCK_OK)
		return r;
	v->last_ms[i] = p.timestamp_ms;

	if (is_zero_ct(p.target, sizeof(p.target)))
		memcpy(d->target, src, sizeof(d->target));
	else if (kc->allow_target)
		memcpy(d->target, p.target, sizeof(d->target));
	else
		return KNOCK_TARGET_REFUSED;
	d->open_seconds = p.open_seconds == 0 ? kc->open_seconds : p.open_seconds;
	if (d->open_seconds > kc->max_open_seconds)
		d->open_seconds = kc->max_open_seconds;
	return KNOCK_OK;
}

enum knock_reason knock_verify(struct knock_verifier *v, const uint8_t *pkt,
			       size_t len, const uint8_t src[16],
			       uint64_t now_ms, struct knock_decision *d)
{
	enum knock_reason r;

	memset(d, 0, sizeof(*d));
	r = decide(v, pkt, len, src, now_ms, d);
	v->counters[r]++;
	return r;
}
