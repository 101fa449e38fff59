/*
 * Noise Protocol Framework, rev 34, §5: CipherState, SymmetricState and
 * HandshakeState, for 25519_ChaChaPoly_BLAKE2s. Each function is named after
 * the spec's and can be read against it line by line.
 */
#include "noise.h"

#include <string.h>

#define SUITE "_25519_ChaChaPoly_BLAKE2s"

/* §5.1 CipherState */

static void initialize_key(struct noise_cipher *cs, const uint8_t k[KEY_LEN])
{
	memcpy(cs->k, k, KEY_LEN);
	cs->n = 0;
	cs->has_key = true;
}

static enum noise_error encrypt_with_ad(struct noise_cipher *cs, uint8_t *out,
					const void *ad, size_t ad_len,
					const uint8_t *in, size_t len)
{
	if (!cs->has_key) {
		memmove(out, in, len);
		return NOISE_OK;
	}
	if (cs->n == UINT64_MAX)	/* 2^64−1 is reserved (§5.1) */
		return NOISE_E_NONCE;
	if (!(cs->aead.hd ? aead_key_encrypt(&cs->aead, out, cs->n, ad, ad_len,
					     in, len) :
			    aead_encrypt(out, cs->k, cs->n, ad, ad_len, in, len)))
		return NOISE_E_DECRYPT;
	cs->n++;
	return NOISE_OK;
}

static enum noise_error decrypt_with_ad(struct noise_cipher *cs, uint8_t *out,
					const void *ad, size_t ad_len,
					const uint8_t *in, size_t len)
{
	if (!cs->has_key) {
		memmove(out, in, len);
		return NOISE_OK;
	}
	if (cs->n == UINT64_MAX)
		return NOISE_E_NONCE;
	if (len < TAG_LEN)
		return NOISE_E_SHORT;
	/* The nonce advances only once the tag has verified: a forged or
	 * corrupted message must not desynchronise the receiver. */
	if (!(cs->aead.hd ? aead_key_decrypt(&cs->aead, out, cs->n, ad, ad_len,
					     in, len) :
			    aead_decrypt(out, cs->k, cs->n, ad, ad_len, in, len)))
		return NOISE_E_DECRYPT;
	cs->n++;
	return NOISE_OK;
}

enum noise_error noise_encrypt(struct noise_cipher *cs, uint8_t *out,
			       const void *ad, size_t ad_len,
			       const uint8_t *in, size_t len)
{
	if (!cs->has_key)
		return NOISE_E_STATE;
	return encrypt_with_ad(cs, out, ad, ad_len, in, len);
}

enum noise_error noise_decrypt(struct noise_cipher *cs, uint8_t *out,
			       const void *ad, size_t ad_len,
			       const uint8_t *in, size_t len)
{
	if (!cs->has_key)
		return NOISE_E_STATE;
	return decrypt_with_ad(cs, out, ad, ad_len, in, len);
}

void noise_rekey(struct noise_cipher *cs)
{
	static const uint8_t zeros[KEY_LEN];
	uint8_t k[KEY_LEN + TAG_LEN];

	/* §4.2 REKEY(k) = ENCRYPT(k, maxnonce, zerolen, zeros)[0..32] */
	aead_encrypt(k, cs->k, UINT64_MAX, NULL, 0, zeros, KEY_LEN);
	memcpy(cs->k, k, KEY_LEN);
	wipe(k, sizeof(k));
	/* A handle that cannot take the new key must not keep the old. */
	if (cs->aead.hd && !aead_key_set(&cs->aead, cs->k))
		aead_key_free(&cs->aead);
}

void noise_cipher_free(struct noise_cipher *cs)
{
	aead_key_free(&cs->aead);
	wipe(cs, sizeof(*cs));
}

bool noise_cipher_copy(struct noise_cipher *dst, const struct noise_cipher *src)
{
	*dst = *src;
	dst->aead.hd = NULL;
	return !src->aead.hd || aead_key_init(&dst->aead, dst->k);
}

/* A transport CipherState: its key kept in a handle. Without one (out of
 * memory) it opens one per message, as a handshake's does: slower, never
 * different bytes, so it is not an error. */
static void initialize_transport_key(struct noise_cipher *cs,
				     const uint8_t k[KEY_LEN])
{
	memset(cs, 0, sizeof(*cs));
	initialize_key(cs, k);
	(void)aead_key_init(&cs->aead, k);
}

/* §5.2 SymmetricState */

static void initialize_symmetric(struct noise_symmetric *ss, const char *name)
{
	size_t len = strlen(name);

	memset(ss, 0, sizeof(*ss));
	if (len <= HASH_LEN)
		memcpy(ss->h, name, len);
	else
		blake2s(ss->h, name, len, NULL, 0);
	memcpy(ss->ck, ss->h, HASH_LEN);
}

static void mix_key(struct noise_symmetric *ss, const uint8_t *ikm, size_t len)
{
	uint8_t temp_k[HASH_LEN];

	hkdf_blake2s(ss->ck, temp_k, NULL, ss->ck, ikm, len);
	initialize_key(&ss->cs, temp_k);
	wipe(temp_k, sizeof(temp_k));
}

static void mix_hash(struct noise_symmetric *ss, const uint8_t *data, size_t len)
{
	blake2s(ss->h, ss->h, HASH_LEN, data, len);
}

static void mix_key_and_hash(struct noise_symmetric *ss, const uint8_t *ikm,
			     size_t len)
{
	uint8_t temp_h[HASH_LEN], temp_k[HASH_LEN];

	hkdf_blake2s(ss->ck, temp_h, temp_k, ss->ck, ikm, len);
	mix_hash(ss, temp_h, HASH_LEN);
	initialize_key(&ss->cs, temp_k);
	wipe(temp_h, sizeof(temp_h));
	wipe(temp_k, sizeof(temp_k));
}

static enum noise_error encrypt_and_hash(struct noise_symmetric *ss,
					 uint8_t *out, const uint8_t *in,
					 size_t len)
{
	enum noise_error e = encrypt_with_ad(&ss->cs, out, ss->h, HASH_LEN,
					     in, len);

	if (e == NOISE_OK)
		mix_hash(ss, out, len + (ss->cs.has_key ? TAG_LEN : 0));
	return e;
}

static enum noise_error decrypt_and_hash(struct noise_symmetric *ss,
					 uint8_t *out, const uint8_t *in,
					 size_t len)
{
	uint8_t h[HASH_LEN];
	enum noise_error e;

	/* in may alias out: hash the ciphertext before it is overwritten. */
	blake2s(h, ss->h, HASH_LEN, in, len);
	e = decrypt_with_ad(&ss->cs, out, ss->h, HASH_LEN, in, len);
	if (e == NOISE_OK)
		memcpy(ss->h, h, HASH_LEN);
	return e;
}

/* §5.3 HandshakeState */

bool noise_keypair_init(struct noise_keypair *kp, const uint8_t priv[KEY_LEN])
{
	memcpy(kp->priv, priv, KEY_LEN);
	if (x25519_public(kp->pub, kp->priv))
		return true;
	wipe(kp, sizeof(*kp));
	return false;
}

static size_t overhead(const struct noise_handshake *hs)
{
	return hs->ss.cs.has_key ? TAG_LEN : 0;
}

static enum noise_error mix_pre_message(struct noise_handshake *hs,
					const uint8_t *tokens, bool own)
{
	for (; *tokens; tokens++) {
		/* Pre-messages carry public keys only: "s" in the patterns
		 * postern knows. An "e" pre-message exists only in the
		 * fallback modifier, which is not supported. */
		if (*tokens != TOK_S)
			return NOISE_E_PROTOCOL;
		if (own ? !hs->has_s : !hs->has_rs)
			return NOISE_E_KEYS;
		mix_hash(&hs->ss, own ? hs->s_pub : hs->rs, KEY_LEN);
	}
	return NOISE_OK;
}

static enum noise_error initialize(struct noise_handshake *hs,
				   const char *protocol_name,
				   enum noise_role role,
				   const void *prologue, size_t prologue_len,
				   const struct noise_keypair *s,
				   const uint8_t *rs, const uint8_t *psk)
{
	char pattern[16];
	const char *p, *suite;
	bool initiator = role == NOISE_INITIATOR;
	enum noise_error e;

	memset(hs, 0, sizeof(*hs));
	hs->role = role;
	if (strncmp(protocol_name, "Noise_", 6) != 0)
		return NOISE_E_PROTOCOL;
	p = protocol_name + 6;
	suite = strchr(p, '_');
	if (!suite || strcmp(suite, SUITE) != 0 ||
	    (size_t)(suite - p) >= sizeof(pattern))
		return NOISE_E_PROTOCOL;
	memcpy(pattern, p, (size_t)(suite - p));
	pattern[suite - p] = '\0';
	if (!noise_pattern_lookup(&hs->pattern, pattern))
		return NOISE_E_PROTOCOL;

	if (s) {
		memcpy(hs->s_priv, s->priv, KEY_LEN);
		memcpy(hs->s_pub, s->pub, KEY_LEN);
		hs->has_s = true;
	}
	if (rs) {
		memcpy(hs->rs, rs, KEY_LEN);
		hs->has_rs = true;
	}
	if (psk) {
		memcpy(hs->psk, psk, KEY_LEN);
		hs->has_psk = true;
	}
	if (hs->pattern.has_psk && !hs->has_psk)
		return NOISE_E_KEYS;

	initialize_symmetric(&hs->ss, protocol_name);
	mix_hash(&hs->ss, prologue, prologue_len);
	e = mix_pre_message(hs, hs->pattern.pre_i, initiator);
	if (e == NOISE_OK)
		e = mix_pre_message(hs, hs->pattern.pre_r, !initiator);
	return e;
}

enum noise_error noise_handshake_init(struct noise_handshake *hs,
				      const char *protocol_name,
				      enum noise_role role,
				      const void *prologue, size_t prologue_len,
				      const struct noise_keypair *s,
				      const uint8_t *rs, const uint8_t *psk)
{
	enum noise_error e = initialize(hs, protocol_name, role, prologue,
					prologue_len, s, rs, psk);

	if (e != NOISE_OK)
		noise_handshake_wipe(hs);
	return e;
}

void noise_handshake_set_ephemeral(struct noise_handshake *hs,
				   const uint8_t e_priv[KEY_LEN])
{
	memcpy(hs->e_priv, e_priv, KEY_LEN);
	hs->fixed_e = true;
}

void noise_handshake_set_ss_lookup(struct noise_handshake *hs,
				   noise_ss_lookup *fn, void *ctx)
{
	hs->ss_lookup = fn;
	hs->ss_ctx = ctx;
}

bool noise_handshake_my_turn(const struct noise_handshake *hs)
{
	bool initiator_sends = hs->pattern.one_way || hs->next % 2 == 0;

	return initiator_sends == (hs->role == NOISE_INITIATOR);
}

bool noise_handshake_done(const struct noise_handshake *hs)
{
	return hs->next >= hs->pattern.n_msgs;
}

/* The DH tokens, from this side's point of view (§5.3). */
static enum noise_error mix_dh(struct noise_handshake *hs, uint8_t token)
{
	bool initiator = hs->role == NOISE_INITIATOR;
	bool local_e, remote_e;
	const uint8_t *priv, *pub;
	uint8_t shared[KEY_LEN];
	bool ok;

	switch (token) {
	case TOK_EE: local_e = true;        remote_e = true;        break;
	case TOK_ES: local_e = initiator;   remote_e = !initiator;  break;
	case TOK_SE: local_e = !initiator;  remote_e = initiator;   break;
	default:     local_e = false;       remote_e = false;       break;
	}
	if ((local_e ? !hs->has_e : !hs->has_s) ||
	    (remote_e ? !hs->has_re : !hs->has_rs))
		return NOISE_E_KEYS;
	priv = local_e ? hs->e_priv : hs->s_priv;
	pub = remote_e ? hs->re : hs->rs;
	/* DH(s, rs) is the same in every handshake between two static
	 * keys: the caller may have it already. It is held to the same
	 * all-zero check as one computed here. */
	if (token == TOK_SS && hs->ss_lookup &&
	    hs->ss_lookup(hs->ss_ctx, hs->s_pub, hs->rs, shared))
		ok = !is_zero_ct(shared, KEY_LEN);
	else
		ok = x25519(shared, priv, pub);
	if (ok)
		mix_key(&hs->ss, shared, KEY_LEN);
	wipe(shared, sizeof(shared));
	return ok ? NOISE_OK : NOISE_E_DH;
}

static enum noise_error write_token(struct noise_handshake *hs, uint8_t token,
				    uint8_t *out, size_t cap, size_t *pos)
{
	size_t need;

	switch (token) {
	case TOK_E:
		if (*pos + KEY_LEN > cap)
			return NOISE_E_SPACE;
		if (!hs->fixed_e) {
			if (!random_bytes(hs->e_priv, KEY_LEN))
				return NOISE_E_KEYS;
			x25519_clamp(hs->e_priv);
		}
		if (!x25519_public(hs->e_pub, hs->e_priv))
			return NOISE_E_KEYS;
		hs->has_e = true;
		memcpy(out + *pos, hs->e_pub, KEY_LEN);
		*pos += KEY_LEN;
		mix_hash(&hs->ss, hs->e_pub, KEY_LEN);
		if (hs->pattern.has_psk)	/* §9.2 */
			mix_key(&hs->ss, hs->e_pub, KEY_LEN);
		return NOISE_OK;
	case TOK_S:
		if (!hs->has_s)
			return NOISE_E_KEYS;
		need = KEY_LEN + overhead(hs);
		if (*pos + need > cap)
			return NOISE_E_SPACE;
		*pos += need;
		return encrypt_and_hash(&hs->ss, out + *pos - need, hs->s_pub,
					KEY_LEN);
	case TOK_PSK:
		mix_key_and_hash(&hs->ss, hs->psk, KEY_LEN);
		return NOISE_OK;
	default:
		return mix_dh(hs, token);
	}
}

static enum noise_error read_token(struct noise_handshake *hs, uint8_t token,
				   const uint8_t *msg, size_t len, size_t *pos)
{
	size_t need;
	enum noise_error e;

	switch (token) {
	case TOK_E:
		if (len - *pos < KEY_LEN)
			return NOISE_E_SHORT;
		memcpy(hs->re, msg + *pos, KEY_LEN);
		hs->has_re = true;
		*pos += KEY_LEN;
		mix_hash(&hs->ss, hs->re, KEY_LEN);
		if (hs->pattern.has_psk)
			mix_key(&hs->ss, hs->re, KEY_LEN);
		return NOISE_OK;
	case TOK_S:
		need = KEY_LEN + overhead(hs);
		if (len - *pos < need)
			return NOISE_E_SHORT;
		e = decrypt_and_hash(&hs->ss, hs->rs, msg + *pos, need);
		if (e != NOISE_OK)
			return e;
		hs->has_rs = true;
		*pos += need;
		return NOISE_OK;
	case TOK_PSK:
		mix_key_and_hash(&hs->ss, hs->psk, KEY_LEN);
		return NOISE_OK;
	default:
		return mix_dh(hs, token);
	}
}

enum noise_error noise_handshake_write(struct noise_handshake *hs,
				       uint8_t *out, size_t *out_len,
				       const uint8_t *payload, size_t len)
{
	const uint8_t *tok;
	size_t pos = 0;
	enum noise_error e = NOISE_OK;

	if (hs->failed || noise_handshake_done(hs) || !noise_handshake_my_turn(hs))
		return NOISE_E_STATE;
	for (tok = hs->pattern.msg[hs->next]; *tok && e == NOISE_OK; tok++)
		e = write_token(hs, *tok, out, *out_len, &pos);
	if (e == NOISE_OK && pos + len + overhead(hs) > *out_len)
		e = NOISE_E_SPACE;
	if (e == NOISE_OK)
		e = encrypt_and_hash(&hs->ss, out + pos, payload, len);
	if (e != NOISE_OK) {
		hs->failed = true;
		return e;
	}
	*out_len = pos + len + overhead(hs);
	hs->next++;
	return NOISE_OK;
}

enum noise_error noise_handshake_read(struct noise_handshake *hs,
				      uint8_t *out, size_t *out_len,
				      const uint8_t *msg, size_t len)
{
	const uint8_t *tok;
	size_t pos = 0, plen;
	enum noise_error e = NOISE_OK;

	if (hs->failed || noise_handshake_done(hs) || noise_handshake_my_turn(hs))
		return NOISE_E_STATE;
	for (tok = hs->pattern.msg[hs->next]; *tok && e == NOISE_OK; tok++)
		e = read_token(hs, *tok, msg, len, &pos);
	if (e == NOISE_OK && len - pos < overhead(hs))
		e = NOISE_E_SHORT;
	plen = len - pos - (e == NOISE_OK ? overhead(hs) : 0);
	if (e == NOISE_OK && plen > *out_len)
		e = NOISE_E_SPACE;
	if (e == NOISE_OK)
		e = decrypt_and_hash(&hs->ss, out, msg + pos, len - pos);
	if (e != NOISE_OK) {
		hs->failed = true;
		return e;
	}
	*out_len = plen;
	hs->next++;
	return NOISE_OK;
}

enum noise_error noise_handshake_split(struct noise_handshake *hs,
				       struct noise_cipher *send,
				       struct noise_cipher *recv,
				       uint8_t hash[HASH_LEN])
{
	uint8_t k1[HASH_LEN], k2[HASH_LEN];
	bool initiator = hs->role == NOISE_INITIATOR;

	if (hs->failed || !noise_handshake_done(hs))
		return NOISE_E_STATE;
	hkdf_blake2s(k1, k2, NULL, hs->ss.ck, NULL, 0);
	initialize_transport_key(send, initiator ? k1 : k2);
	initialize_transport_key(recv, initiator ? k2 : k1);
	if (hash)
		memcpy(hash, hs->ss.h, HASH_LEN);
	wipe(k1, sizeof(k1));
	wipe(k2, sizeof(k2));
	noise_handshake_wipe(hs);
	return NOISE_OK;
}

void noise_handshake_wipe(struct noise_handshake *hs)
{
	enum noise_role role = hs->role;
	uint8_t next = hs->next;

	wipe(hs, sizeof(*hs));
	hs->role = role;
	hs->next = next;
	hs->failed = true;
}

const char *noise_strerror(enum noise_error e)
{
	switch (e) {
	case NOISE_OK:		return "success";
	case NOISE_E_PROTOCOL:	return "unknown protocol";
	case NOISE_E_KEYS:	return "missing or invalid key";
	case NOISE_E_STATE:	return "out of turn";
	case NOISE_E_SHORT:	return "message too short";
	case NOISE_E_SPACE:	return "buffer too small";
	case NOISE_E_DECRYPT:	return "authentication failed";
	case NOISE_E_DH:	return "low-order public key";
	case NOISE_E_NONCE:	return "nonce exhausted";
	}
	return "unknown error";
}
