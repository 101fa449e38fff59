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
	t->orphans = calloc(REPLAY_ORPHANS_MAX, sizeof(*t->orphans));
	if (!t->orphans || !keys_for(&t->keys, cfg)) {
		free(t->orphans);
		return false;
	}
	t->n_keys = cfg->n_clients;
	t->cap = cap;
	return true;
}

static void raise_key_floor(struct replay_key *k, uint64_t ts)
{
	if (ts > k->floor_ms)
		k->floor_ms = ts;
}

static void drop_seen(struct replay_key *k, size_t j)
{
	raise_key_floor(k, k->seen[j].ts_ms);
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

/* Fit k into cap entries, the oldest leaving for the floor. Out of
 * memory, all of them go to the floor: stricter, never looser. */
static void resize_key(struct replay_key *k, size_t cap)
{
	struct replay_seen *s;

	while (k->n_seen > cap)
		drop_seen(k, oldest_seen(k));
	if (!k->seen)
		return;
	s = realloc(k->seen, cap * sizeof(*s));
	if (s) {
		k->seen = s;
		return;
	}
	while (k->n_seen)
		drop_seen(k, 0);
	free(k->seen);
	k->seen = NULL;
}

static struct replay_key *find(struct replay_key *keys, size_t n,
			       const uint8_t pub[KEY_LEN])
{
	for (size_t i = 0; i < n; i++)
		if (!memcmp(keys[i].pub, pub, KEY_LEN))
			return &keys[i];
	return NULL;
}

static bool has_history(const struct replay_key *k)
{
	return k->n_seen || k->floor_ms;
}

/* A free orphan slot, the oldest orphan making room when there are
 * REPLAY_ORPHANS_MAX. */
static struct replay_key *orphan_slot(struct replay_table *t)
{
	size_t o = 0;

	if (t->n_orphans < REPLAY_ORPHANS_MAX)
		return &t->orphans[t->n_orphans++];
	for (size_t j = 1; j < t->n_orphans; j++)
		if (t->orphans[j].removed_ms < t->orphans[o].removed_ms)
			o = j;
	free(t->orphans[o].seen);
	return &t->orphans[o];
}

/* Keep k's history as an orphan (the table takes its entries). */
static void adopt(struct replay_table *t, struct replay_key *k, uint64_t now)
{
	struct replay_key *o;

	if (!has_history(k)) {
		free(k->seen);
		return;
	}
	o = orphan_slot(t);
	*o = *k;
	o->removed_ms = now;
}

static void drop_orphan(struct replay_table *t, size_t j)
{
	t->orphans[j] = t->orphans[--t->n_orphans];
}

bool replay_rekey(struct replay_table *t, const struct server_config *cfg,
		  size_t cap, uint64_t now, uint64_t window_ms)
{
	struct replay_key *keys, *k;

	if (!keys_for(&keys, cfg))
		return false;
	/* A key that comes back finds its history: a knock captured before
	 * its removal is still a replay. */
	for (size_t i = 0; i < cfg->n_clients; i++) {
		if ((k = find(t->keys, t->n_keys, keys[i].pub))) {
			keys[i] = *k;
			k->seen = NULL;
			k->n_seen = 0;
			k->floor_ms = 0;
		} else if ((k = find(t->orphans, t->n_orphans, keys[i].pub))) {
			keys[i] = *k;
			keys[i].removed_ms = 0;
			drop_orphan(t, (size_t)(k - t->orphans));
		}
	}
	/* Two windows after its removal an orphan's knocks are out of the
	 * window: it can go. */
	for (size_t j = 0; j < t->n_orphans;)
		if (now - t->orphans[j].removed_ms > 2 * window_ms) {
			free(t->orphans[j].seen);
			drop_orphan(t, j);
		} else {
			j++;
		}
	for (size_t j = 0; j < t->n_keys; j++)
		adopt(t, &t->keys[j], now);
	for (size_t i = 0; i < cfg->n_clients; i++)
		resize_key(&keys[i], cap);
	for (size_t j = 0; j < t->n_orphans; j++)
		resize_key(&t->orphans[j], cap);
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
	for (size_t j = 0; j < t->n_orphans; j++)
		free(t->orphans[j].seen);
	free(t->keys);
	free(t->orphans);
	memset(t, 0, sizeof(*t));
}

void replay_raise_floor(struct replay_table *t, uint64_t wall_ms, uint64_t until_ms)
{
	if (wall_ms > t->floor.wall_ms)
		t->floor.wall_ms = wall_ms;
	if (until_ms > t->floor.until_ms)
		t->floor.until_ms = until_ms;
	t->overflow = true;	/* the file must say so */
}

/* Knocks remembered for two windows are forgotten: a replay of one is
 * out of the window now (unless the wall clock was set back since). */
static void age(struct replay_key *k, uint64_t now, uint64_t window_ms)
{
	for (size_t j = 0; j < k->n_seen;)
		if (now - k->seen[j].seen_ms > 2 * window_ms)
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
		raise_key_floor(k, s->ts_ms);
		return;
	}
	if (k->n_seen == t->cap)
		drop_seen(k, oldest_seen(k));
	k->seen[k->n_seen++] = *s;
}

bool replay_accept(struct replay_table *t, size_t i, uint64_t ts,
		   const uint8_t id[REPLAY_ID_LEN], uint64_t now,
		   uint64_t window_ms)
{
	struct replay_key *k = &t->keys[i];
	struct replay_seen s = { .ts_ms = ts, .seen_ms = now };

	age(k, now, window_ms);
	if (now <= t->floor.until_ms && ts < t->floor.wall_ms)
		return false;
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

/* The key pub's record for loading: a client's, or an orphan's (made when
 * no client has it). */
static struct replay_key *key_to_load(struct replay_table *t,
				      const uint8_t pub[KEY_LEN], uint64_t now)
{
	struct replay_key *k = find(t->keys, t->n_keys, pub);

	if (k || (k = find(t->orphans, t->n_orphans, pub)))
		return k;
	k = orphan_slot(t);
	memset(k, 0, sizeof(*k));
	memcpy(k->pub, pub, KEY_LEN);
	k->removed_ms = now;
	return k;
}

bool replay_restore(struct replay_table *t, const uint8_t pub[KEY_LEN],
		    uint64_t floor_ms, const struct replay_seen *seen,
		    size_t n_seen, uint64_t now)
{
	struct replay_key *k;

	for (size_t j = 0; j < n_seen; j++)
		if (seen[j].ts_ms <= floor_ms)
			return false;
	k = key_to_load(t, pub, now);
	raise_key_floor(k, floor_ms);
	/* A smaller cap than the file was written with: the oldest knocks
	 * go to the floor, as at a reload. */
	for (size_t j = 0; j < n_seen; j++)
		if (!seen_before(k, seen[j].id))
			remember(t, k, &seen[j]);
	return true;
}

void replay_load_knock(struct replay_table *t, const uint8_t pub[KEY_LEN],
		       const struct replay_seen *seen)
{
	struct replay_key *k = key_to_load(t, pub, seen->seen_ms);

	if (seen->ts_ms > k->floor_ms && !seen_before(k, seen->id))
		remember(t, k, seen);
}
