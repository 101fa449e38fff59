/* A growing, bounded text (text_buf.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text_buf.h"

bool text_buf_add(struct text_buf *b, const void *p, size_t n)
{
	char *q;

	if (b->len + n + 1 > TEXT_BUF_MAX || !(q = realloc(b->p, b->len + n + 1)))
		return false;
	memcpy(q + b->len, p, n);
	b->p = q;
	b->len += n;
	b->p[b->len] = '\0';
	return true;
}

bool text_buf_printf(struct text_buf *b, const char *fmt, ...)
{
	char line[8192];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return false;
	return text_buf_add(b, line, (size_t)n < sizeof(line) ? (size_t)n :
			    sizeof(line) - 1);
}

bool text_buf_equal(const struct text_buf *a, const struct text_buf *b)
{
	return a->len == b->len && (a->len == 0 || !memcmp(a->p, b->p, a->len));
}

void text_buf_free(struct text_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = 0;
}
