/* A minimal JSON reader for test data: objects, arrays, strings, literals. */
#ifndef POSTERN_TEST_JSON_H
#define POSTERN_TEST_JSON_H

#include <stddef.h>

enum json_type { JSON_OBJECT, JSON_ARRAY, JSON_STRING, JSON_LITERAL };

struct json {
	enum json_type type;
	char *key;		/* member name inside an object */
	char *text;		/* string contents or literal text */
	struct json *child;	/* first element or member */
	struct json *next;	/* next sibling */
};

/* Parse a whole file; NULL on a syntax error. */
struct json *json_load(const char *path);
void json_free(struct json *j);
/* Member of an object by name, or NULL. */
const struct json *json_get(const struct json *obj, const char *key);
size_t json_count(const struct json *array);

#endif
