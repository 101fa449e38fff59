/*
 * The handshake patterns of the Noise spec (rev 34), written as the spec
 * writes them: §7.4 one-way, §7.5 fundamental, §18.1 deferred. Messages
 * alternate, starting with the initiator. The pskN modifiers of §9.4 are
 * applied while parsing.
 */
#include "noise.h"

#include <stdlib.h>
#include <string.h>

struct pattern_text {
	const char *name;
	const char *pre_i, *pre_r;
	const char *msg[NOISE_MAX_MESSAGES];
};

static const struct pattern_text patterns[] = {
	/* §7.4 one-way */
	{ "N",    "",  "s", { "e, es" } },
	{ "K",    "s", "s", { "e, es, ss" } },
	{ "X",    "",  "s", { "e, es, s, ss" } },
	/* §7.5 fundamental */
	{ "NN",   "",  "",  { "e", "e, ee" } },
	{ "NK",   "",  "s", { "e, es", "e, ee" } },
	{ "NX",   "",  "",  { "e", "e, ee, s, es" } },
	{ "XN",   "",  "",  { "e", "e, ee", "s, se" } },
	{ "XK",   "",  "s", { "e, es", "e, ee", "s, se" } },
	{ "XX",   "",  "",  { "e", "e, ee, s, es", "s, se" } },
	{ "KN",   "s", "",  { "e", "e, ee, se" } },
	{ "KK",   "s", "s", { "e, es, ss", "e, ee, se" } },
	{ "KX",   "s", "",  { "e", "e, ee, se, s, es" } },
	{ "IN",   "",  "",  { "e, s", "e, ee, se" } },
	{ "IK",   "",  "s", { "e, es, s, ss", "e, ee, se" } },
	{ "IX",   "",  "",  { "e, s", "e, ee, se, s, es" } },
	/* §18.1 deferred */
	{ "NK1",  "",  "s", { "e", "e, ee, es" } },
	{ "NX1",  "",  "",  { "e", "e, ee, s", "es" } },
	{ "X1N",  "",  "",  { "e", "e, ee", "s", "se" } },
	{ "X1K",  "",  "s", { "e, es", "e, ee", "s", "se" } },
	{ "XK1",  "",  "s", { "e", "e, ee, es", "s, se" } },
	{ "X1K1", "",  "s", { "e", "e, ee, es", "s", "se" } },
	{ "X1X",  "",  "",  { "e", "e, ee, s, es", "s", "se" } },
	{ "XX1",  "",  "",  { "e", "e, ee, s", "es, s, se" } },
	{ "X1X1", "",  "",  { "e", "e, ee, s", "es, s", "se" } },
	{ "K1N",  "s", "",  { "e", "e, ee", "se" } },
	{ "K1K",  "s", "s", { "e, es", "e, ee", "se" } },
	{ "KK1",  "s", "s", { "e", "e, ee, se, es" } },
	{ "K1K1", "s", "s", { "e", "e, ee, es", "se" } },
	{ "K1X",  "s", "",  { "e", "e, ee, s, es", "se" } },
	{ "KX1",  "s", "",  { "e", "e, ee, se, s", "es" } },
	{ "K1X1", "s", "",  { "e", "e, ee, s", "se, es" } },
	{ "I1N",  "",  "",  { "e, s", "e, ee", "se" } },
	{ "I1K",  "",  "s", { "e, es, s", "e, ee", "se" } },
	{ "IK1",  "",  "s", { "e, s", "e, ee, se, es" } },
	{ "I1K1", "",  "s", { "e, s", "e, ee, es", "se" } },
	{ "I1X",  "",  "",  { "e, s", "e, ee, s, es", "se" } },
	{ "IX1",  "",  "",  { "e, s", "e, ee, se, s", "es" } },
	{ "I1X1", "",  "",  { "e, s", "e, ee, s", "se, es" } },
};

static uint8_t token_of(const char *t, size_t len)
{
	static const char *const names[] = {
		[TOK_E] = "e", [TOK_S] = "s", [TOK_EE] = "ee", [TOK_ES] = "es",
		[TOK_SE] = "se", [TOK_SS] = "ss", [TOK_PSK] = "psk",
	};

	for (uint8_t i = TOK_E; i <= TOK_PSK; i++)
		if (strlen(names[i]) == len && !memcmp(names[i], t, len))
			return i;
	return TOK_END;
}

/* "e, es, s" → {TOK_E, TOK_ES, TOK_S, TOK_END}. */
static bool parse_tokens(uint8_t *out, size_t cap, const char *text)
{
	size_t n = 0;

	while (*text) {
		size_t len = strcspn(text, ", ");
		if (len > 0) {
			if (n + 1 >= cap || !(out[n++] = token_of(text, len)))
				return false;
			text += len;
		} else {
			text++;
		}
	}
	out[n] = TOK_END;
	return true;
}

static bool add_psk(struct noise_pattern *p, unsigned int where)
{
	uint8_t *m;
	size_t n;

	if (where > p->n_msgs)
		return false;
	m = p->msg[where == 0 ? 0 : where - 1];
	n = strlen((const char *)m);
	if (n + 1 >= NOISE_MAX_TOKENS)
		return false;
	if (where == 0) {		/* psk0: first token of message 1 */
		memmove(m + 1, m, n + 1);
		m[0] = TOK_PSK;
	} else {			/* pskN: last token of message N */
		m[n] = TOK_PSK;
		m[n + 1] = TOK_END;
	}
	p->has_psk = true;
	return true;
}

/* Apply "psk0+psk2"-style modifiers. */
static bool apply_modifiers(struct noise_pattern *p, const char *mods)
{
	while (*mods) {
		char *end;
		unsigned long where;

		if (strncmp(mods, "psk", 3) != 0 || mods[3] < '0' || mods[3] > '9')
			return false;
		where = strtoul(mods + 3, &end, 10);
		if (!add_psk(p, (unsigned int)where))
			return false;
		mods = end;
		if (*mods == '+')
			mods++;
		else if (*mods)
			return false;
	}
	return true;
}

bool noise_pattern_lookup(struct noise_pattern *p, const char *name)
{
	const char *mods = strstr(name, "psk");
	size_t base_len = mods ? (size_t)(mods - name) : strlen(name);

	memset(p, 0, sizeof(*p));
	for (size_t i = 0; i < sizeof(patterns) / sizeof(patterns[0]); i++) {
		const struct pattern_text *t = &patterns[i];

		if (strlen(t->name) != base_len || memcmp(t->name, name, base_len))
			continue;
		if (!parse_tokens(p->pre_i, sizeof(p->pre_i), t->pre_i) ||
		    !parse_tokens(p->pre_r, sizeof(p->pre_r), t->pre_r))
			return false;
		while (p->n_msgs < NOISE_MAX_MESSAGES && t->msg[p->n_msgs]) {
			if (!parse_tokens(p->msg[p->n_msgs], NOISE_MAX_TOKENS,
					  t->msg[p->n_msgs]))
				return false;
			p->n_msgs++;
		}
		p->one_way = base_len == 1;
		return mods ? apply_modifiers(p, mods) : true;
	}
	return false;
}
