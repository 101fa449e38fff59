/* Timers and counters in an nft listing (nft_listing.h). */
#include <stdio.h>
#include <string.h>

#include "nft_listing.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

struct unit {
	const char *name;
	uint64_t ms;
};

/* What runs on, by the word before it. */
static const char *const keys[] = { "expires ", "packets ", "bytes " };
enum { EXPIRES = 0 };

size_t nft_duration_parse(const char *s, uint64_t *ms)
{
	/* "ms" before "m", or "5ms" would be 5 minutes and a stray 's'. */
	static const struct unit units[] = {
		{ "ms", 1 }, { "d", 86400000 }, { "h", 3600000 },
		{ "m", 60000 }, { "s", 1000 },
	};
	const char *p = s;

	*ms = 0;
	while (*p >= '0' && *p <= '9') {
		uint64_t v = 0;
		size_t i;

		while (*p >= '0' && *p <= '9' && v < UINT64_MAX / 100)
			v = v * 10 + (uint64_t)(*p++ - '0');
		for (i = 0; i < N(units); i++)
			if (!strncmp(p, units[i].name, strlen(units[i].name)))
				break;
		if (i == N(units))
			return 0;
		*ms += v * units[i].ms;
		p += strlen(units[i].name);
	}
	return (size_t)(p - s);
}

void nft_duration_format(uint64_t ms, char *buf, size_t len)
{
	static const struct unit units[] = {
		{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 },
		{ "s", 1000 }, { "ms", 1 },
	};
	size_t at = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < N(units) && at < len; i++) {
		if (ms < units[i].ms)
			continue;
		at += (size_t)snprintf(buf + at, len - at, "%llu%s",
			(unsigned long long)(ms / units[i].ms), units[i].name);
		ms %= units[i].ms;
	}
}

/* The key of keys[] that begins a word at p (text from start to end), or
 * -1. */
static int key_at(const char *start, const char *p, const char *end)
{
	if (p > start && p[-1] != ' ' && p[-1] != '\t')
		return -1;
	for (size_t k = 0; k < N(keys); k++)
		if ((size_t)(end - p) > strlen(keys[k]) &&
		    !strncmp(p, keys[k], strlen(keys[k])))
			return (int)k;
	return -1;
}

/* The length of key k's value at p: a duration (in *ms) after "expires",
 * digits after a counter's word. */
static size_t value_len(int k, const char *p, const char *end, uint64_t *ms)
{
	size_t n = 0;

	*ms = 0;
	if (k == EXPIRES)
		return nft_duration_parse(p, ms);
	while (p + n < end && p[n] >= '0' && p[n] <= '9')
		n++;
	return n;
}

/*
 * in into out, outside double quotes: with blank, every value of keys[]
 * as "?" (a comparison key); else every expiry less elapsed_ms. Plain text
 * goes over in runs, not byte by byte: a listing of big sets has
 * megabytes.
 */
static bool rewrite(const struct text_buf *in, bool blank, uint64_t elapsed_ms,
		    struct text_buf *out)
{
	const char *start = in->p ? in->p : "", *end = start + in->len;
	const char *p = start, *copied = start;
	bool quoted = false;

	out->len = 0;
	while (p < end) {
		char d[64] = "?";
		uint64_t ms;
		size_t n;
		int k;

		if (*p == '"')
			quoted = !quoted;
		k = quoted ? -1 : key_at(start, p, end);
		if (k < 0 || (!blank && k != EXPIRES)) {
			p++;
			continue;
		}
		p += strlen(keys[k]);
		if (!text_buf_add(out, copied, (size_t)(p - copied)))
			return false;
		if ((n = value_len(k, p, end, &ms)) && !blank)
			nft_duration_format(ms > elapsed_ms ? ms - elapsed_ms : 1,
					    d, sizeof(d));
		if (n && !text_buf_add(out, d, strlen(d)))
			return false;
		copied = p += n;
	}
	return text_buf_add(out, copied, (size_t)(p - copied));
}

bool nft_listing_age(const struct text_buf *listing, uint64_t elapsed_ms,
		     struct text_buf *out)
{
	return rewrite(listing, false, elapsed_ms, out);
}

bool nft_listing_alike(const struct text_buf *a, const struct text_buf *b)
{
	struct text_buf ka = { 0 }, kb = { 0 };
	bool alike = rewrite(a, true, 0, &ka) && rewrite(b, true, 0, &kb) &&
		     text_buf_equal(&ka, &kb);

	text_buf_free(&ka);
	text_buf_free(&kb);
	return alike;
}
