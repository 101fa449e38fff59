/* Exact replay detection for knocks: see replay.h. */
#include "replay.h"

#include <stdlib.h>
#include <string.h>

static bool keys_for(struct replay_key **keys, const struct server_config *cfg)
{
	*keys = calloc(cfg->n_clients ? cfg->n_clients : 1, sizeof(**keys));
	if (!*keys)
		return false;
	for (size_t i = 0; i < cfg->n_clients; i++)
		memcpy((*keys)[i].pub, cfg->clients[i].public_key, KEY_LEN);
	return true;
}

bool replay_init(struct replay_table *t, const struct server_config *cfg,
		 size_t cap)
{
	memset(t, 0, sizeof(*t));
	if (!keys_for(&t->keys, cfg))
		return false;
	t->n_keys = cfg->n_clients;
	t->cap = cap;
	return true;
}

static void raise_floor(struct replay_key *k, uint64_t ts)
{
	if (ts > k->floor_ms)
		k->floor_ms = ts;
}

static void drop_seen(struct replay_key *k, size_t j)
{
	raise_floor(k, k->seen[j].ts_ms);
	k->seen[j] = k->seen[--k->n_seen];
}

static size_t oldest_seen(const struct replay_key *k)
{
	size_t o = 0;

	for (size_t j = 1; j < k->n_seen; j++)
		if (k->seen[j].ts_ms < k->seen[o].ts_ms)
			o = j;
	return o;
}

/* Fit k into cap entries, the oldest leaving for the floor. */
static bool resize_key(struct replay_key *k, size_t cap)
{
	struct replay_seen *s;

	while (k->n_seen > cap)
		drop_seen(k, oldest_seen(k));
	if (!k->seen)
		return true;
	s = realloc(k->seen, cap * sizeof(*s));
	if (!s)
		return false;
	k->seen = s;
	return true;
}

bool replay_rekey(struct replay_table *t, const struct server_config *cfg,
		  size_t cap)
{
	struct replay_key *keys;

	if (!keys_for(&keys, cfg))
		return false;
	for (size_t i = 0; i < cfg->n_clients; i++)
		for (size_t j = 0; j < t->n_keys; j++)
			if (!memcmp(keys[i].pub, t->keys[j].pub, KEY_LEN)) {
				keys[i] = t->keys[j];
				t->keys[j].seen = NULL;
				break;
			}
	for (size_t i = 0; i < cfg->n_clients; i++)
		if (!resize_key(&keys[i], cap)) {
			/* out of memory: keep what fits, lose nothing */
			keys[i].n_seen = keys[i].n_seen < cap ? keys[i].n_seen : cap;
		}
	for (size_t j = 0; j < t->n_keys; j++)
		free(t->keys[j].seen);
	free(t->keys);
	t->keys = keys;
	t->n_keys = cfg->n_clients;
	t->cap = cap;
	t->n_fresh = 0;
	t->overflow = true;
	return true;
}

void replay_free(struct replay_table *t)
{
	for (size_t i = 0; i < t->n_keys; i++)
		free(t->keys[i].seen);
	free(t->keys);
	memset(t, 0, sizeof(*t));
}

/* Knocks remembered for two windows are forgotten: a replay of one is
 * out of the window now (unless the wall clock was set back since). */
static void age(struct replay_key *k, uint64_t now)
{
	for (size_t j = 0; j < k->n_seen;)
		if (k->seen[j].until_ms < now)
			k->seen[j] = k->seen[--k->n_seen];
		else
			j++;
}

static bool seen_before(const struct replay_key *k,
			const uint8_t id[REPLAY_ID_LEN])
{
	for (size_t j = 0; j < k->n_seen; j++)
		if (!memcmp(k->seen[j].id, id, REPLAY_ID_LEN))
			return true;
	return false;
}

/* Remember s for key k, the oldest leaving for the floor when k holds
 * cap already. */
static void remember(struct replay_table *t, struct replay_key *k,
		     const struct replay_seen *s)
{
	if (!k->seen && !(k->seen = calloc(t->cap, sizeof(*k->seen)))) {
		/* No room to remember it: remember its timestamp instead.
		 * Stricter, never looser. */
		raise_floor(k, s->ts_ms);
		return;
	}
	if (k->n_seen == t->cap)
		drop_seen(k, oldest_seen(k));
	k->seen[k->n_seen++] = *s;
}

static struct replay_key *key_of(struct replay_table *t, const uint8_t pub[KEY_LEN])
{
	for (size_t i = 0; i < t->n_keys; i++)
		if (!memcmp(t->keys[i].pub, pub, KEY_LEN))
			return &t->keys[i];
	return NULL;
}

void replay_load_knock(struct replay_table *t, const uint8_t pub[KEY_LEN],
		   const struct replay_seen *seen)
{
	struct replay_key *k = key_of(t, pub);

	if (k && seen->ts_ms > k->floor_ms && !seen_before(k, seen->id))
		remember(t, k, seen);
}

bool replay_accept(struct replay_table *t, size_t i, uint64_t ts,
		   const uint8_t id[REPLAY_ID_LEN], uint64_t now,
		   uint64_t window_ms)
{
	struct replay_key *k = &t->keys[i];
	struct replay_seen s = { .ts_ms = ts, .until_ms = now + 2 * window_ms };

	age(k, now);
	if (ts <= k->floor_ms || seen_before(k, id))
		return false;
	memcpy(s.id, id, REPLAY_ID_LEN);
	remember(t, k, &s);
	if (t->n_fresh < REPLAY_FRESH_MAX) {
		memcpy(t->fresh[t->n_fresh].pub, k->pub, KEY_LEN);
		t->fresh[t->n_fresh++].seen = s;
	} else {
		t->overflow = true;
	}
	return true;
}

uint64_t replay_last(const struct replay_table *t, size_t i)
{
	const struct replay_key *k = &t->keys[i];
	uint64_t last = k->floor_ms;

	for (size_t j = 0; j < k->n_seen; j++)
		if (k->seen[j].ts_ms > last)
			last = k->seen[j].ts_ms;
	return last;
}

bool replay_restore(struct replay_table *t, const uint8_t pub[KEY_LEN],
		    uint64_t floor_ms, const struct replay_seen *seen,
		    size_t n_seen)
{
	struct replay_key *k;

	for (size_t j = 0; j < n_seen; j++)
		if (seen[j].ts_ms <= floor_ms)
			return false;
	if (!(k = key_of(t, pub)))
		return true;
	k->floor_ms = floor_ms;
	k->n_seen = 0;
	/* A smaller cap than the file was written with: the oldest knocks
	 * go to the floor, as at a reload. */
	for (size_t j = 0; j < n_seen; j++)
		remember(t, k, &seen[j]);
	return true;
}
