/* Keys as text: standard base64 of 32 bytes (44 characters), as WireGuard's. */
#ifndef POSTERN_KEYS_H
#define POSTERN_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto.h"

#define KEY_B64_LEN 44

void key_to_base64(char out[KEY_B64_LEN + 1], const uint8_t key[KEY_LEN]);

/* Exactly 44 characters of canonical base64; constant time in the key. */
bool key_from_base64(uint8_t key[KEY_LEN], const char *text);

/* Like key_from_base64, allowing trailing whitespace (a line of a file). */
bool key_from_text(uint8_t key[KEY_LEN], const char *text, size_t len);

/*
 * Read a secret (private key or PSK) from a file holding its base64 form.
 * Refuses a file that group or others may access, as ssh does, naming the
 * chmod that fixes it. On failure writes one line to err and returns false;
 * the key is never part of the message.
 */
bool key_load_secret_file(uint8_t key[KEY_LEN], const char *path,
			  char *err, size_t err_len);

/*
 * Read a secret from a systemd credential: the file NAME in
 * $CREDENTIALS_DIRECTORY (LoadCredential=NAME:PATH in the unit). option
 * names the config option in messages.
 */
bool key_load_credential(uint8_t key[KEY_LEN], const char *name,
			 const char *option, char *err, size_t err_len);

#endif
