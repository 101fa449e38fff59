/*
 * posternd's replay state on disk (knock.state_file), so that a restart
 * forgets no accepted knock. One small text file: the whole state, written
 * beside itself and renamed over the old file, then a journal of the
 * knocks accepted since, one line each, appended before the gate opens
 * for them. Past JOURNAL_MAX lines the file is written whole again.
 *
 *   postern-knock-state 1
 *   KEY FLOOR_MS [TS_MS:ID]...        one line per client key with history
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

/* Load into t (whose keys are the configured clients); the knocks read
 * are remembered until until_ms (boot clock). On REPLAY_CORRUPT t holds no
 * history at all, never part of the file. */
enum replay_load replay_file_load(struct replay_file *f, struct replay_table *t,
				  uint64_t until_ms, char *err, size_t err_len);

/*
 * Put t's fresh knocks (replay_table.fresh) in the file: appended to its
 * journal, or the whole state written again when there is no file yet or
 * t overflowed. From then on a restart sees them. On failure the file is
 * removed, so that a restart falls back to the start floor instead of
 * trusting stale state, and the next call writes it whole.
 */
bool replay_file_record(struct replay_file *f, struct replay_table *t,
			char *err, size_t err_len);
/* Write the whole state again: at start, and from replay_file_compact. */
bool replay_file_rewrite(struct replay_file *f, struct replay_table *t,
			 char *err, size_t err_len);
/* Write it whole if the journal has grown long. */
bool replay_file_compact(struct replay_file *f, struct replay_table *t,
			 char *err, size_t err_len);
/* Make what was written durable (fdatasync of the file, fsync of the
 * directory after a rename). Separate, so that posternd can open the gate
 * first. */
void replay_file_sync(struct replay_file *f);

/* The text form, on any stdio stream (tests use memory). */
bool replay_write(const struct replay_table *t, FILE *out);
bool replay_parse(struct replay_table *t, FILE *in, uint64_t until_ms,
		  char *err, size_t err_len);

#endif
