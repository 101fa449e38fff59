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
	if (k)
		dh_cache_free(k->dh);
	secmem_free(k);
}

/* The secrets of this server and PSK, with the mac1 check's own hash
 * handle and the cache of cfg's clients' "ss"; NULL when out of memory.
 * They are made again at every reload: a new server key or client key is
 * never looked up in a cache made for the old one. */
static struct knock_keys *keys_new(const struct noise_keypair *server,
				   const uint8_t psk[KEY_LEN],
				   const struct server_config *cfg)
{
	struct knock_keys *k = secmem_alloc(sizeof(*k));
	uint8_t key[HASH_LEN];
	bool ok;

	if (!k)
		return NULL;
	k->s.key = *server;
	memcpy(k->s.psk, psk, KEY_LEN);
	knock_mac1_key(key, server->pub, psk);
	ok = keyed_blake2s_init(&k->mac1, key) &&
	     (k->dh = dh_cache_new(server, cfg)) != NULL;
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
	if (!(v->keys = keys_new(server, psk, cfg)) ||
	    !(v->recent = calloc(KNOCK_RECENT_SLOTS, sizeof(*v->recent))) ||
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
			   const uint8_t psk[KEY_LEN],
			   const struct knock_clock *now)
{
	uint64_t old_window = v->cfg->knock.window * 1000ull;
	uint64_t new_window = cfg->knock.window * 1000ull;
	bool new_limits = !same_limits(&v->cfg->knock, &cfg->knock);
	struct knock_keys *keys = keys_new(server, psk, cfg);
	struct ratelimit rl;

	if (!keys)
		return false;
	/* New buckets start full: a reload only ever loosens them. */
	if (new_limits && !init_ratelimit(&rl, &cfg->knock)) {
		keys_free(keys);
		return false;
	}
	if (!replay_rekey(&v->replay, cfg, cfg->knock.replay_entries, now->boot_ms,
			  old_window > new_window ? old_window : new_window)) {
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
	/* Client indices changed: the fast path starts afresh. */
	memset(v->recent, 0, KNOCK_RECENT_SLOTS * sizeof(*v->recent));
	if (new_window > old_window && now->wall_ms > old_window)
		replay_raise_floor(&v->replay, now->wall_ms - old_window,
				   now->boot_ms + 2 * new_window);
	return true;
}

void knock_verifier_free(struct knock_verifier *v)
{
	keys_free(v->keys);
	free(v->recent);
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

void knock_verifier_file_header(const struct knock_verifier *v,
				const struct knock_clock *now,
				struct replay_header *h)
{
	const struct replay_floor *f = &v->replay.floor;
	uint64_t window = v->cfg->knock.window * 1000ull;

	memset(h, 0, sizeof(*h));
	h->window_s = v->cfg->knock.window;
	if (now->boot_ms <= f->until_ms) {
		h->floor_wall_ms = f->wall_ms;
		h->floor_expires_ms = now->wall_ms + (f->until_ms - now->boot_ms);
	}
	if (!v->history && now->boot_ms - v->start_boot_ms <= 2 * window) {
		uint64_t start = knock_verifier_start_floor(v, now);

		if (start > h->floor_wall_ms)
			h->floor_wall_ms = start;
		if (start + 2 * window > h->floor_expires_ms)
			h->floor_expires_ms = start + 2 * window;
	}
}

void knock_verifier_file_loaded(struct knock_verifier *v,
				const struct replay_header *h,
				const struct knock_clock *now)
{
	uint64_t window = v->cfg->knock.window * 1000ull, left;

	if (h->floor_expires_ms > now->wall_ms) {
		left = h->floor_expires_ms - now->wall_ms;
		replay_raise_floor(&v->replay, h->floor_wall_ms < now->wall_ms ?
				   h->floor_wall_ms : now->wall_ms,
				   now->boot_ms + (left < 2 * window ? left : 2 * window));
	}
	if (v->cfg->knock.window > h->window_s && now->wall_ms > h->window_s * 1000ull)
		replay_raise_floor(&v->replay, now->wall_ms - h->window_s * 1000ull,
				   now->boot_ms + 2 * window);
}

/* A byte-for-byte copy of a knock accepted lately: which client's, or
 * NULL. */
static const struct client_entry *recent_replay(const struct knock_verifier *v,
						const uint8_t *pkt)
{
	const uint8_t *mac1 = pkt + KNOCK_MAC_OFFSET;
	const struct knock_recent *r = &v->recent[(mac1[0] | mac1[1] << 8) %
						   KNOCK_RECENT_SLOTS];

	if (!r->client || r->client > v->cfg->n_clients ||
	    !equal_ct(r->mac1, mac1, KNOCK_MAC_LEN))
		return NULL;
	return &v->cfg->clients[r->client - 1];
}

static void remember_recent(struct knock_verifier *v, const uint8_t *pkt,
			    size_t client)
{
	const uint8_t *mac1 = pkt + KNOCK_MAC_OFFSET;
	struct knock_recent *r = &v->recent[(mac1[0] | mac1[1] << 8) %
					    KNOCK_RECENT_SLOTS];

	memcpy(r->mac1, mac1, KNOCK_MAC_LEN);
	r->client = (uint32_t)client + 1;
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
	remember_recent(v, pkt, i);
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
	/* A replay seen lately costs no token (it would drain the bucket of
	 * the address it is sent from) and no Noise read. */
	if ((d->client = recent_replay(v, pkt->data))) {
		d->authenticated = true;
		memcpy(d->key, d->client->public_key, KEY_LEN);
		return KNOCK_REPLAY;
	}
	if (!ratelimit_allow(&v->rl, &pkt->src, now->boot_ms))
		return KNOCK_RATE_LIMITED;
	r = knock_open(&v->keys->s.key, v->keys->s.psk,
		       dh_cache_source(v->keys->dh), pkt->data,
		       d->key, &p);
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
