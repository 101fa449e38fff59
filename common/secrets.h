/*
 * The secrets every postern program keeps for its whole life, its static
 * key pair and the fleet PSK, loaded into secure memory (secmem.h).
 */
#ifndef POSTERN_SECRETS_H
#define POSTERN_SECRETS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "noise.h"

struct secrets {
	struct noise_keypair key;	/* this server's or device's */
	uint8_t psk[KEY_LEN];		/* the fleet's */
};

/* The server's key (private_key_credential or private_key_file) and PSK.
 * NULL on failure, with one line in err that holds no key material. */
struct secrets *secrets_load_server(const struct server_config *cfg,
				    char *err, size_t err_len);

/*
 * The same at a reload, cfg being the new configuration and running the
 * one in use with its secrets: a source that is the running one and cannot
 * be read again keeps the running value. A PSK from the environment or a
 * passphrase is gone once read (psk.c takes it out of the environment),
 * and a file only root may read is out of reach of a daemon that dropped
 * root. *kept says what was read and what kept, for the log.
 */
struct secrets *secrets_reload_server(const struct server_config *cfg,
				      const struct server_config *running,
				      const struct secrets *current,
				      const char **kept, char *err, size_t err_len);
/* The CLI's device key (private_key_file) and PSK; the same otherwise. */
struct secrets *secrets_load_cli(const struct cli_config *cfg,
				 char *err, size_t err_len);

/* Wipe and free; NULL is a no-op. */
void secrets_free(struct secrets *s);

#endif
