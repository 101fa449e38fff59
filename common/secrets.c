/* Loading the long-lived secrets into secure memory; see secrets.h. */
#include "secrets.h"

#include <stdio.h>

#include "keys.h"
#include "psk.h"
#include "secmem.h"

/* The key pair of priv, which is wiped, and the PSK; key_name is the
 * private key's file or credential, for the message. */
static struct secrets *make(uint8_t priv[KEY_LEN], const char *key_name,
			    const struct psk_source *psk,
			    char *err, size_t err_len)
{
	struct secrets *s = secmem_alloc(sizeof(*s));
	bool ok = s && noise_keypair_init(&s->key, priv);

	wipe(priv, KEY_LEN);
	if (!s)
		snprintf(err, err_len, "out of memory");
	else if (!ok)
		snprintf(err, err_len, "%s: not a usable private key", key_name);
	else
		ok = psk_load(s->psk, psk, err, err_len);
	if (!ok) {
		secrets_free(s);
		return NULL;
	}
	return s;
}

struct secrets *secrets_load_server(const struct server_config *cfg,
				    char *err, size_t err_len)
{
	uint8_t priv[KEY_LEN];

	if (!server_config_load_key(cfg, priv, err, err_len))
		return NULL;
	return make(priv, cfg->private_key_credential ?
		    cfg->private_key_credential : cfg->private_key_file,
		    &cfg->psk, err, err_len);
}

struct secrets *secrets_load_cli(const struct cli_config *cfg,
				 char *err, size_t err_len)
{
	uint8_t priv[KEY_LEN];

	if (!key_load_secret_file(priv, cfg->private_key_file, err, err_len))
		return NULL;
	return make(priv, cfg->private_key_file, &cfg->psk, err, err_len);
}

void secrets_free(struct secrets *s)
{
	secmem_free(s);
}
