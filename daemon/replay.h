/*
 * Exact replay detection for knocks, per client key. Sans-I/O.
 *
 * A knock is known by its ephemeral public key: the Noise handshake hash
 * covers it, so no one can change it without the knock failing to
 * authenticate, and the client draws a fresh one for every knock. Each key
 * remembers the knocks it accepted for two clock windows of real time (the
 * boot clock, which no one sets): a knock's timestamp is at most one window
 * from the server's clock when it is accepted, so two windows later a
 * replay of it is refused as skewed. A key remembers at most `cap` knocks;
 * one pushed out by a newer knock raises the key's floor to its timestamp,
 * and a knock at or below the floor is refused.
 *
 * Where the table cannot know what was accepted (an earlier run whose
 * state was lost, a window that grew), a floor for every key refuses
 * knocks stamped before a wall-clock instant, for two windows. A key that
 * a reload removes keeps its history for two windows, in case it comes
 * back.
 *
 * So a replay is refused however often it is sent, and an honest knock
 * inside the window is refused only when its key knocked more than `cap`
 * times in two windows and it is older than the oldest of them. A laptop
 * whose clock stepped back inside the window is not locked out, nor is
 * anyone when the server's clock is stepped. What this gives up: a knock
 * replayed more than two windows after it was accepted, to a server whose
 * clock has meanwhile been set back by more than a window, is taken as new.
 * (A floor at each key's newest knock less two windows would refuse it if
 * the key knocked since, but would lock out, for as long as the step, an
 * admin whose knock was accepted while the server's clock was wrong.)
 */
#ifndef POSTERN_REPLAY_H
#define POSTERN_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "crypto.h"

#define REPLAY_ID_LEN 16	/* of the ephemeral key: collisions need 2^64 */
#define REPLAY_ORPHANS_MAX 1024	/* removed keys kept for their history */

struct replay_seen {
	uint64_t ts_ms;			/* the knock's timestamp */
	uint64_t seen_ms;		/* boot clock: when accepted, or loaded */
	uint8_t id[REPLAY_ID_LEN];
};

struct replay_key {
	uint8_t pub[KEY_LEN];
	uint64_t floor_ms;	/* knocks at or below are refused */
	struct replay_seen *seen;	/* cap entries, from the first knock */
	size_t n_seen;
	uint64_t removed_ms;	/* orphans: boot clock when removed */
};

/* Knocks stamped before wall_ms are refused, while the boot clock is at or
 * before until_ms (0: no floor). */
struct replay_floor {
	uint64_t wall_ms;
	uint64_t until_ms;
};

/* A knock accepted since the journal was last taken. */
struct replay_fresh {
	uint8_t pub[KEY_LEN];
	struct replay_seen seen;
};

#define REPLAY_FRESH_MAX 256

struct replay_table {
	struct replay_key *keys;	/* one per client, in config order */
	size_t n_keys;
	struct replay_key *orphans;	/* keys no client has any more */
	size_t n_orphans;
	size_t cap;			/* knocks remembered per key */
	struct replay_floor floor;	/* for every key */
	/* what a state file must add since it was last written */
	struct replay_fresh fresh[REPLAY_FRESH_MAX];
	size_t n_fresh;
	bool overflow;			/* more than that, or a rekey: rewrite */
};

/* One key per client of cfg, with no history. */
bool replay_init(struct replay_table *t, const struct server_config *cfg,
		 size_t cap);
/* The same for a new client list, at boot-clock time now with a window
 * of window_ms: every key still there keeps its history, a key that comes
 * back gets its history back, a key that goes becomes an orphan for two
 * windows; cap may change. False when out of memory (t is then as it
 * was). A state file must then be written whole (overflow). */
bool replay_rekey(struct replay_table *t, const struct server_config *cfg,
		  size_t cap, uint64_t now, uint64_t window_ms);
void replay_free(struct replay_table *t);

/* Raise the floor for every key: knocks stamped before wall_ms are
 * refused until the boot clock passes until_ms. */
void replay_raise_floor(struct replay_table *t, uint64_t wall_ms, uint64_t until_ms);

/*
 * Key i's knock with timestamp ts and ephemeral id, at boot-clock time now
 * with a window of window_ms: false if it is a replay (or below a floor);
 * else true, and it is remembered for two windows.
 */
bool replay_accept(struct replay_table *t, size_t i, uint64_t ts,
		   const uint8_t id[REPLAY_ID_LEN], uint64_t now,
		   uint64_t window_ms);

/* The latest timestamp key i has accepted, or its floor; 0 if none. */
uint64_t replay_last(const struct replay_table *t, size_t i);

/* What a state file holds, put back (seen_ms is the time of loading: a
 * restart remembers them two windows more). A key no client has becomes
 * an orphan. restore: one key's floor and knocks (knocks beyond cap go to
 * the floor; false on a knock at or below the floor). load_knock: one
 * knock of the file's journal. */
bool replay_restore(struct replay_table *t, const uint8_t pub[KEY_LEN],
		    uint64_t floor_ms, const struct replay_seen *seen,
		    size_t n_seen, uint64_t now);
void replay_load_knock(struct replay_table *t, const uint8_t pub[KEY_LEN],
		       const struct replay_seen *seen);

#endif
