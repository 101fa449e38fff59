/*
 * The text pre-pass for libconfuse; see config_text.h. Quoting follows its
 * lexer: a backslash escapes the next byte in either kind of string;
 * anywhere else "#" and "//" start a comment to the end of the line, and
 * slash-star one to the next star-slash.
 */
#include "config_text.h"

#include <string.h>

#define MAX_DEPTH 16		/* of braces we remember the line of */

static bool stop(int *line, const char **why, int at, const char *what)
{
	*line = at;
	*why = what;
	return false;
}

/*
 * A key's base64 holds '+', '/' and '=', which end an unquoted value for
 * libconfuse or start a comment: what it then makes of the rest says
 * nothing useful. True when s[i] begins "public_key =" and an unquoted
 * value (not ${VAR}) on the same line.
 */
static bool unquoted_key(const char *s, size_t len, size_t i)
{
	static const char opt[] = "public_key";
	size_t n = sizeof(opt) - 1;

	if (i > 0 && (s[i - 1] == '_' || (s[i - 1] >= 'a' && s[i - 1] <= 'z') ||
		      (s[i - 1] >= 'A' && s[i - 1] <= 'Z') ||
		      (s[i - 1] >= '0' && s[i - 1] <= '9')))
		return false;
	if (len - i < n || memcmp(s + i, opt, n) != 0)
		return false;
	for (i += n; i < len && (s[i] == ' ' || s[i] == '\t'); i++)
		;
	if (i == len || s[i] != '=')
		return false;
	for (i++; i < len && (s[i] == ' ' || s[i] == '\t'); i++)
		;
	return i < len && s[i] != '"' && s[i] != '\'' && s[i] != '$' &&
	       s[i] != '\n' && s[i] != '\r';
}

bool config_text_prepare(char *s, size_t len, int *err_line, const char **why)
{
	int opened[MAX_DEPTH], line = 1, start;
	size_t i = 0, depth = 0;
	char q;

	while (i < len) {
		if (s[i] == '\n') {
			line++;
			i++;
		} else if (s[i] == '{') {
			if (depth < MAX_DEPTH)
				opened[depth] = line;
			depth++;
			i++;
		} else if (s[i] == '}') {
			depth -= depth > 0;	/* an extra one is libconfuse's */
			i++;
		} else if (s[i] == '$' && i + 1 < len && s[i + 1] == '{') {
			/* ${VAR}: one token to libconfuse, braces and all */
			while (i < len && s[i] != '}')
				line += s[i++] == '\n';
			i += i < len;
		} else if (s[i] == '"' || s[i] == '\'') {
			q = s[i++];
			start = line;
			for (; i < len && s[i] != q; i++) {
				if (s[i] == '\\' && i + 1 < len)
					i++;
				if (s[i] == '\n')
					line++;
			}
			if (i == len)
				return stop(err_line, why, start,
					    "unterminated string");
			i++;
		} else if (s[i] == '#' ||
			   (s[i] == '/' && i + 1 < len && s[i + 1] == '/')) {
			while (i < len && s[i] != '\n')
				s[i++] = ' ';
		} else if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
			start = line;
			s[i++] = ' ';
			s[i++] = ' ';
			while (i < len && !(s[i] == '*' && i + 1 < len &&
					    s[i + 1] == '/')) {
				if (s[i] == '\n')
					line++;
				else
					s[i] = ' ';
				i++;
			}
			if (i == len)
				return stop(err_line, why, start,
					    "unterminated comment");
			s[i++] = ' ';
			s[i++] = ' ';
		} else if (unquoted_key(s, len, i)) {
			return stop(err_line, why, line, "public_key: not quoted: "
				    "write public_key = \"KEY\" (unquoted, a key's "
				    "'+', '/' and '=' end the value or start a "
				    "comment)");
		} else {
			i++;
		}
	}
	/* At the end of the file libconfuse takes a section as closed. */
	if (depth > 0)
		return stop(err_line, why,
			    opened[(depth < MAX_DEPTH ? depth : MAX_DEPTH) - 1],
			    "'{' is never closed");
	return true;
}

