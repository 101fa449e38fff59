/* posternd's knock pipeline: every check of a knock, in order. */
#include "knock_verify.h"

#include <stdlib.h>
#include <string.h>

#include "secmem.h"

static bool init_ratelimit(struct ratelimit *rl, const struct knock_config *k)
{
	return ratelimit_init(rl, k->rate, k->burst, k->rate_sources);
}

static void keys_free(struct knock_keys *k)
{
	if (k && k->mac1.hd)
		keyed_blake2s_free(&k->mac1);
	secmem_free(k);
}

/* The secrets of this server and PSK, with the mac1 check's own hash
 * handle; NULL when out of memory. */
static struct knock_keys *keys_new(const struct noise_keypair *server,
				   const uint8_t psk[KEY_LEN])
{
	struct knock_keys *k = secmem_alloc(sizeof(*k));
	uint8_t key[HASH_LEN];
	bool ok;

	if (!k)
		return NULL;
	k->s.key = *server;
	memcpy(k->s.psk, psk, KEY_LEN);
	knock_mac1_key(key, server->pub, psk);
	ok = keyed_blake2s_init(&k->mac1, key);
	wipe(key, sizeof(key));
	if (!ok) {
		keys_free(k);
		return NULL;
	}
	return k;
}

bool knock_verifier_init(struct knock_verifier *v,
			 const struct noise_keypair *server,
			 const uint8_t psk[KEY_LEN],
			 const struct server_config *cfg,
			 const struct knock_clock *now)
{
	memset(v, 0, sizeof(*v));
	v->start_boot_ms = now->boot_ms;
	v->cfg = cfg;
	if (!(v->keys = keys_new(server, psk)) ||
	    !replay_init(&v->replay, cfg, cfg->knock.replay_entries) ||
	    !init_ratelimit(&v->rl, &cfg->knock)) {
		knock_verifier_free(v);
		return false;
	}
	return true;
}

static bool same_limits(const struct knock_config *a, const struct knock_config *b)
{
	return a->rate == b->rate && a->burst == b->burst &&
	       a->rate_sources == b->rate_sources;
}

bool knock_verifier_reload(struct knock_verifier *v,
			   const struct server_config *cfg,
			   const struct noise_keypair *server,
			   const uint8_t psk[KEY_LEN])
{
	bool new_limits = !same_limits(&v->cfg->knock, &cfg->knock);
	struct knock_keys *keys = keys_new(server, psk);
	struct ratelimit rl;

	if (!keys)
		return false;
	/* New buckets start full: a reload only ever loosens them. */
	if (new_limits && !init_ratelimit(&rl, &cfg->knock)) {
		keys_free(keys);
		return false;
	}
	if (!replay_rekey(&v->replay, cfg, cfg->knock.replay_entries)) {
		keys_free(keys);
		if (new_limits)
			ratelimit_free(&rl);
		return false;
	}
	if (new_limits) {
		ratelimit_free(&v->rl);
		v->rl = rl;
	}
	keys_free(v->keys);
	v->keys = keys;
	v->cfg = cfg;
	return true;
}

void knock_verifier_free(struct knock_verifier *v)
{
	keys_free(v->keys);
	replay_free(&v->replay);
	ratelimit_free(&v->rl);
	wipe(v, sizeof(*v));
}

uint64_t knock_verifier_start_floor(const struct knock_verifier *v,
				    const struct knock_clock *now)
{
	uint64_t up = now->boot_ms - v->start_boot_ms;

	return now->wall_ms > up ? now->wall_ms - up : 0;
}

static enum knock_reason check_time(struct knock_verifier *v, size_t i,
				    const uint8_t *pkt, uint64_t ts,
				    const struct knock_clock *now)
{
	uint64_t window = (uint64_t)v->cfg->knock.window * 1000;
	uint64_t skew = ts > now->wall_ms ? ts - now->wall_ms : now->wall_ms - ts;

	if (skew > window)
		return KNOCK_SKEW;
	/* Without the last run's state, a knock made before the start may
	 * have been accepted by it: only newer ones count. */
	if (!v->history && ts < knock_verifier_start_floor(v, now))
		return KNOCK_REPLAY;
	/* The id is the start of the ephemeral key (bytes 1..16). */
	if (!replay_accept(&v->replay, i, ts, pkt + 1, now->boot_ms, window))
		return KNOCK_REPLAY;
	return KNOCK_OK;
}

static enum knock_reason check_target(const struct knock_config *kc,
				      const struct knock_payload *p,
				      const struct ip_addr *src,
				      struct ip_addr *target)
{
	if (is_zero_ct(p->target, sizeof(p->target))) {
		*target = *src;
		return KNOCK_OK;
	}
	if (!kc->allow_target)
		return KNOCK_TARGET_REFUSED;
	ip_addr_from_wire(target, p->target);
	return ip_addr_is_host(target) ? KNOCK_OK : KNOCK_TARGET_REFUSED;
}

static enum knock_reason decide(struct knock_verifier *v,
				const struct knock_packet *pkt,
				const struct knock_clock *now,
				struct knock_decision *d)
{
	const struct knock_config *kc = &v->cfg->knock;
	struct knock_payload p;
	enum knock_reason r;
	size_t i;

	/* Bytes the queue did not copy are not there to check: verifying
	 * the rest of the buffer would verify some other packet. */
	if (pkt->captured < pkt->len)
		return KNOCK_TRUNCATED;
	r = knock_check_outer(&v->keys->mac1, pkt->data, pkt->len);
	if (r != KNOCK_OK)
		return r;
	if (!ratelimit_allow(&v->rl, &pkt->src, now->boot_ms))
		return KNOCK_RATE_LIMITED;
	r = knock_open(&v->keys->s.key, v->keys->s.psk, pkt->data, d->key, &p);
	if (r != KNOCK_OK)
		return r;
	d->authenticated = true;
	d->client = server_config_find_client(v->cfg, d->key);
	if (!d->client)
		return KNOCK_UNKNOWN_KEY;
	d->timestamp_ms = p.timestamp_ms;
	if (client_expired(d->client, (int64_t)(now->wall_ms / 1000)))
		return KNOCK_EXPIRED;
	i = (size_t)(d->client - v->cfg->clients);
	r = check_time(v, i, pkt->data, p.timestamp_ms, now);
	if (r != KNOCK_OK)
		return r;
	r = check_target(kc, &p, &pkt->src, &d->target);
	if (r != KNOCK_OK)
		return r;
	d->open_seconds = p.open_seconds == 0 ? kc->open_seconds : p.open_seconds;
	if (d->open_seconds > kc->max_open_seconds)
		d->open_seconds = kc->max_open_seconds;
	return KNOCK_OK;
}

enum knock_reason knock_verify(struct knock_verifier *v,
			       const struct knock_packet *pkt,
			       const struct knock_clock *now,
			       struct knock_decision *d)
{
	enum knock_reason r;

	memset(d, 0, sizeof(*d));
	r = decide(v, pkt, now, d);
	v->counters[r]++;
	return r;
}
