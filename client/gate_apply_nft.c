/*
 * postern gate apply-nft [--confirm-within S]: load the ruleset that
 * posternd --print-nft gives, and put the previous one back unless the
 * admin confirms in time that they can still get in (iptables-apply's
 * idea, for nftables).
 *
 * Check first, change second: the new ruleset and the saved one (so that
 * the rollback cannot fail for a reason known now) both go through nft's
 * check mode before anything changes. Each change is one nft transaction
 * ("flush ruleset" and the rules, in one file): no half-applied state.
 *
 * The change, the wait and the rollback belong to a guardian process
 * (apply_guardian.c). This command prepares, asks on the terminal and
 * relays the answer; if it dies or is interrupted, the guardian rolls back
 * at once (docs/DECISIONS.md). nft_run.c runs nft; nft_listing.c keeps the
 * listing's timers from restarting.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "apply_guardian.h"
#include "config.h"
#include "gate_cmd.h"
#include "nft_run.h"

#define DEFAULT_WITHIN 60
#define MIN_WITHIN 5
#define MAX_WITHIN 3600
#define LOCK_TRIES 10		/* a lock file removed under us: made anew */

/* A line typed on the terminal, as it comes. */
struct typed {
	char text[64];
	size_t got;
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	fputs(PROG_NAME ": " APPLY_NFT_CMD ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static bool read_fd_all(int fd, struct text_buf *b)
{
	char chunk[16384];
	ssize_t r;

	while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || !text_buf_add(b, chunk, (size_t)r))
			return false;
	}
	return true;
}

/* Whether st is root's alone (or this euid's): owned so, and writable by
 * no group or other; a directory with the sticky bit may be, if
 * sticky_ok, since no other user can rename or remove what is not theirs
 * in it (/tmp). Else why not, in why. */
static bool root_alone(const struct stat *st, bool sticky_ok, char *why,
		       size_t len)
{
	if (st->st_uid != 0 && st->st_uid != geteuid())
		snprintf(why, len, "is owned by uid %u", (unsigned)st->st_uid);
	else if ((st->st_mode & 022) && !(sticky_ok && st->st_mode & S_ISVTX))
		snprintf(why, len, "is writable by group or others (mode %04o)",
			 (unsigned)(st->st_mode & 07777));
	else
		return true;
	return false;
}

/* A test hook's file is honoured only if root's alone: whoever could
 * write it would choose the ruleset. */
static bool hook_trusted(const char *verb, const char *var, const char *path,
			 const struct stat *st)
{
	char why[80];

	if (root_alone(st, false, why, sizeof(why)))
		return true;
	fail("%s %s=%s: it %s, so another user could choose the ruleset; "
	     "nothing changed", verb, var, path, why);
	return false;
}

/* $POSTERN_APPLY_NFT_FILE into b; its owner and mode are the opened
 * file's, so that what is checked is what is read. */
static bool read_hook_file(const char *path, struct text_buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	bool ok;

	if (fd < 0 || fstat(fd, &st) < 0) {
		fail("%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	if (!hook_trusted("not using", "POSTERN_APPLY_NFT_FILE", path, &st)) {
		close(fd);
		return false;
	}
	errno = 0;
	if (!(ok = read_fd_all(fd, b)))
		fail("%s: %s", path, errno ? strerror(errno) : "cannot read it");
	close(fd);
	return ok;
}

/* --- before the change --------------------------------------------------- */

static int usage(void)
{
	fprintf(stderr, "Usage: %s [-c FILE] gate apply-nft [--confirm-within S]"
		" (S from %d to %d, default %d)\n", PROG_NAME, MIN_WITHIN,
		MAX_WITHIN, DEFAULT_WITHIN);
	return EXIT_USAGE;
}

static bool parse_within(const char *s, unsigned int *v)
{
	char *end;
	unsigned long n;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || *end || n < MIN_WITHIN || n > MAX_WITHIN)
		return false;
	*v = (unsigned int)n;
	return true;
}

/* posternd: $POSTERN_POSTERND (if root's alone), else ../sbin/posternd
 * beside this program (both installed from one package), else in
 * /usr/sbin, /sbin or on PATH (nft_run.h). */
static bool posternd_path(char *buf, size_t len)
{
	const char *env = getenv("POSTERN_POSTERND");
	char self[PATH_MAX];
	struct stat st;
	ssize_t n;

	if (env && *env) {
		if (stat(env, &st) < 0) {
			fail("%s: %s", env, strerror(errno));
			return false;
		}
		snprintf(buf, len, "%s", env);
		return hook_trusted("not running", "POSTERN_POSTERND", env, &st);
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;

		self[n] = '\0';
		if ((slash = strrchr(self, '/')))
			*slash = '\0';
		if ((size_t)snprintf(buf, len, "%s/../sbin/posternd", self) < len &&
		    access(buf, X_OK) == 0)
			return true;
	}
	snprintf(buf, len, "posternd");
	return true;
}

/* The ruleset to apply: $POSTERN_APPLY_NFT_FILE's (for tests: a variant
 * this kernel can load), else what posternd --print-nft prints. */
static bool new_ruleset(const char *config, struct text_buf *out)
{
	const char *file = getenv("POSTERN_APPLY_NFT_FILE");
	char posternd[PATH_MAX], msg[2048];
	struct text_buf err = { 0 };
	bool ok;

	if (file && *file)
		return read_hook_file(file, out);
	if (!posternd_path(posternd, sizeof(posternd)))
		return false;
	char *argv[] = { posternd, "--print-nft", "-c", (char *)config, NULL };
	ok = tool_run(argv, out, &err) == 0 && out->len > 0;
	if (!ok) {
		size_t n = err.len;

		while (n > 0 && err.p[n - 1] == '\n')
			n--;
		snprintf(msg, sizeof(msg), "%.*s", (int)n, err.p ? err.p : "");
		fail("%s --print-nft -c %s failed%s%s", posternd, config,
		     n ? ": " : "", msg);
	}
	text_buf_free(&err);
	return ok;
}

/* dir, and every directory above it, root's alone; else the first that is
 * not in at, and why. dir itself is the one opened: its fstat is of what
 * realpath found. */
static bool dir_root_alone(const char *dir, char at[PATH_MAX], char *why,
			   size_t len)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	bool sticky_ok = false;
	struct stat st;
	char *slash;

	snprintf(at, PATH_MAX, "%s", dir);
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(why, len, "cannot be opened: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return false;
	}
	close(fd);
	for (;;) {
		if (!root_alone(&st, sticky_ok, why, len))
			return false;
		if (!(slash = strrchr(at, '/')) || (slash == at && !at[1]))
			return true;
		if (slash == at)
			at[1] = '\0';	/* "/" */
		else
			*slash = '\0';
		if (stat(at, &st) < 0) {
			snprintf(why, len, "cannot be looked at: %s", strerror(errno));
			return false;
		}
		sticky_ok = true;
	}
}

/* Where to keep the saved ruleset: $TMPDIR (tests), else /run; only where
 * no other user could swap the files (the trial one before it is loaded,
 * the saved one before a rollback): that would give them the firewall. */
static bool state_dir(char *buf, size_t len)
{
	const char *t = getenv("TMPDIR");
	char at[PATH_MAX], why[80];

	if (!t || !*t)
		t = "/run";
	if (!realpath(t, buf) || strlen(buf) + 64 > len) {
		fail("%s: %s", t, errno ? strerror(errno) : "path too long");
		return false;
	}
	if (!dir_root_alone(buf, at, why, sizeof(why))) {
		fail("not using %s for the rulesets: %s %s, so another user could "
		     "swap them; nothing changed", buf, at, why);
		return false;
	}
	return true;
}

/* This network namespace, by the inode of its nsfs file: rulesets are per
 * namespace, and so are the lock and the saved files' names. */
static bool netns_id(unsigned long long *id)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st) < 0) {
		fail("/proc/self/ns/net: %s", strerror(errno));
		return false;
	}
	*id = (unsigned long long)st.st_ino;
	return true;
}

/* One try of take_lock: the fd, -1 (said) when refused, -2 when the file
 * was removed by its last holder between our open and flock. */
static int lock_once(const char *path)
{
	struct stat held, named;
	int fd;

	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
		fail("%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno == EWOULDBLOCK)
			fail("another apply-nft is waiting for its confirmation; "
			     "let it end first");
		else
			fail("%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (fstat(fd, &held) == 0 && stat(path, &named) == 0 &&
	    held.st_dev == named.st_dev && held.st_ino == named.st_ino)
		return fd;
	close(fd);
	return -2;
}

/*
 * One apply-nft at a time in a network namespace: a second would save the
 * first one's trial ruleset as "the previous one". The lock is in /run
 * whatever TMPDIR says (each TMPDIR would have its own), named after the
 * namespace; the guardian holds it to the end (apply_lock_release).
 */
static bool take_lock(struct apply_job *j, unsigned long long netns)
{
	snprintf(j->lock_path, sizeof(j->lock_path),
		 "/run/postern-apply-nft.%llu.lock", netns);
	for (int i = 0; i < LOCK_TRIES; i++)
		if ((j->lock = lock_once(j->lock_path)) != -2)
			return j->lock >= 0;
	fail("%s: removed each time it was locked", j->lock_path);
	return false;
}

/*
 * A saved ruleset of this namespace with no guardian (the lock is ours):
 * its guardian was killed, or kept it when a rollback went wrong. Until
 * the admin has dealt with it no run starts, since the ruleset now loaded
 * may be that run's trial one and would be saved as "the previous one".
 */
static bool left_behind(const char *dir, unsigned long long netns)
{
	char prefix[64];
	struct dirent *e;
	bool found = false;
	DIR *d;

	snprintf(prefix, sizeof(prefix), "postern-nft-saved.%llu.", netns);
	if (!(d = opendir(dir))) {
		fail("%s: %s", dir, strerror(errno));
		return true;
	}
	while (!found && (e = readdir(d)))
		if ((found = !strncmp(e->d_name, prefix, strlen(prefix))))
			fail("%s/%s was left by a run whose guardian is gone: "
			     "nft -f %s/%s restores the ruleset from before that "
			     "run; remove the file once the ruleset is as it "
			     "should be; nothing changed", dir, e->d_name, dir,
			     e->d_name);
	closedir(d);
	return found;
}

/* The status file of postern-tunneld from the configuration (or its
 * default), which says when the last session of a listed admin began. */
static bool status_path(const char *config, char *buf, size_t len)
{
	struct server_config cfg;
	char err[1024];

	if (!server_config_load(&cfg, config, err, sizeof(err))) {
		fail("%s", err);
		return false;
	}
	snprintf(buf, len, "%s", cfg.tunnel.status_file);
	server_config_free(&cfg);
	return true;
}

static bool write_ruleset(const char *dir, const char *what,
			  const struct text_buf *body, char path[PATH_MAX])
{
	char why[PATH_MAX + 64];

	if (nft_ruleset_write(dir, what, body, path, why, sizeof(why)))
		return true;
	fail("%s", why);
	return false;
}

/* The first rule of text with a queue statement, trimmed, or NULL. */
static const char *queue_rule(const struct text_buf *text, int *len)
{
	const char *line, *end, *q;

	for (line = text->p; line && *line; line = *end ? end + 1 : end) {
		end = strchrnul(line, '\n');
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '#')
			continue;
		for (q = line; (q = strstr(q, "queue ")) && q < end; q++)
			if (q == line || q[-1] == ' ' || q[-1] == '\t') {
				*len = (int)(end - line);
				return line;
			}
	}
	return NULL;
}

/*
 * Why nft -c refused text, in one line. nft 1.0 pins a kernel's refusal
 * inside a "flush ruleset" transaction on the wrong line (the table), so a
 * ruleset with a queue statement is asked about that statement alone: a
 * kernel without nft_queue, as some are built, refuses it.
 */
static void refusal(const char *dir, const struct text_buf *text,
		    const struct text_buf *err, char *out, size_t len, bool *queue)
{
	static const char probe[] = "table inet postern_probe {\n"
		"\tchain input {\n\t\tudp dport 9 queue num 0 bypass\n\t}\n}\n";
	struct text_buf perr = { 0 };
	char path[PATH_MAX], why[PATH_MAX + 64], msg[1024];
	const char *rule;
	int n;

	*queue = false;
	if (!(rule = queue_rule(text, &n))) {
		nft_error_line(err, out, len);
		return;
	}
	if (!nft_file_write(dir, "probe", probe, NULL, path, why, sizeof(why))) {
		fail("%s", why);
	} else {
		if (!nft_check(path, &perr) && perr.len) {
			*queue = true;
			nft_error_words(&perr, msg, sizeof(msg));
			snprintf(out, len, "the queue statement of \"%.*s\" fails "
				 "(nft: %s)", n, rule, msg);
		}
		unlink(path);
		text_buf_free(&perr);
	}
	if (!*queue)
		nft_error_line(err, out, len);
}

/* Both files through nft -c: the new ruleset, and the saved one, since
 * the rollback must not fail for a reason known now (a queue rule that
 * iptables-nft added on such a kernel, say, which nft lists but cannot
 * load back). */
static bool check_both(const struct apply_job *j, const struct text_buf *fresh)
{
	struct text_buf err = { 0 };
	char msg[2048];
	bool queue, ok = false;

	if (!nft_check(j->fresh, &err)) {
		refusal(j->dir, fresh, &err, msg, sizeof(msg), &queue);
		fail("this kernel cannot load the ruleset, nothing changed: %s%s",
		     msg, queue ? "; the kernel lacks nft's queue statement "
		     "(nft_queue): queue the knocks with iptables-nft -j NFQUEUE "
		     "instead, as docs/NFT.md says" : "");
		goto out;
	}
	err.len = 0;
	if (!nft_check(j->saved, &err)) {
		refusal(j->dir, &j->listing, &err, msg, sizeof(msg), &queue);
		fail("nft cannot load the current ruleset back, so a rollback "
		     "would fail; nothing changed: %s%s", msg, queue ?
		     " (iptables-nft's? nft lists it, but this kernel cannot "
		     "load it)" : "");
		goto out;
	}
	ok = true;
out:
	text_buf_free(&err);
	return ok;
}

/* Everything before the change; nothing has changed when it fails, and no
 * file is left. The saved file is named after the namespace, for
 * left_behind. */
static bool prepare(struct apply_job *j, const char *config,
		    unsigned long long netns)
{
	struct text_buf fresh = { 0 }, err = { 0 };
	char msg[2048], saved[40];
	bool ok = false;

	if (!new_ruleset(config, &fresh))
		goto out;
	if (!nft_list_ruleset(&j->listing, &err)) {
		nft_error_line(&err, msg, sizeof(msg));
		fail("nft list ruleset failed: %s", msg);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &j->saved_at);
	snprintf(saved, sizeof(saved), "saved.%llu", netns);
	if (!write_ruleset(j->dir, saved, &j->listing, j->saved))
		goto out;
	if (!write_ruleset(j->dir, "new", &fresh, j->fresh)) {
		unlink(j->saved);
		goto out;
	}
	if (!(ok = check_both(j, &fresh))) {
		unlink(j->fresh);
		unlink(j->saved);
	}
out:
	text_buf_free(&fresh);
	text_buf_free(&err);
	return ok;
}

/* --- while the guardian waits -------------------------------------------- */

/* SIGHUP, SIGINT, SIGTERM: a flag, for the guardian to be told. Blocked
 * but while waiting, with the mask orig (hold_signals). */
static void catch_signals(bool hup_ignored)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (!hup_ignored)
		sigaction(SIGHUP, &sa, NULL);
}

static ssize_t read_byte(int fd, char *c)
{
	ssize_t r;

	while ((r = read(fd, c, 1)) < 0 && errno == EINTR)
		;
	return r;
}

/* The question on the terminal: its fd, with *asked if the prompt is out;
 * without one, -1, and stderr says a tunnel is awaited. */
static int ask(const struct apply_job *j, bool *asked)
{
	int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	char prompt[160];
	int n;

	*asked = false;
	if (tty < 0) {
		fprintf(stderr, "Ruleset applied. No terminal: waiting up to %u s "
			"for a tunnel from a listed admin to confirm it (%s)\n",
			j->within, j->status);
		return -1;
	}
	/* Typed ahead, before the change was seen: not an answer. */
	tcflush(tty, TCIFLUSH);
	n = snprintf(prompt, sizeof(prompt), "Ruleset applied. Can you "
		     "still connect? Type yes within %u s to keep it: ", j->within);
	*asked = write(tty, prompt, (size_t)n) == n;
	return tty;
}

/* Once tty is readable: APPLY_YES or APPLY_NO for a whole line (or a full
 * buffer), 0 while it is not, -1 when the terminal is gone. */
static int read_typed(int tty, struct typed *t)
{
	ssize_t r = read(tty, t->text + t->got, sizeof(t->text) - 1 - t->got);

	if (r <= 0)
		return -1;
	t->got += (size_t)r;
	if (!memchr(t->text, '\n', t->got) && t->got < sizeof(t->text) - 1)
		return 0;
	t->text[t->got] = '\0';
	t->text[strcspn(t->text, "\r\n")] = '\0';
	return !strcmp(t->text, "yes") ? APPLY_YES : APPLY_NO;
}

/*
 * Ask, and relay the answer: APPLY_YES, APPLY_NO, or APPLY_INTERRUPTED
 * for a signal. The guardian's outcome (and, in parallel, a tunnel's
 * confirmation) ends the wait.
 */
static void ask_and_relay(const struct apply_job *j, int answer_fd,
			  int report_fd, const sigset_t *orig)
{
	struct typed typed = { .got = 0 };
	bool asked, sent = false;
	int tty = ask(j, &asked);
	char c;

	for (;;) {
		struct pollfd p[2] = { { report_fd, POLLIN, 0 },
				       { sent ? -1 : tty, POLLIN, 0 } };
		int got;

		if (ppoll(p, 2, NULL, orig) < 0 && errno != EINTR)
			break;
		if (interrupted && !sent) {
			c = APPLY_INTERRUPTED;
			sent = write(answer_fd, &c, 1) == 1;
		}
		if (p[0].revents)
			break;
		if (!p[1].revents || !(got = read_typed(tty, &typed)))
			continue;
		if (got < 0) {	/* hung up, or ^D: the tunnel may still */
			close(tty);
			tty = -1;
			continue;
		}
		c = (char)got;
		sent = write(answer_fd, &c, 1) == 1;
		asked = false;
	}
	/* A terminal gone meanwhile misses the newline; the report goes to
	 * stderr anyway. */
	if (asked && tty >= 0 && write(tty, "\n", 1) != 1)
		asked = false;
	if (tty >= 0)
		close(tty);
}

/* The guardian's outcome, word (-1: none came), and its report, on
 * stderr: the exit status. */
static int outcome(const struct apply_job *j, int report_fd, int word)
{
	struct text_buf report = { 0 };
	int status = EXIT_FAIL;

	if (word >= 0 && read_fd_all(report_fd, &report)) {
		fputs(report.p ? report.p : "", stderr);
		status = word == APPLY_KEPT ? EXIT_OK : EXIT_FAIL;
	} else {
		fail("the guardian ended without a word: check the ruleset "
		     "(nft list ruleset); the saved one is %s (nft -f restores it)",
		     j->saved);
	}
	text_buf_free(&report);
	return status;
}

static int confirm(const struct apply_job *j, int answer_fd, int report_fd,
		   bool hup_ignored, const sigset_t *orig)
{
	ssize_t r;
	char c;

	catch_signals(hup_ignored);
	/* First the guardian's word that the change is made. */
	if ((r = read_byte(report_fd, &c)) == 1 && c == APPLY_CHANGED) {
		ask_and_relay(j, answer_fd, report_fd, orig);
		r = read_byte(report_fd, &c);
	}
	return outcome(j, report_fd, r == 1 ? (unsigned char)c : -1);
}

/* --- the start ------------------------------------------------------------ */

/* SIGHUP, SIGINT, SIGTERM held from the start, the mask before in orig:
 * until the guardian is there to roll back, one would leave files behind
 * (and ^C during nft -c is no refusal of the kernel's). */
static void hold_signals(sigset_t *orig)
{
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, orig);
}

/* Whether one of them came meanwhile (SIGHUP only if not ignored: then it
 * is dropped when unblocked). */
static bool signal_held(bool hup_ignored)
{
	sigset_t p;

	return sigpending(&p) == 0 && (sigismember(&p, SIGINT) ||
		sigismember(&p, SIGTERM) || (!hup_ignored && sigismember(&p, SIGHUP)));
}

/* The lock, the preparation and the guardian. False when any fails, said,
 * with nothing changed and no file left. */
static bool start(struct apply_job *j, const char *config, bool hup_ignored,
		  int *answer_fd, int *report_fd)
{
	unsigned long long netns;

	if (!netns_id(&netns) || !take_lock(j, netns))
		return false;
	if (left_behind(j->dir, netns) || !prepare(j, config, netns))
		goto unlock;
	if (signal_held(hup_ignored)) {
		fail("interrupted before the change; nothing changed");
		goto unprepare;
	}
	if (!apply_guardian_start(j, answer_fd, report_fd)) {
		fail("cannot start the guardian: %s; nothing changed", strerror(errno));
		goto unprepare;
	}
	close(j->lock);	/* the guardian holds it now */
	return true;
unprepare:
	unlink(j->fresh);
	unlink(j->saved);
unlock:
	apply_lock_release(j);
	return false;
}

int gate_apply_nft_main(const struct cli_options *opt, int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "confirm-within", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct apply_job j;
	char config[PATH_MAX];
	struct sigaction old;
	sigset_t orig;
	int c, answer_fd, report_fd, status;
	bool hup_ignored;

	j.within = DEFAULT_WITHIN;
	j.lock = -1;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		if (c == 'w' && parse_within(optarg, &j.within))
			continue;
		if (c == 'w')
			fail("--confirm-within must be a number of seconds from "
			     "%d to %d, not '%s'", MIN_WITHIN, MAX_WITHIN, optarg);
		return usage();
	}
	if (optind != argc)
		return usage();
	if (!gate_config_path(opt, config, sizeof(config)) ||
	    !status_path(config, j.status, sizeof(j.status)) ||
	    !state_dir(j.dir, sizeof(j.dir)))
		return EXIT_FAIL;
	/* Run under nohup, it is meant to outlive the terminal: then a
	 * hang-up is no reason to roll back, and a tunnel may confirm. */
	sigaction(SIGHUP, NULL, &old);
	hup_ignored = old.sa_handler == SIG_IGN;
	signal(SIGPIPE, SIG_IGN);
	/* Ignored as inherited, children would leave no status to wait for:
	 * every nft run would seem to fail. */
	signal(SIGCHLD, SIG_DFL);
	hold_signals(&orig);
	if (!start(&j, config, hup_ignored, &answer_fd, &report_fd)) {
		text_buf_free(&j.listing);
		return EXIT_FAIL;
	}
	status = confirm(&j, answer_fd, report_fd, hup_ignored, &orig);
	close(answer_fd);
	close(report_fd);
	text_buf_free(&j.listing);
	return status;
}
