/*
 * A growing text: what a program printed, a listing, a report. Bounded,
 * since it may hold what another program chose to print, and
 * NUL-terminated after every addition, so that p is a string once
 * anything was added. { 0 } is empty; len = 0 empties it for reuse.
 */
#ifndef POSTERN_TEXT_BUF_H
#define POSTERN_TEXT_BUF_H

#include <stdbool.h>
#include <stddef.h>

#define TEXT_BUF_MAX (64u << 20)	/* bytes, the NUL included */

struct text_buf {
	char *p;		/* NULL until anything was added */
	size_t len;		/* not counting the NUL */
};

/* False, and b unchanged, when out of memory or over TEXT_BUF_MAX. */
bool text_buf_add(struct text_buf *b, const void *p, size_t n);
/* One formatted line of up to 8 KiB (cut there); false as text_buf_add. */
bool text_buf_printf(struct text_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
bool text_buf_equal(const struct text_buf *a, const struct text_buf *b);
void text_buf_free(struct text_buf *b);

#endif
