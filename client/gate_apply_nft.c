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
 * The change, the wait and the rollback belong to a guardian process in a
 * session of its own, so that nothing done to the admin's terminal or ssh
 * session (a hang-up, Ctrl-Z, a broken pipe) can stop the rollback. The
 * command itself only asks on the terminal and relays the answer; if it
 * dies or is interrupted, the guardian rolls back at once
 * (docs/DECISIONS.md).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "gate_cmd.h"

#define CMD "gate apply-nft"
#define DEFAULT_WITHIN 60
#define MIN_WITHIN 5
#define MAX_WITHIN 3600
#define TOOL_SECONDS 60		/* bound on one nft or posternd run */
#define OUTPUT_MAX (64u << 20)	/* bound on what one run may print */
#define POLL_MS 200		/* how often the status file is read */

struct buf {
	char *p;
	size_t len;
};

/* What the guardian is given. */
struct job {
	char saved[PATH_MAX];	/* "flush ruleset" + the listing: nft -f restores */
	char fresh[PATH_MAX];	/* "flush ruleset" + the new ruleset */
	char dir[PATH_MAX];
	char status[PATH_MAX];	/* postern-tunneld's status file */
	struct buf listing;	/* nft list ruleset, as it was */
	struct timespec saved_at;	/* CLOCK_MONOTONIC */
	unsigned int within;
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

	fprintf(stderr, "%s: " CMD ": ", PROG_NAME);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static bool buf_add(struct buf *b, const void *p, size_t n)
{
	char *q;

	if (b->len + n + 1 > OUTPUT_MAX || !(q = realloc(b->p, b->len + n + 1)))
		return false;
	memcpy(q + b->len, p, n);
	b->p = q;
	b->len += n;
	b->p[b->len] = '\0';
	return true;
}

static bool buf_printf(struct buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static bool buf_printf(struct buf *b, const char *fmt, ...)
{
	char line[8192];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return false;
	return buf_add(b, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
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

/* --- running nft and posternd ------------------------------------------ */

/* In the child: argv[0] on PATH, then in /usr/sbin (sudo and su may leave
 * sbin off PATH). */
static void exec_tool(char *const argv[])
{
	char alt[PATH_MAX];

	execvp(argv[0], argv);
	if (errno == ENOENT && !strchr(argv[0], '/')) {
		snprintf(alt, sizeof(alt), "/usr/sbin/%s", argv[0]);
		execv(alt, argv);
	}
	dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/*
 * Run argv with stdin from /dev/null, collecting stdout into out and
 * stderr into err (either may be NULL: discarded). Returns the exit
 * status, or -1 when it could not run, was killed, or outran TOOL_SECONDS.
 */
static int run(char *const argv[], struct buf *out, struct buf *err)
{
	int po[2], pe[2], status, n_open = 2;
	int64_t deadline = mono_ms() + TOOL_SECONDS * 1000;
	struct buf sink = { 0 };
	pid_t pid;

	if (pipe2(po, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		close(po[0]);
		close(po[1]);
		return -1;
	}
	if ((pid = fork()) < 0) {
		close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		signal(SIGPIPE, SIG_DFL);
		if (null < 0 || dup2(null, 0) < 0 || dup2(po[1], 1) < 0 ||
		    dup2(pe[1], 2) < 0)
			_exit(127);
		exec_tool(argv);
	}
	close(po[1]);
	close(pe[1]);
	struct pollfd fds[2] = { { po[0], POLLIN, 0 }, { pe[0], POLLIN, 0 } };
	struct buf *to[2] = { out ? out : &sink, err ? err : &sink };
	bool overrun = false;

	while (n_open > 0) {
		int64_t left = deadline - mono_ms();
		char chunk[16384];

		if (left <= 0 || poll(fds, 2, (int)left) < 0) {
			if (left > 0 && errno == EINTR)
				continue;
			overrun = true;
			break;
		}
		for (int i = 0; i < 2; i++) {
			ssize_t r;

			if (fds[i].fd < 0 || !fds[i].revents)
				continue;
			r = read(fds[i].fd, chunk, sizeof(chunk));
			if (r > 0 && (to[i] == &sink || buf_add(to[i], chunk, (size_t)r))) {
				sink.len = 0;
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
			overrun |= r > 0;
			close(fds[i].fd);
			fds[i].fd = -1;
			n_open--;
		}
		if (overrun)
			break;
	}
	for (int i = 0; i < 2; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	free(sink.p);
	if (overrun)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (overrun || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

/* nft -f FILE, or with check, nft -c -f FILE: the kernel is asked, but
 * nothing is committed. */
static int nft_load(bool check, const char *file, struct buf *err)
{
	char *argv_check[] = { "nft", "-c", "-f", (char *)file, NULL };
	char *argv_load[] = { "nft", "-f", (char *)file, NULL };

	return run(check ? argv_check : argv_load, NULL, err);
}

static bool list_ruleset(struct buf *out, struct buf *err)
{
	char *argv[] = { "nft", "list", "ruleset", NULL };

	out->len = 0;
	return run(argv, out, err) == 0;
}

/*
 * nft's first error in one line: what its carets point at, the line it is
 * in and nft's words, as
 *   'foo' in "udp dport 22 foo" fails: syntax error, unexpected string
 * less nft's guess after "; did you mean": for an error of the kernel's it
 * names whatever exists with a similar name, which only misleads.
 */
static void nft_error(const struct buf *e, char *out, size_t len)
{
	const char *p = e->p ? e->p : "", *line, *msg = NULL;
	const char *src = NULL, *carets = NULL;
	size_t msg_len = 0, src_len = 0, car_len = 0;

	for (line = p; *line; ) {
		const char *end = strchrnul(line, '\n'), *m;

		if (!msg && (m = strstr(line, ": Error: ")) && m < end) {
			const char *guess = strstr(m, "; did you mean");

			msg = m + 9;
			msg_len = (size_t)((guess && guess < end ? guess : end) - msg);
		} else if (msg && !src) {
			src = line;
			src_len = (size_t)(end - line);
		} else if (msg && !carets) {
			carets = line;
			car_len = (size_t)(end - line);
			break;
		}
		line = *end ? end + 1 : end;
	}
	if (!msg) {	/* no located error: nft's last line, or nothing */
		size_t n = e->len;

		while (n > 0 && e->p[n - 1] == '\n')
			n--;
		for (msg = e->p + n; msg > p && msg[-1] != '\n'; msg--)
			;
		msg_len = (size_t)(e->p + n - msg);
		if (n == 0) {
			snprintf(out, len, "nft failed and said nothing");
			return;
		}
	}
	if (src && carets && memchr(carets, '^', car_len)) {
		size_t a = (size_t)((const char *)memchr(carets, '^', car_len) - carets);
		size_t b = car_len;
		const char *rule = src;

		while (b > a && carets[b - 1] != '^')
			b--;
		while (rule < src + src_len && (*rule == ' ' || *rule == '\t'))
			rule++;
		if (b <= src_len) {
			snprintf(out, len, "'%.*s' in \"%.*s\" fails: %.*s",
				 (int)(b - a), src + a, (int)(src + src_len - rule),
				 rule, (int)msg_len, msg);
			return;
		}
	}
	snprintf(out, len, "%.*s", (int)msg_len, msg);
}

/* --- the listing's timers and counters --------------------------------- */

/* An nft duration, "1d2h3m4s5ms", at s: its length, 0 if none. */
static size_t parse_duration(const char *s, uint64_t *ms)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "ms", 1 }, { "d", 86400000 }, { "h", 3600000 },
		{ "m", 60000 }, { "s", 1000 },
	};
	const char *p = s;

	*ms = 0;
	while (*p >= '0' && *p <= '9') {
		uint64_t v = 0;
		size_t i;

		while (*p >= '0' && *p <= '9' && v < UINT64_MAX / 100)
			v = v * 10 + (uint64_t)(*p++ - '0');
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (!strncmp(p, units[i].unit, strlen(units[i].unit)))
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return 0;
		*ms += v * units[i].ms;
		p += strlen(units[i].unit);
	}
	return (size_t)(p - s);
}

static void format_duration(uint64_t ms, char *buf, size_t len)
{
	static const struct { const char *unit; uint64_t ms; } units[] = {
		{ "d", 86400000 }, { "h", 3600000 }, { "m", 60000 },
		{ "s", 1000 }, { "ms", 1 },
	};
	size_t at = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && at < len; i++) {
		if (ms < units[i].ms)
			continue;
		at += (size_t)snprintf(buf + at, len - at, "%llu%s",
			(unsigned long long)(ms / units[i].ms), units[i].unit);
		ms %= units[i].ms;
	}
}

/*
 * The listing rewritten outside quoted strings: each "expires DURATION"
 * less elapsed_ms (at least 1 ms: an element whose time ran out during the
 * trial expires at once instead of being given that time again) when
 * elapsed_ms >= 0; with elapsed_ms < 0, a comparison key: every expiry and
 * counter value blanked, since they run on by themselves.
 */
static bool rewrite(const struct buf *in, int64_t elapsed_ms, struct buf *out)
{
	const char *p = in->p, *end = in->p + in->len;
	bool quoted = false;

	out->len = 0;
	while (p < end) {
		static const char *const keys[] = { "expires ", "packets ", "bytes " };
		size_t k, n = 0;
		uint64_t ms = 0;

		if (*p == '"')
			quoted = !quoted;
		for (k = 0; !quoted && k < 3; k++)
			if ((size_t)(end - p) > strlen(keys[k]) &&
			    !strncmp(p, keys[k], strlen(keys[k])) &&
			    (p == in->p || p[-1] == ' ' || p[-1] == '\t'))
				break;
		if (quoted || k == 3 || (elapsed_ms >= 0 && k != 0)) {
			if (!buf_add(out, p++, 1))
				return false;
			continue;
		}
		if (!buf_add(out, keys[k], strlen(keys[k])))
			return false;
		p += strlen(keys[k]);
		if (k == 0)
			n = parse_duration(p, &ms);
		else
			while (p + n < end && p[n] >= '0' && p[n] <= '9')
				n++;
		if (n && elapsed_ms >= 0) {
			char d[64];

			ms = ms > (uint64_t)elapsed_ms ? ms - (uint64_t)elapsed_ms : 1;
			format_duration(ms, d, sizeof(d));
			if (!buf_add(out, d, strlen(d)))
				return false;
		} else if (n && !buf_add(out, "?", 1)) {
			return false;
		}
		p += n;
	}
	return out->p != NULL || buf_add(out, "", 0);
}

/* --- files --------------------------------------------------------------- */

/* DIR/postern-nft-WHAT.XXXXXX, root-only, holding head and body. */
static bool write_nft(const char *dir, const char *what, const char *head,
		      const struct buf *body, char path[PATH_MAX])
{
	FILE *f;
	int fd;

	snprintf(path, PATH_MAX, "%s/postern-nft-%s.XXXXXX", dir, what);
	if ((fd = mkostemp(path, O_CLOEXEC)) < 0) {
		fail("%s: %s", path, strerror(errno));
		return false;
	}
	if (!(f = fdopen(fd, "w"))) {
		close(fd);
		unlink(path);
		return false;
	}
	fputs(head, f);
	if (body && body->len)
		fwrite(body->p, 1, body->len, f);
	if (ferror(f) | (fclose(f) != 0)) {
		fail("%s: cannot write it", path);
		unlink(path);
		return false;
	}
	return true;
}

/* "flush ruleset" and body: one nft -f transaction that replaces the whole
 * ruleset. */
static bool write_ruleset(const char *dir, const char *what,
			  const struct buf *body, char path[PATH_MAX])
{
	return write_nft(dir, what, "flush ruleset\n", body, path);
}

static bool read_fd_all(int fd, struct buf *b)
{
	char chunk[16384];
	ssize_t r;

	while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 || !buf_add(b, chunk, (size_t)r))
			return false;
	}
	return true;
}

static bool read_file(const char *path, struct buf *b)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok;

	if (fd < 0)
		return false;
	ok = read_fd_all(fd, b);
	close(fd);
	return ok;
}

/* --- confirmation by a tunnel ------------------------------------------ */

/*
 * Whether postern-tunneld's status file ("key value" lines) says a session
 * of a listed admin began after the change: last_session_at_ms (Unix ms)
 * later than after_ms. An admin who connects in the second of the change
 * counts: the seconds of last_session_at could not tell. A file others may write is no evidence: it is ignored,
 * and said once in note.
 */
static bool tunnel_confirmed(const char *path, int64_t after_ms, char *who,
			     size_t who_len, bool *warned, struct buf *note)
{
	char text[4096], *line, *save = NULL, name[64] = "", src[80] = "";
	long long at = -1;
	struct stat st;
	ssize_t n;
	int fd;

	who[0] = '\0';
	if ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)) < 0)
		return false;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 022)) {
		if (!*warned && (st.st_mode & 022))
			buf_printf(note, "%s: " CMD ": %s is writable by others: "
				   "not taken as confirmation\n", PROG_NAME, path);
		*warned = true;
		close(fd);
		return false;
	}
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return false;
	text[n] = '\0';
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, ' ');

		if (!v)
			continue;
		*v++ = '\0';
		if (!strcmp(line, "last_session_at_ms"))
			at = strtoll(v, NULL, 10);
		else if (!strcmp(line, "last_session_client"))
			snprintf(name, sizeof(name), "%s", v);
		else if (!strcmp(line, "last_session_src"))
			snprintf(src, sizeof(src), " (%s)", v);
	}
	snprintf(who, who_len, "%s%s", name[0] ? name : "a listed admin", src);
	/* Written by postern-tunneld's user, shown on root's terminal. */
	for (char *q = who; *q; q++)
		if ((unsigned char)*q < ' ' || *q == 0x7f)
			*q = '?';
	return at > (long long)after_ms;
}

/* --- the guardian ------------------------------------------------------ */

enum outcome { KEPT = 'K', ROLLED_BACK = 'R', FAILED = 'F' };

/* Put the saved ruleset back, in one transaction, and check it is. */
static enum outcome roll_back(const struct job *j, const char *why, struct buf *note)
{
	struct buf text = { 0 }, now = { 0 }, err = { 0 }, a = { 0 }, b = { 0 };
	struct timespec t;
	char path[PATH_MAX], msg[2048];
	enum outcome o = FAILED;

	clock_gettime(CLOCK_MONOTONIC, &t);
	int64_t elapsed = (t.tv_sec - j->saved_at.tv_sec) * 1000 +
		(t.tv_nsec - j->saved_at.tv_nsec) / 1000000;

	if (!rewrite(&j->listing, elapsed, &text) ||
	    !write_ruleset(j->dir, "restore", &text, path)) {
		buf_printf(note, "%s: " CMD ": %s, and the rollback could not be "
			   "prepared: the new ruleset is still loaded; restore the old "
			   "one now with: nft -f %s\n", PROG_NAME, why, j->saved);
		goto out;
	}
	/* Checked before the change, so a refusal now is something passing
	 * (another program's transaction, memory): tried three times. */
	for (int i = 0; i < 3 && nft_load(false, path, &err) != 0; i++) {
		if (i < 2) {
			err.len = 0;
			sleep(1);
			continue;
		}
		nft_error(&err, msg, sizeof(msg));
		buf_printf(note, "%s: " CMD ": %s; ROLLBACK FAILED: nft -f: %s; "
			   "the new ruleset is still loaded: restore the old one now "
			   "with: nft -f %s\n", PROG_NAME, why, msg, j->saved);
		unlink(path);
		goto out;
	}
	unlink(path);
	o = ROLLED_BACK;
	if (!list_ruleset(&now, NULL)) {
		buf_printf(note, "%s: " CMD ": %s: rolled back, but nft list ruleset "
			   "failed: check it; the saved ruleset is %s\n",
			   PROG_NAME, why, j->saved);
	} else if (now.len == j->listing.len &&
		   !memcmp(now.p, j->listing.p, now.len)) {
		buf_printf(note, "%s: " CMD ": %s: rolled back; nft list ruleset is "
			   "the same as before, byte for byte\n", PROG_NAME, why);
		unlink(j->saved);
	} else if (rewrite(&now, -1, &a) && rewrite(&j->listing, -1, &b) &&
		   a.len == b.len && !memcmp(a.p, b.p, a.len)) {
		buf_printf(note, "%s: " CMD ": %s: rolled back; nft list ruleset is "
			   "the same as before but for the timers of set elements and "
			   "counter values, which ran on\n", PROG_NAME, why);
		unlink(j->saved);
	} else {
		buf_printf(note, "%s: " CMD ": %s: ROLLED BACK BUT DIFFERENT: nft list "
			   "ruleset differs from the saved one beyond timers and "
			   "counters (did a timed element expire, or did something "
			   "else change the ruleset meanwhile?); compare it with %s, "
			   "the ruleset as it was (nft -f loads it)\n",
			   PROG_NAME, why, j->saved);
	}
out:
	free(text.p), free(now.p), free(err.p), free(a.p), free(b.p);
	return o;
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

/* The guardian's last word: the outcome and its report to the command,
 * and the report to syslog, since the command may be gone. */
static void guardian_report(int rfd, enum outcome o, const struct buf *note)
{
	char c = (char)o;
	const char *line, *end;

	for (line = note->p; line && *line; line = *end ? end + 1 : end) {
		end = strchrnul(line, '\n');
		syslog(o == KEPT ? LOG_NOTICE : LOG_WARNING, "%.*s",
		       (int)(end - line), line);
	}
	if (!send_all(rfd, &c, 1) && note->len)	/* the command is gone */
		send_all(STDERR_FILENO, note->p, note->len);
	else if (note->len)
		send_all(rfd, note->p, note->len);
}

static void guardian(struct job *j, int cfd, int rfd)
{
	struct buf err = { 0 }, note = { 0 };
	struct sigaction sa = { 0 };
	char msg[2048], who[160];
	sigset_t block, orig;
	enum outcome o;
	bool warned = false;
	const char *why = NULL;
	char c = 'A';
	int64_t changed;	/* Unix ms */
	int64_t deadline;

	/* Of the terminal's signals none is meant for the guardian, which has
	 * none; SIGHUP, SIGINT and SIGTERM sent to it mean: roll back now. */
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTSTP, SIG_IGN);
	signal(SIGTTIN, SIG_IGN);
	signal(SIGTTOU, SIG_IGN);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	openlog(PROG_NAME, LOG_PID, LOG_AUTHPRIV);
	if (nft_load(false, j->fresh, &err) != 0) {
		/* One transaction: refused, it changed nothing. Checked all
		 * the same, and put back if it somehow did. */
		struct buf now = { 0 };

		nft_error(&err, msg, sizeof(msg));
		unlink(j->fresh);
		if (list_ruleset(&now, NULL) && now.len == j->listing.len &&
		    !memcmp(now.p, j->listing.p, now.len)) {
			buf_printf(&note, "%s: " CMD ": nft -f refused the new "
				   "ruleset, nothing changed: %s\n", PROG_NAME, msg);
			unlink(j->saved);
		} else {
			buf_printf(&note, "%s: " CMD ": nft -f refused the new "
				   "ruleset: %s\n", PROG_NAME, msg);
			roll_back(j, "the new ruleset was refused", &note);
		}
		free(now.p);
		guardian_report(rfd, FAILED, &note);
		free(err.p);
		free(note.p);
		return;
	}
	unlink(j->fresh);
	changed = wall_ms();
	deadline = mono_ms() + (int64_t)j->within * 1000;
	syslog(LOG_NOTICE, CMD ": new ruleset applied; rolled back in %u s "
	       "unless confirmed (saved: %s)", j->within, j->saved);
	if (!send_all(rfd, &c, 1))
		why = "the command ended before the change";

	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &orig);
	while (!why) {
		struct pollfd p = { cfd, POLLIN, 0 };
		int64_t left = deadline - mono_ms();
		struct timespec ts;

		if (tunnel_confirmed(j->status, changed, who, sizeof(who), &warned, &note)) {
			buf_printf(&note, "%s: " CMD ": confirmed by a tunnel from %s: "
				   "the new ruleset is kept\n", PROG_NAME, who);
			break;
		}
		if (left <= 0) {
			why = "not confirmed in time";
			break;
		}
		if (left > POLL_MS)
			left = POLL_MS;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (left % 1000) * 1000000;
		if (ppoll(&p, 1, &ts, &orig) < 0 && errno != EINTR) {
			why = "cannot wait";
			break;
		}
		if (interrupted) {
			why = "interrupted";
			break;
		}
		if (p.revents) {
			ssize_t r = read(cfd, &c, 1);

			if (r < 0 && errno == EINTR)
				continue;
			if (r == 1 && c == 'y') {
				buf_printf(&note, "%s: " CMD ": confirmed on the terminal: "
					   "the new ruleset is kept\n", PROG_NAME);
				break;
			}
			why = r != 1 ? "the command ended before a confirmation" :
				c == 'i' ? "interrupted" : "not confirmed on the terminal";
			break;
		}
	}
	if (why) {
		o = roll_back(j, why, &note);
	} else {
		o = KEPT;
		unlink(j->saved);
	}
	guardian_report(rfd, o, &note);
	free(err.p);
	free(note.p);
}

/* Start the guardian: two forks, so that it is no child of the command and
 * leads no session that a terminal could come back to; setsid, so that no
 * hang-up or job control of the admin's terminal reaches it. */
static bool start_guardian(struct job *j, int *cfd, int *rfd)
{
	int c[2], r[2], status;
	pid_t pid;

	if (pipe2(c, O_CLOEXEC) < 0)
		return false;
	if (pipe2(r, O_CLOEXEC) < 0) {
		close(c[0]), close(c[1]);
		return false;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		close(c[0]), close(c[1]), close(r[0]), close(r[1]);
		return false;
	}
	if (pid == 0) {
		int null;

		close(c[1]);
		close(r[0]);
		if (setsid() < 0)
			_exit(1);
		if ((pid = fork()) != 0)
			_exit(pid < 0);
		if ((null = open("/dev/null", O_RDWR)) >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			if (null > 2)
				close(null);
		}
		if (chdir("/") < 0)
			_exit(1);
		guardian(j, c[0], r[1]);
		_exit(0);
	}
	close(c[0]);
	close(r[1]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		close(c[1]), close(r[0]);
		return false;
	}
	*cfd = c[1];
	*rfd = r[0];
	return true;
}

/* --- the command ------------------------------------------------------- */

static int usage(void)
{
	fprintf(stderr, "Usage: %s [-c FILE] gate apply-nft [--confirm-within S]"
		" (S from %d to %d, default %d)\n", PROG_NAME, MIN_WITHIN,
		MAX_WITHIN, DEFAULT_WITHIN);
	return EXIT_USAGE;
}

/* posternd: $POSTERN_POSTERND, else ../sbin/posternd beside this program
 * (both installed from one package), else on PATH or in /usr/sbin. */
static void posternd_path(char *buf, size_t len)
{
	const char *env = getenv("POSTERN_POSTERND");
	char self[PATH_MAX];
	ssize_t n;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		char *slash;

		self[n] = '\0';
		if ((slash = strrchr(self, '/')))
			*slash = '\0';
		if ((size_t)snprintf(buf, len, "%s/../sbin/posternd", self) < len &&
		    access(buf, X_OK) == 0)
			return;
	}
	snprintf(buf, len, "posternd");
}

/* The ruleset to apply: $POSTERN_APPLY_NFT_FILE's (for tests: a variant
 * this kernel can load), else what posternd --print-nft prints. */
static bool new_ruleset(const char *config, struct buf *out)
{
	const char *file = getenv("POSTERN_APPLY_NFT_FILE");
	char posternd[PATH_MAX], msg[2048];
	struct buf err = { 0 };
	bool ok;

	if (file && *file) {
		if (!read_file(file, out)) {
			fail("%s: %s", file, errno ? strerror(errno) : "cannot read it");
			return false;
		}
		return true;
	}
	posternd_path(posternd, sizeof(posternd));
	char *argv[] = { posternd, "--print-nft", "-c", (char *)config, NULL };
	ok = run(argv, out, &err) == 0 && out->len > 0;
	if (!ok) {
		size_t n = err.len;

		while (n > 0 && err.p[n - 1] == '\n')
			n--;
		snprintf(msg, sizeof(msg), "%.*s", (int)n, err.p ? err.p : "");
		fail("%s --print-nft -c %s failed%s%s", posternd, config,
		     n ? ": " : "", msg);
	}
	free(err.p);
	return ok;
}

static bool parse_within(const char *s, unsigned int *v)
{
	char *end;
	unsigned long n;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (errno || *end ||
	    n < MIN_WITHIN || n > MAX_WITHIN)
		return false;
	*v = (unsigned int)n;
	return true;
}

/* Where to keep the saved ruleset: $TMPDIR (tests), else /run. */
static bool state_dir(char *buf, size_t len)
{
	const char *t = getenv("TMPDIR");

	if (!t || !*t)
		t = "/run";
	if (!realpath(t, buf) || strlen(buf) + 40 > len) {
		fail("%s: %s", t, errno ? strerror(errno) : "path too long");
		return false;
	}
	return true;
}

/* One apply-nft at a time: a second would save the first one's trial
 * ruleset as "the previous one". The guardian holds the lock to the end. */
static int take_lock(const char *dir)
{
	char path[PATH_MAX];
	int fd;

	snprintf(path, sizeof(path), "%s/postern-apply-nft.lock", dir);
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
	return fd;
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

/* The first rule of text with a queue statement, trimmed, or NULL. */
static const char *queue_rule(const struct buf *text, int *len)
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
static void refusal(const char *dir, const struct buf *text,
		    const struct buf *err, char *out, size_t len, bool *queue)
{
	static const char probe[] = "table inet postern_probe {\n"
		"\tchain input {\n\t\tudp dport 9 queue num 0 bypass\n\t}\n}\n";
	struct buf perr = { 0 };
	char path[PATH_MAX], msg[1024];
	const char *rule;
	int n;

	*queue = false;
	if ((rule = queue_rule(text, &n)) &&
	    write_nft(dir, "probe", probe, NULL, path)) {
		if (nft_load(true, path, &perr) != 0 && perr.len) {
			const char *at = strstr(perr.p, ": Error: "), *end;

			*queue = true;
			at = at ? at + 9 : perr.p;
			end = strchrnul(at, '\n');
			if (strstr(at, "; did you mean") && strstr(at, "; did you mean") < end)
				end = strstr(at, "; did you mean");
			snprintf(msg, sizeof(msg), "%.*s", (int)(end - at), at);
			snprintf(out, len, "the queue statement of \"%.*s\" fails "
				 "(nft: %s)", n, rule, msg);
		}
		unlink(path);
		free(perr.p);
		if (*queue)
			return;
	}
	nft_error(err, out, len);
}

/* Everything before the change; nothing has changed when it fails. */
static bool prepare(struct job *j, const char *config)
{
	struct buf fresh = { 0 }, err = { 0 };
	char msg[2048];
	bool ok = false, queue;

	if (!new_ruleset(config, &fresh))
		goto out;
	if (!list_ruleset(&j->listing, &err)) {
		nft_error(&err, msg, sizeof(msg));
		fail("nft list ruleset failed: %s", msg);
		goto out;
	}
	clock_gettime(CLOCK_MONOTONIC, &j->saved_at);
	if (!write_ruleset(j->dir, "saved", &j->listing, j->saved))
		goto out;
	if (!write_ruleset(j->dir, "new", &fresh, j->fresh))
		goto drop_saved;
	err.len = 0;
	if (nft_load(true, j->fresh, &err) != 0) {
		refusal(j->dir, &fresh, &err, msg, sizeof(msg), &queue);
		fail("this kernel cannot load the ruleset, nothing changed: %s%s",
		     msg, queue ? "; the kernel lacks nft's queue statement "
		     "(nft_queue): queue the knocks with iptables-nft -j NFQUEUE "
		     "instead, as docs/NFT.md says" : "");
		goto drop_both;
	}
	err.len = 0;
	/* The rollback must not fail for a reason known now: a queue rule
	 * that iptables-nft added on such a kernel, say, which nft lists but
	 * cannot load back. */
	if (nft_load(true, j->saved, &err) != 0) {
		refusal(j->dir, &j->listing, &err, msg, sizeof(msg), &queue);
		fail("nft cannot load the current ruleset back, so a rollback "
		     "would fail; nothing changed: %s%s", msg, queue ?
		     " (iptables-nft's? nft lists it, but this kernel cannot "
		     "load it)" : "");
		goto drop_both;
	}
	ok = true;
	goto out;
drop_both:
	unlink(j->fresh);
drop_saved:
	unlink(j->saved);
out:
	free(fresh.p);
	free(err.p);
	return ok;
}

/*
 * Ask on the terminal while the guardian waits, and relay the answer: 'y'
 * for yes, 'n' for anything else, 'i' for an interruption. The guardian's
 * outcome (and, in parallel, a tunnel's confirmation) ends the wait.
 */
static int confirm(const struct job *j, int cfd, int rfd, bool hup_ignored)
{
	struct buf report = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, orig;
	char answer[64], c;
	size_t got = 0;
	bool asked = false, sent = false, done = false;
	int tty, status = EXIT_FAIL;
	ssize_t r;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (!hup_ignored)
		sigaction(SIGHUP, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGHUP);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &orig);

	/* First the guardian's word that the change is made. */
	while ((r = read(rfd, &c, 1)) < 0 && errno == EINTR)
		;
	if (r != 1 || c != 'A')
		goto outcome;
	tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (tty >= 0) {
		char prompt[160];
		int n;

		/* Typed ahead, before the change was seen: not an answer. */
		tcflush(tty, TCIFLUSH);
		n = snprintf(prompt, sizeof(prompt), "Ruleset applied. Can you "
			     "still connect? Type yes within %u s to keep it: ",
			     j->within);
		asked = write(tty, prompt, (size_t)n) == n;
	} else {
		fprintf(stderr, "Ruleset applied. No terminal: waiting up to %u s "
			"for a tunnel from a listed admin to confirm it (%s)\n",
			j->within, j->status);
	}
	while (!done) {
		struct pollfd p[2] = { { rfd, POLLIN, 0 }, { sent ? -1 : tty, POLLIN, 0 } };

		if (ppoll(p, 2, NULL, &orig) < 0 && errno != EINTR)
			break;
		if (interrupted && !sent) {
			c = 'i';
			sent = write(cfd, &c, 1) == 1;
		}
		if (p[0].revents)
			done = true;
		else if (p[1].revents) {
			r = read(tty, answer + got, sizeof(answer) - 1 - got);
			if (r <= 0) {	/* hung up, or ^D: the tunnel may still */
				close(tty);
				tty = -1;
				continue;
			}
			got += (size_t)r;
			if (!memchr(answer, '\n', got) && got < sizeof(answer) - 1)
				continue;
			answer[got] = '\0';
			answer[strcspn(answer, "\r\n")] = '\0';
			c = !strcmp(answer, "yes") ? 'y' : 'n';
			sent = write(cfd, &c, 1) == 1;
			asked = false;
		}
	}
	/* A terminal gone meanwhile misses the newline; the report goes to
	 * stderr anyway. */
	if (asked && tty >= 0 && write(tty, "\n", 1) != 1)
		asked = false;
	if (tty >= 0)
		close(tty);
	while ((r = read(rfd, &c, 1)) < 0 && errno == EINTR)
		;
outcome:
	if (r == 1 && read_fd_all(rfd, &report)) {
		fputs(report.p ? report.p : "", stderr);
		status = c == KEPT ? EXIT_OK : EXIT_FAIL;
	} else {
		fail("the guardian ended without a word: check the ruleset "
		     "(nft list ruleset); the saved one is %s (nft -f restores it)",
		     j->saved);
	}
	free(report.p);
	return status;
}

int gate_apply_nft_main(const struct cli_options *opt, int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "confirm-within", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct job j;
	char config[PATH_MAX];
	struct sigaction old;
	int c, lock, cfd, rfd, status;
	bool hup_ignored;

	j.within = DEFAULT_WITHIN;
	optind = 1;
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		if (c == 'w' && parse_within(optarg, &j.within))
			continue;
		if (c == 'w')
			fprintf(stderr, "%s: " CMD ": --confirm-within must be a number "
				"of seconds from %d to %d, not '%s'\n", PROG_NAME,
				MIN_WITHIN, MAX_WITHIN, optarg);
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
	if ((lock = take_lock(j.dir)) < 0)
		return EXIT_FAIL;
	if (!prepare(&j, config)) {
		close(lock);
		return EXIT_FAIL;
	}
	if (!start_guardian(&j, &cfd, &rfd)) {
		fail("cannot start the guardian: %s; nothing changed", strerror(errno));
		unlink(j.fresh);
		unlink(j.saved);
		close(lock);
		return EXIT_FAIL;
	}
	close(lock);	/* the guardian holds it now */
	status = confirm(&j, cfd, rfd, hup_ignored);
	close(cfd);
	close(rfd);
	free(j.listing.p);
	return status;
}
