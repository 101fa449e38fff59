/*
 * What runs on by itself in a listing of nft list ruleset: the timers of
 * set elements ("expires 59m58s") and counter values ("packets 3 bytes
 * 120"). Without I/O, so that it is tested alone (tests/test_nft_listing.c).
 *
 * gate apply-nft puts a saved listing back after a trial: the timers go
 * back less the trial's time, since a rollback must give no address more
 * time than it had, and the listing then compares equal to the saved one
 * but for what ran on meanwhile. Text in double quotes (comments) is never
 * touched.
 */
#ifndef POSTERN_NFT_LISTING_H
#define POSTERN_NFT_LISTING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "text_buf.h"

/* An nft duration at s, "1d2h3m4s5ms" or any part of it, in *ms: its
 * length, 0 if s holds none (a unit nft does not write, or no digit). */
size_t nft_duration_parse(const char *s, uint64_t *ms);
/* ms as nft writes it ("1d2h3m4s5ms", "59s", "250ms"); "" for 0. */
void nft_duration_format(uint64_t ms, char *buf, size_t len);

/* listing into out with every "expires DURATION" less elapsed_ms, and at
 * least 1 ms: an element whose time ran out during the trial expires at
 * once instead of being given that time again. False when out of memory. */
bool nft_listing_age(const struct text_buf *listing, uint64_t elapsed_ms,
		     struct text_buf *out);
/* Whether a and b are the same but for expiries and counter values.
 * False too when out of memory. */
bool nft_listing_alike(const struct text_buf *a, const struct text_buf *b);

#endif
