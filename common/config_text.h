/*
 * The pass over a configuration file's text before libconfuse reads it.
 *
 * libconfuse 3.3 counts each comment as one to three extra lines, so every
 * line number after a comment is wrong; it refuses a comment inside a list;
 * and it takes a section still open at the end of the file as closed. So
 * comments are blanked out before it sees the text, newlines kept, and
 * braces are counted.
 */
#ifndef POSTERN_CONFIG_TEXT_H
#define POSTERN_CONFIG_TEXT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Blank out the comments of s[0..len) in place, keeping every newline.
 * False for an unterminated string or comment, a brace never closed, or
 * a public_key whose value is not quoted (base64 breaks unquoted):
 * then *err_line is the line it starts on and *why says what it is.
 */
bool config_text_prepare(char *s, size_t len, int *err_line, const char **why);

#endif
