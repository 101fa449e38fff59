/* A minimal JSON reader for test data. No unicode escapes beyond \uXXXX
 * of ASCII; that is all the vector files use. */
#include "json.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct parser {
	const char *p;
};

static void skip_space(struct parser *ps)
{
	while (isspace((unsigned char)*ps->p))
		ps->p++;
}

static char *parse_string(struct parser *ps)
{
	const char *start = ++ps->p;	/* past the quote */
	char *out, *o;

	while (*ps->p && *ps->p != '"')
		ps->p += *ps->p == '\\' && ps->p[1] ? 2 : 1;
	if (*ps->p != '"')
		return NULL;
	out = o = malloc((size_t)(ps->p - start) + 1);
	for (const char *s = start; s < ps->p; s++) {
		if (*s != '\\') {
			*o++ = *s;
			continue;
		}
		switch (*++s) {
		case 'n': *o++ = '\n'; break;
		case 't': *o++ = '\t'; break;
		case 'u': *o++ = (char)strtol((char[]){ s[1], s[2], s[3], s[4], 0 },
					      NULL, 16);
			  s += 4; break;
		default: *o++ = *s; break;
		}
	}
	*o = '\0';
	ps->p++;
	return out;
}

static struct json *parse_value(struct parser *ps);

static struct json *parse_container(struct parser *ps, enum json_type type)
{
	struct json *j = calloc(1, sizeof(*j)), **tail = &j->child;
	char close = type == JSON_OBJECT ? '}' : ']';

	j->type = type;
	ps->p++;
	skip_space(ps);
	if (*ps->p == close) {
		ps->p++;
		return j;
	}
	for (;;) {
		char *key = NULL;
		struct json *v;

		skip_space(ps);
		if (type == JSON_OBJECT) {
			if (*ps->p != '"' || !(key = parse_string(ps)))
				goto fail;
			skip_space(ps);
			if (*ps->p++ != ':') {
				free(key);
				goto fail;
			}
		}
		if (!(v = parse_value(ps))) {
			free(key);
			goto fail;
		}
		v->key = key;
		*tail = v;
		tail = &v->next;
		skip_space(ps);
		if (*ps->p == ',') {
			ps->p++;
			continue;
		}
		if (*ps->p++ == close)
			return j;
		goto fail;
	}
fail:
	json_free(j);
	return NULL;
}

static struct json *parse_value(struct parser *ps)
{
	struct json *j;
	const char *start;

	skip_space(ps);
	if (*ps->p == '{')
		return parse_container(ps, JSON_OBJECT);
	if (*ps->p == '[')
		return parse_container(ps, JSON_ARRAY);
	j = calloc(1, sizeof(*j));
	if (*ps->p == '"') {
		j->type = JSON_STRING;
		if (!(j->text = parse_string(ps))) {
			free(j);
			return NULL;
		}
		return j;
	}
	start = ps->p;
	while (*ps->p && (isalnum((unsigned char)*ps->p) || strchr("+-.", *ps->p)))
		ps->p++;
	if (ps->p == start) {
		free(j);
		return NULL;
	}
	j->type = JSON_LITERAL;
	j->text = strndup(start, (size_t)(ps->p - start));
	return j;
}

struct json *json_load(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct parser ps;
	struct json *j;
	char *buf;
	long len;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	buf = malloc((size_t)len + 1);
	if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
		free(buf);
		fclose(f);
		return NULL;
	}
	fclose(f);
	buf[len] = '\0';
	ps.p = buf;
	j = parse_value(&ps);
	skip_space(&ps);
	if (j && *ps.p) {
		json_free(j);
		j = NULL;
	}
	free(buf);
	return j;
}

void json_free(struct json *j)
{
	while (j) {
		struct json *next = j->next;

		json_free(j->child);
		free(j->key);
		free(j->text);
		free(j);
		j = next;
	}
}

const struct json *json_get(const struct json *obj, const char *key)
{
	for (const struct json *c = obj ? obj->child : NULL; c; c = c->next)
		if (c->key && !strcmp(c->key, key))
			return c;
	return NULL;
}

size_t json_count(const struct json *array)
{
	size_t n = 0;

	for (const struct json *c = array ? array->child : NULL; c; c = c->next)
		n++;
	return n;
}
