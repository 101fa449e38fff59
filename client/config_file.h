/*
 * The CLI's configuration file as text, for the commands that write it
 * (init, add-server): where it is, and writing it whole and atomically,
 * so that an admin's comments and hand edits elsewhere in it survive.
 */
#ifndef POSTERN_CONFIG_FILE_H
#define POSTERN_CONFIG_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#include "subcommands.h"

/* -c FILE, or the default; false (said on stderr) if there is none. */
bool config_file_path(const struct cli_options *opt, char *buf, size_t len);

/* The directory part of path into buf ("." for none). */
void config_file_dir(const char *path, char *buf, size_t len);

/* Names, hosts: letters, digits and . _ - only, so that they need no
 * quoting in the file and cannot end its string. */
bool config_file_word_ok(const char *s);

/* The whole file, NUL-terminated, at most 1 MiB; NULL (said on stderr)
 * if it cannot be read. */
char *config_file_read(const char *path, size_t *len);

/* Where the block server "name" { ... } is in text: from the start of
 * its first line to past the end of the line that closes it. Strings and
 * # comments are skipped when braces are counted. */
bool config_file_find_server(const char *text, const char *name,
			     size_t *start, size_t *end);

/* True (said on stderr: not overwritten) when path exists. */
bool config_file_exists(const char *path);

/* This host's short name, if it is a word; else fallback. */
void config_file_host_name(char *buf, size_t len, const char *fallback);

/* A new random key, an X25519 private key (and its public key in pub)
 * when clamp, written base64 to a new file, mode 0600. */
bool config_file_new_key(const char *path, bool clamp, uint8_t pub[KEY_LEN]);

/* Write text to a new file (mode 0600, fsync'd); fails, said on stderr,
 * if path exists (exclusive) or cannot be written. */
bool config_file_write(const char *path, const char *text, size_t len,
		       bool exclusive);

/* Write text to path through a temporary file beside it (mode 0600),
 * renamed over it: a crash leaves the old file or the new one. */
bool config_file_replace(const char *path, const char *text, size_t len);

#endif
