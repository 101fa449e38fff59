/*
 * The guardian of gate apply-nft: the change, the wait for a confirmation
 * and the rollback without one belong to a process in a session of its
 * own, so that nothing done to the admin's terminal or ssh session (a
 * hang-up, Ctrl-Z, a broken pipe) can stop the rollback
 * (docs/DECISIONS.md, "The lock-out guard").
 *
 * It and the command speak through two pipes. On the report pipe the
 * guardian sends APPLY_CHANGED once the new ruleset is loaded, and at the
 * end its outcome, one byte, followed by its report: lines for stderr,
 * also sent to syslog since the command may be gone. On the answer pipe
 * the command sends one byte, the admin's answer; its end, the command
 * gone, means: roll back now. So does every signal to the guardian that
 * would end it by default (SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGUSR1...);
 * only SIGKILL and SIGSTOP, which no process can catch, stop a rollback.
 * Meanwhile a tunnel of a listed admin accepted after the change confirms
 * it: postern-tunneld's status file says so, with a session time later
 * than the change and other than the one it held just before (which a
 * clock stepped back could make seem later).
 */
#ifndef POSTERN_APPLY_GUARDIAN_H
#define POSTERN_APPLY_GUARDIAN_H

#include <limits.h>
#include <stdbool.h>
#include <time.h>

#include "text_buf.h"

#define APPLY_NFT_CMD "gate apply-nft"	/* what its messages are said as */

/* What the guardian is given: both files checked with nft -c already. */
struct apply_job {
	char saved[PATH_MAX];	/* "flush ruleset" + the listing: nft -f
				 * restores it; kept if a rollback fails */
	char fresh[PATH_MAX];	/* "flush ruleset" + the new ruleset */
	char dir[PATH_MAX];	/* where both are, and the rollback's file */
	char status[PATH_MAX];	/* postern-tunneld's status file */
	char lock_path[PATH_MAX];	/* one apply-nft per network namespace */
	int lock;		/* flock()ed on it; the guardian's to the end */
	struct text_buf listing;	/* nft list ruleset, as it was */
	struct timespec saved_at;	/* of the listing, CLOCK_MONOTONIC */
	unsigned int within;	/* seconds to wait for a confirmation */
};

/* On the answer pipe. */
enum apply_answer {
	APPLY_YES = 'y',
	APPLY_NO = 'n',			/* any other answer */
	APPLY_INTERRUPTED = 'i',	/* a signal to the command */
};

/* On the report pipe. */
enum apply_word {
	APPLY_CHANGED = 'A',		/* the new ruleset is loaded */
	APPLY_KEPT = 'K',
	APPLY_ROLLED_BACK = 'R',
	APPLY_FAILED = 'F',		/* refused, or the rollback failed */
};

/* Start it, with the answer pipe's write end in *answer_fd and the report
 * pipe's read end in *report_fd. False if it cannot be started (errno may
 * say why): then nothing has changed. */
bool apply_guardian_start(const struct apply_job *j, int *answer_fd,
			  int *report_fd);
/* The lock's holder removes its file, then lets it go: whoever opened
 * that file meanwhile finds it unlinked and makes a new one
 * (gate_apply_nft.c, take_lock), so /run keeps no file per namespace. */
void apply_lock_release(const struct apply_job *j);

#endif
