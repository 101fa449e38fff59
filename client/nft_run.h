/*
 * Running external tools, nft above all, bounded: TOOL_SECONDS and
 * TEXT_BUF_MAX of output per run, after which the tool is killed and the
 * run has failed. gate apply-nft runs the nft binary rather than linking
 * libnftables: nft list ruleset is the text to give back, and nft -f of
 * "flush ruleset" and that text is the one transaction that restores it.
 *
 * A tool named without a slash is looked for in /usr/sbin, then /sbin,
 * and only then on PATH: root's PATH may hold a directory another user
 * can write, and sudo and su may leave sbin off it. Nothing here writes to
 * stderr: failures come back as text.
 */
#ifndef POSTERN_NFT_RUN_H
#define POSTERN_NFT_RUN_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "text_buf.h"

#define TOOL_SECONDS 60		/* bound on one run */

/*
 * Run argv with stdin from /dev/null, stdout added to out and stderr to
 * err (either may be NULL: discarded). The exit status, or -1 when it
 * could not run, was killed, or outran its bounds (a run past
 * TOOL_SECONDS, even after it closed its output, is killed and err says
 * so).
 */
int tool_run(char *const argv[], struct text_buf *out, struct text_buf *err);

/* nft -c -f FILE: the kernel is asked, nothing is committed. True when it
 * would load; else nft's words are added to err. */
bool nft_check(const char *file, struct text_buf *err);
/* nft -f FILE: one transaction, committed whole or not at all. */
bool nft_load(const char *file, struct text_buf *err);
/* nft list ruleset, in out (emptied first). */
bool nft_list_ruleset(struct text_buf *out, struct text_buf *err);

/*
 * What nft said in err, in one line: its first error with what its
 * carets point at and the line it is in,
 *   'foo' in "udp dport 22 foo" fails: syntax error, unexpected string
 * else its last line. Less nft's guess after "; did you mean": for an
 * error of the kernel's it names whatever exists with a similar name,
 * which only misleads.
 */
void nft_error_line(const struct text_buf *err, char *out, size_t len);
/* Only the words of nft's first error, else its first line; less the
 * guess either way. */
void nft_error_words(const struct text_buf *err, char *out, size_t len);

/*
 * DIR/postern-nft-WHAT.XXXXXX (its name in path), root-only, holding head
 * and body. False, with "PATH: why" in why and no file left, if it cannot
 * be written.
 */
bool nft_file_write(const char *dir, const char *what, const char *head,
		    const struct text_buf *body, char path[PATH_MAX],
		    char *why, size_t why_len);
/* The same with "flush ruleset" first: nft -f of it replaces the whole
 * ruleset with body, in one transaction. */
bool nft_ruleset_write(const char *dir, const char *what,
		       const struct text_buf *body, char path[PATH_MAX],
		       char *why, size_t why_len);

#endif
