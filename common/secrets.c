/* Loading the long-lived secrets into secure memory; see secrets.h. */
#include "secrets.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "keys.h"
#include "psk.h"
#include "secmem.h"

/* The key pair of priv, which is wiped, and the PSK from psk (or, when
 * psk is NULL, the bytes psk_copy); key_name is the private key's file or
 * credential, for the message. */
static struct secrets *make(uint8_t priv[KEY_LEN], const char *key_name,
			    const struct psk_source *psk, const uint8_t *psk_copy,
			    char *err, size_t err_len)
{
	struct secrets *s = secmem_alloc(sizeof(*s));
	bool ok = s && noise_keypair_init(&s->key, priv);

	wipe(priv, KEY_LEN);
	if (!s)
		snprintf(err, err_len, "out of memory");
	else if (!ok)
		snprintf(err, err_len, "%s: not a usable private key", key_name);
	else if (psk)
		ok = psk_load(s->psk, psk, err, err_len);
	else
		memcpy(s->psk, psk_copy, KEY_LEN);
	if (!ok) {
		secrets_free(s);
		return NULL;
	}
	return s;
}

/* The server's key, and the PSK from cfg (with_psk) or psk_copy. */
static struct secrets *load_server(const struct server_config *cfg, bool with_psk,
				   const uint8_t *psk_copy, char *err, size_t err_len)
{
	uint8_t priv[KEY_LEN];

	if (!server_config_load_key(cfg, priv, err, err_len))
		return NULL;
	return make(priv, cfg->private_key_credential ?
		    cfg->private_key_credential : cfg->private_key_file,
		    with_psk ? &cfg->psk : NULL, psk_copy, err, err_len);
}

struct secrets *secrets_load_server(const struct server_config *cfg,
				    char *err, size_t err_len)
{
	return load_server(cfg, true, NULL, err, err_len);
}

static bool same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool psk_rereadable(const struct psk_source *p)
{
	return p->kind == PSK_CREDENTIAL ||
	       (p->kind == PSK_FILE && access(p->value, R_OK) == 0);
}

static bool key_rereadable(const struct server_config *cfg)
{
	return cfg->private_key_credential || access(cfg->private_key_file, R_OK) == 0;
}

struct secrets *secrets_reload_server(const struct server_config *cfg,
				      const struct server_config *running,
				      const struct secrets *current,
				      const char **kept, char *err, size_t err_len)
{
	bool keep_key = same(cfg->private_key_credential, running->private_key_credential) &&
			same(cfg->private_key_file, running->private_key_file) &&
			!key_rereadable(cfg);
	bool keep_psk = cfg->psk.kind == running->psk.kind &&
			same(cfg->psk.value, running->psk.value) &&
			!psk_rereadable(&cfg->psk);
	struct secrets *s;

	*kept = keep_key && keep_psk ? "key and PSK kept (they cannot be read again)" :
		keep_key ? "key kept (it cannot be read again), PSK read again" :
		keep_psk ? "key read again, PSK kept (it cannot be read again)" :
		"key and PSK read again";
	if (!keep_key)
		return keep_psk ? load_server(cfg, false, current->psk, err, err_len) :
				  load_server(cfg, true, NULL, err, err_len);
	if (!(s = secmem_alloc(sizeof(*s)))) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	s->key = current->key;
	if (keep_psk)
		memcpy(s->psk, current->psk, KEY_LEN);
	else if (!psk_load(s->psk, &cfg->psk, err, err_len)) {
		secrets_free(s);
		return NULL;
	}
	return s;
}

struct secrets *secrets_load_cli(const struct cli_config *cfg,
				 char *err, size_t err_len)
{
	uint8_t priv[KEY_LEN];

	if (!key_load_secret_file(priv, cfg->private_key_file, err, err_len))
		return NULL;
	return make(priv, cfg->private_key_file, &cfg->psk, NULL, err, err_len);
}

void secrets_free(struct secrets *s)
{
	secmem_free(s);
}
