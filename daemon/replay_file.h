/*
 * posternd's replay state on disk (knock.state_file), so that a restart
 * forgets no accepted knock. One small text file: the whole state, written
 * beside itself and renamed over the old file, then a journal of the
 * knocks accepted since, one line each, appended before the gate opens
 * for them. Past JOURNAL_MAX lines the file is written whole again.
 *
 *   postern-knock-state 1
 *   window S                          the window its knocks were kept for
 *   floor WALL_MS EXPIRES_MS          optional: a floor for every key
 *   KEY FLOOR_MS [TS_MS:ID]...        one line per key with history
 *   end N                             N: the number of key lines
 *   + KEY TS_MS:ID                    one line per knock accepted since
 *
 * KEY is the client's public key in base64, ID the first 16 bytes of a
 * knock's ephemeral key in hex. Only posternd writes it; anything else in
 * it makes the whole file count as corrupt, but for a last journal line
 * without its newline (an append a crash cut short).
 */
#ifndef POSTERN_REPLAY_FILE_H
#define POSTERN_REPLAY_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "replay.h"

/* What a state file says besides its keys' knocks: the window they were
 * remembered with, and a floor for every key (knocks stamped before
 * floor_wall_ms are refused while the wall clock is before
 * floor_expires_ms; 0: none). knock_verify.h says when. */
struct replay_header {
	uint32_t window_s;
	uint64_t floor_wall_ms;
	uint64_t floor_expires_ms;
};

enum replay_load {
	REPLAY_LOADED,
	REPLAY_MISSING,		/* no file yet */
	REPLAY_CORRUPT,		/* unreadable or malformed: err says where */
};

struct replay_file;

/* Open the directory of path (before dropping privileges is fine: the
 * directory is held open). NULL with err set, and errno, when it cannot
 * be opened. */
struct replay_file *replay_file_open(const char *path, char *err, size_t err_len);
void replay_file_close(struct replay_file *f);
const char *replay_file_path(const struct replay_file *f);
/* Whether this process can write the file's directory (after dropping
 * privileges: check then); err says why not. */
bool replay_file_writable(const struct replay_file *f, char *err, size_t err_len);

/* Load into t (whose keys are the configured clients; other keys become
 * orphans) and h; the knocks read count as seen at boot-clock time now.
 * On REPLAY_CORRUPT t holds no history at all, never part of the file. */
enum replay_load replay_file_load(struct replay_file *f, struct replay_table *t,
				  uint64_t now, struct replay_header *h,
				  char *err, size_t err_len);

/*
 * Put t's fresh knocks (replay_table.fresh) in the file: appended to its
 * journal, or the whole state written again when there is no file yet or
 * t overflowed. From then on a restart sees them. On failure the file is
 * removed, so that a restart falls back to the start floor instead of
 * trusting stale state, and the next call writes it whole.
 */
bool replay_file_record(struct replay_file *f, struct replay_table *t,
			const struct replay_header *h, char *err, size_t err_len);
/* Write the whole state again, with h: at start, and from
 * replay_file_compact. */
bool replay_file_rewrite(struct replay_file *f, struct replay_table *t,
			 const struct replay_header *h, char *err, size_t err_len);
/* Write it whole if the journal has grown long. */
bool replay_file_compact(struct replay_file *f, struct replay_table *t,
			 const struct replay_header *h, char *err, size_t err_len);
/* Make what was written durable (fdatasync of the file, fsync of the
 * directory after a rename). Separate, so that posternd can open the gate
 * first. */
void replay_file_sync(struct replay_file *f);

/* The text form, on any stdio stream (tests use memory). */
bool replay_write(const struct replay_table *t, const struct replay_header *h,
		  FILE *out);
bool replay_parse(struct replay_table *t, FILE *in, uint64_t now,
		  struct replay_header *h, char *err, size_t err_len);

#endif
