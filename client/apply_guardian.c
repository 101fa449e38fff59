/* The guardian of gate apply-nft: the change, the wait, the rollback
 * (apply_guardian.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include "apply_guardian.h"
#include "gate_cmd.h"
#include "nft_listing.h"
#include "nft_run.h"
#include "subcommands.h"

#define SAY PROG_NAME ": " APPLY_NFT_CMD ": "
#define POLL_MS 200		/* how often the status file is read */
#define RESTORE_TRIES 3

/* What postern-tunneld's status file says of the last session of a listed
 * admin. */
struct last_session {
	long long at_ms;	/* last_session_at_ms, Unix ms; -1: none */
	char who[160];
};

/* The status file as the wait watches it. */
struct watch {
	const char *path;
	long long baseline;	/* at_ms just before the change */
	int64_t changed;	/* Unix ms, once the change is committed */
	bool warned;		/* that others may write it, once */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static bool send_all(int fd, const void *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p = (const char *)p + w;
		n -= (size_t)w;
	}
	return true;
}

/* --- the rollback ------------------------------------------------------- */

/* The listing as it was, its timers less the time since: a rollback gives
 * no address more time than it had. Its file's name in path. */
static bool write_restore(const struct apply_job *j, char path[PATH_MAX])
{
	struct text_buf text = { 0 };
	struct timespec t;
	char why[PATH_MAX + 64];
	int64_t elapsed;
	bool ok;

	clock_gettime(CLOCK_MONOTONIC, &t);
	elapsed = (t.tv_sec - j->saved_at.tv_sec) * 1000 +
		(t.tv_nsec - j->saved_at.tv_nsec) / 1000000;
	ok = nft_listing_age(&j->listing, elapsed > 0 ? (uint64_t)elapsed : 0,
			     &text);
	if (ok && !(ok = nft_ruleset_write(j->dir, "restore", &text, path, why,
					   sizeof(why))))
		fprintf(stderr, SAY "%s\n", why);
	text_buf_free(&text);
	return ok;
}

/* Checked before the change, so a refusal now is something passing
 * (another program's transaction, memory): tried RESTORE_TRIES times. */
static bool load_restore(const char *path, char *msg, size_t len)
{
	struct text_buf err = { 0 };
	bool loaded = false;

	for (int i = 0; i < RESTORE_TRIES && !loaded; i++) {
		if (i > 0)
			sleep(1);
		err.len = 0;
		loaded = nft_load(path, &err);
	}
	if (!loaded)
		nft_error_line(&err, msg, len);
	text_buf_free(&err);
	return loaded;
}

/* Whether the ruleset came back as it was, said in note. True when the
 * saved file is no longer needed. */
static bool compare_back(const struct apply_job *j, const char *why,
			 struct text_buf *note)
{
	struct text_buf now = { 0 };
	bool same = false;

	if (!nft_list_ruleset(&now, NULL)) {
		text_buf_printf(note, SAY "%s: rolled back, but nft list "
				"ruleset failed: check it; the saved ruleset "
				"is %s\n", why, j->saved);
	} else if (text_buf_equal(&now, &j->listing)) {
		text_buf_printf(note, SAY "%s: rolled back; nft list ruleset "
				"is the same as before, byte for byte\n", why);
		same = true;
	} else if (nft_listing_alike(&now, &j->listing)) {
		text_buf_printf(note, SAY "%s: rolled back; nft list ruleset "
				"is the same as before but for the timers of "
				"set elements and counter values, which ran "
				"on\n", why);
		same = true;
	} else {
		text_buf_printf(note, SAY "%s: ROLLED BACK BUT DIFFERENT: "
				"nft list ruleset differs from the saved one "
				"beyond timers and counters (did a timed "
				"element expire, or did something else change "
				"the ruleset meanwhile?); compare it with %s, "
				"the ruleset as it was (nft -f loads it)\n",
				why, j->saved);
	}
	text_buf_free(&now);
	return same;
}

/* Put the saved ruleset back, in one transaction, and check it is. */
static enum apply_word roll_back(const struct apply_job *j, const char *why,
				 struct text_buf *note)
{
	char path[PATH_MAX], msg[2048];

	if (!write_restore(j, path)) {
		text_buf_printf(note, SAY "%s, and the rollback could not "
				"be prepared: the new ruleset is still loaded; "
				"restore the old one now with: nft -f %s\n",
				why, j->saved);
		return APPLY_FAILED;
	}
	if (!load_restore(path, msg, sizeof(msg))) {
		text_buf_printf(note, SAY "%s; ROLLBACK FAILED: nft -f: %s; "
				"the new ruleset is still loaded: restore the "
				"old one now with: nft -f %s\n",
				why, msg, j->saved);
		unlink(path);
		return APPLY_FAILED;
	}
	unlink(path);
	if (compare_back(j, why, note))
		unlink(j->saved);
	return APPLY_ROLLED_BACK;
}

/* --- the change and the wait -------------------------------------------- */

/* The new ruleset, in one transaction. Refused, it changed nothing:
 * checked all the same, and put back if it somehow did. */
static bool change(const struct apply_job *j, struct text_buf *note)
{
	struct text_buf err = { 0 }, now = { 0 };
	char msg[2048];
	bool loaded = nft_load(j->fresh, &err);

	unlink(j->fresh);
	if (loaded)
		goto out;
	nft_error_line(&err, msg, sizeof(msg));
	if (nft_list_ruleset(&now, NULL) && text_buf_equal(&now, &j->listing)) {
		text_buf_printf(note, SAY "nft -f refused the new ruleset, "
				"nothing changed: %s\n", msg);
		unlink(j->saved);
	} else {
		text_buf_printf(note, SAY "nft -f refused the new "
				"ruleset: %s\n", msg);
		roll_back(j, "the new ruleset was refused", note);
	}
out:
	text_buf_free(&now);
	text_buf_free(&err);
	return loaded;
}

/* postern-tunneld's status file into s (at_ms -1 if it says nothing). A
 * file others may write is no evidence: false, said once in note. */
static bool read_status(struct watch *w, struct last_session *s,
			struct text_buf *note)
{
	char *text = gate_status_read(w->path), at[32], name[64] = "", src[80];

	s->at_ms = -1;
	s->who[0] = '\0';
	if (!text) {
		if (errno == EPERM && !w->warned)
			text_buf_printf(note, SAY "%s is writable by others: "
					"not taken as confirmation\n", w->path);
		w->warned = w->warned || errno == EPERM;
		return false;
	}
	if (gate_status_get(text, "last_session_at_ms", at, sizeof(at)))
		s->at_ms = strtoll(at, NULL, 10);
	gate_status_get(text, "last_session_client", name, sizeof(name));
	if (!gate_status_get(text, "last_session_src", src, sizeof(src)))
		src[0] = '\0';
	snprintf(s->who, sizeof(s->who), "%s%s%s%s",
		 name[0] ? name : "a listed admin", src[0] ? " (" : "", src,
		 src[0] ? ")" : "");
	free(text);
	return true;
}

/*
 * Whether a session of a listed admin began after the change: a
 * last_session_at_ms later than the change (an admin who connects in its
 * second counts: the seconds of last_session_at could not tell) and other
 * than the one of just before: that one is from before the change even
 * when it seems later, the clock stepped back since, or a time from the
 * future. Who it was in s.
 */
static bool tunnel_confirmed(struct watch *w, struct last_session *s,
			     struct text_buf *note)
{
	return read_status(w, s, note) && s->at_ms != w->baseline &&
		s->at_ms > (long long)w->changed;
}

/* The command's answer, once answer_fd is readable: NULL for yes, else
 * why to roll back; "" to wait on. */
static const char *answer(int answer_fd, struct text_buf *note)
{
	ssize_t r;
	char c;

	if ((r = read(answer_fd, &c, 1)) < 0 && errno == EINTR)
		return "";
	if (r == 1 && c == APPLY_YES) {
		text_buf_printf(note, SAY "confirmed on the terminal: the new "
				"ruleset is kept\n");
		return NULL;
	}
	if (r != 1)
		return "the command ended before a confirmation";
	return c == APPLY_INTERRUPTED ? "interrupted" :
		"not confirmed on the terminal";
}

/* Until a confirmation (NULL, said in note) or a reason to roll back
 * (returned), by deadline (monotonic ms) at the latest. The signals are
 * blocked but while waiting, with the mask orig. */
static const char *wait_confirmation(int answer_fd, struct watch *w,
				     int64_t deadline, const sigset_t *orig,
				     struct text_buf *note)
{
	struct last_session s;
	const char *why;

	for (;;) {
		struct pollfd p = { answer_fd, POLLIN, 0 };
		int64_t left = deadline - mono_ms();
		struct timespec ts;

		if (tunnel_confirmed(w, &s, note)) {
			text_buf_printf(note, SAY "confirmed by a tunnel from %s: "
					"the new ruleset is kept\n", s.who);
			return NULL;
		}
		if (left <= 0)
			return "not confirmed in time";
		if (left > POLL_MS)
			left = POLL_MS;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000;
		if (ppoll(&p, 1, &ts, orig) < 0 && errno != EINTR)
			return "cannot wait";
		if (interrupted)
			return "interrupted";
		if (!p.revents)
			continue;
		why = answer(answer_fd, note);
		if (!why || *why)
			return why;
	}
}

/* --- the guardian ------------------------------------------------------- */

/* Every signal that would end the guardian by default and can be caught,
 * but the faults (SIGSEGV and the like: after one, nothing it would do is
 * to be trusted). */
static void rollback_signals(sigset_t *set)
{
	static const int sigs[] = {
		SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM,
		SIGVTALRM, SIGPROF, SIGXCPU, SIGXFSZ, SIGIO, SIGPWR,
#ifdef SIGSTKFLT
		SIGSTKFLT,
#endif
	};

	sigemptyset(set);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(set, sigs[i]);
	for (int sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		sigaddset(set, sig);
}

/*
 * Of the terminal's signals none is meant for the guardian, which has
 * none. Every other that would end it means: roll back now. They are
 * blocked but while waiting (with the mask in orig), so that none cuts
 * the change or a rollback short; only SIGKILL and SIGSTOP can stop one.
 */
static void guardian_signals(sigset_t *orig)
{
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	signal(SIGTSTP, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	rollback_signals(&set);
	sa.sa_mask = set;
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&set, sig) == 1)
			sigaction(sig, &sa, NULL);
	/* The command held some of them, and its mask is inherited. */
	sigprocmask(SIG_BLOCK, &set, orig);
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&set, sig) == 1)
			sigdelset(orig, sig);
}

/* The guardian's last word: the outcome and its report to the command,
 * and the report to syslog, since the command may be gone. */
static void guardian_report(int report_fd, enum apply_word o,
			    const struct text_buf *note)
{
	char c = (char)o;
	const char *line, *end;

	for (line = note->p; line && *line; line = *end ? end + 1 : end) {
		end = strchrnul(line, '\n');
		syslog(o == APPLY_KEPT ? LOG_NOTICE : LOG_WARNING, "%.*s",
		       (int)(end - line), line);
	}
	if (!send_all(report_fd, &c, 1) && note->len)	/* the command is gone */
		send_all(STDERR_FILENO, note->p, note->len);
	else if (note->len)
		send_all(report_fd, note->p, note->len);
}

static void guardian(const struct apply_job *j, int answer_fd, int report_fd)
{
	struct text_buf note = { 0 };
	struct watch w = { .path = j->status };
	struct last_session before;
	char c = APPLY_CHANGED;
	sigset_t orig;
	enum apply_word o = APPLY_FAILED;
	const char *why = NULL;
	int64_t deadline;	/* monotonic ms */

	guardian_signals(&orig);
	openlog(PROG_NAME, LOG_PID, LOG_AUTHPRIV);
	read_status(&w, &before, &note);
	w.baseline = before.at_ms;
	if (!change(j, &note))
		goto report;
	w.changed = wall_ms();
	deadline = mono_ms() + (int64_t)j->within * 1000;
	syslog(LOG_NOTICE, APPLY_NFT_CMD ": new ruleset applied; rolled back in "
	       "%u s unless confirmed (saved: %s)", j->within, j->saved);
	if (!send_all(report_fd, &c, 1))
		why = "the command ended before the change";
	if (!why)
		why = wait_confirmation(answer_fd, &w, deadline, &orig, &note);
	if (why) {
		o = roll_back(j, why, &note);
	} else {
		o = APPLY_KEPT;
		unlink(j->saved);
	}
report:
	/* The ruleset is final: a run started once the command has ended
	 * must not find the lock still held. */
	apply_lock_release(j);
	guardian_report(report_fd, o, &note);
	text_buf_free(&note);
}

/* Stdin and stdout on /dev/null, but for an fd the guardian keeps: of the
 * pipes or the lock, had the command been started with one closed. */
static void quiet_stdio(const struct apply_job *j, int answer_fd, int report_fd)
{
	int null = open("/dev/null", O_RDWR);

	if (null < 0)
		return;
	for (int fd = 0; fd <= 1; fd++)
		if (fd != null && fd != answer_fd && fd != report_fd &&
		    fd != j->lock)
			dup2(null, fd);
	if (null > 2)
		close(null);
}

void apply_lock_release(const struct apply_job *j)
{
	struct stat held, named;

	if (j->lock < 0)
		return;
	/* Only if the name is still ours: whoever holds the lock made it. */
	if (fstat(j->lock, &held) == 0 && stat(j->lock_path, &named) == 0 &&
	    held.st_dev == named.st_dev && held.st_ino == named.st_ino)
		unlink(j->lock_path);
	close(j->lock);
}

/* Start the guardian: two forks, so that it is no child of the command and
 * leads no session that a terminal could come back to; setsid, so that no
 * hang-up or job control of the admin's terminal reaches it. Its stderr
 * stays the command's, for the case that the command is gone. */
bool apply_guardian_start(const struct apply_job *j, int *answer_fd,
			  int *report_fd)
{
	int a[2], r[2], status;
	pid_t pid, w;

	if (pipe2(a, O_CLOEXEC) < 0)
		return false;
	if (pipe2(r, O_CLOEXEC) < 0) {
		close(a[0]), close(a[1]);
		return false;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		close(a[0]), close(a[1]), close(r[0]), close(r[1]);
		return false;
	}
	if (pid == 0) {
		close(a[1]);
		close(r[0]);
		if (setsid() < 0)
			_exit(1);
		if ((pid = fork()) != 0)
			_exit(pid < 0);
		quiet_stdio(j, a[0], r[1]);
		if (chdir("/") < 0)
			_exit(1);
		guardian(j, a[0], r[1]);
		_exit(0);
	}
	close(a[0]);
	close(r[1]);
	while ((w = waitpid(pid, &status, 0)) < 0 && errno == EINTR)
		;
	if (w < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		close(a[1]), close(r[0]);
		return false;
	}
	*answer_fd = a[1];
	*report_fd = r[0];
	return true;
}
