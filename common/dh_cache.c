/* DH(server static, client static) per listed client; see dh_cache.h. */
#include "dh_cache.h"

#include <stdlib.h>
#include <string.h>

#include "crypto.h"
#include "secmem.h"

struct dh_entry {
	uint8_t pub[KEY_LEN];		/* the client's static public key */
	uint8_t ss[KEY_LEN];		/* DH(server, pub) */
};

struct dh_cache {
	uint8_t server_pub[KEY_LEN];	/* the key pair it was built for */
	size_t n;
	struct dh_entry e[];		/* sorted by pub */
};

static int entry_cmp(const void *a, const void *b)
{
	return memcmp(((const struct dh_entry *)a)->pub,
		      ((const struct dh_entry *)b)->pub, KEY_LEN);
}

struct dh_cache *dh_cache_new(const struct noise_keypair *server,
			      const struct server_config *cfg)
{
	struct dh_cache *c;
	struct dh_entry *e;
	size_t i;

	c = secmem_alloc(sizeof(*c) + cfg->n_clients * sizeof(c->e[0]));
	if (!c)
		return NULL;
	memcpy(c->server_pub, server->pub, KEY_LEN);
	for (i = 0; i < cfg->n_clients; i++) {
		e = &c->e[c->n];
		memcpy(e->pub, cfg->clients[i].public_key, KEY_LEN);
		if (x25519(e->ss, server->priv, e->pub))
			c->n++;
		else
			wipe(e, sizeof(*e));
	}
	/* Public keys are the order: what is searched is public anyway. */
	qsort(c->e, c->n, sizeof(c->e[0]), entry_cmp);
	return c;
}

void dh_cache_free(struct dh_cache *c)
{
	secmem_free(c);		/* wipes */
}

size_t dh_cache_size(const struct dh_cache *c)
{
	return c ? c->n : 0;
}

bool dh_cache_lookup(const void *cache, const uint8_t s_pub[KEY_LEN],
		     const uint8_t rs[KEY_LEN], uint8_t ss[KEY_LEN])
{
	const struct dh_cache *c = cache;
	const struct dh_entry *e;
	struct dh_entry key;

	if (!c || memcmp(c->server_pub, s_pub, KEY_LEN) != 0)
		return false;
	memcpy(key.pub, rs, KEY_LEN);
	e = bsearch(&key, c->e, c->n, sizeof(c->e[0]), entry_cmp);
	if (!e)
		return false;
	memcpy(ss, e->ss, KEY_LEN);
	return true;
}
