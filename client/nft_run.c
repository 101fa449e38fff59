/* Running nft and other tools, bounded (nft_run.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "nft_run.h"

#define ERROR_MARK ": Error: "	/* nft's, before its words */
#define GUESS_MARK "; did you mean"
#define REAP_NAP_MS 10		/* between looks for the tool's end */

static int64_t mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* In the child: a bare name in /usr/sbin, then /sbin, and only then on
 * PATH, whose directories root may not be alone to write. What went wrong
 * goes to stderr, the parent's err. */
static void exec_tool(char *const argv[])
{
	static const char *const dirs[] = { "/usr/sbin", "/sbin" };
	char alt[PATH_MAX];

	for (size_t i = 0; !strchr(argv[0], '/') && i < 2; i++) {
		snprintf(alt, sizeof(alt), "%s/%s", dirs[i], argv[0]);
		execv(alt, argv);
	}
	execvp(argv[0], argv);
	dprintf(STDERR_FILENO, "cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/* argv started with stdin from /dev/null, its stdout and stderr on pipes
 * whose ends are put in fd: its pid, or -1. */
static pid_t spawn(char *const argv[], int fd[2])
{
	int po[2], pe[2];
	pid_t pid;

	if (pipe2(po, O_CLOEXEC) < 0)
		return -1;
	if (pipe2(pe, O_CLOEXEC) < 0) {
		close(po[0]), close(po[1]);
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
	fd[0] = po[0];
	fd[1] = pe[0];
	return pid;
}

/*
 * Both pipes read to their ends into to[0] and to[1] (NULL: discarded),
 * and closed. False when the tool outran deadline or printed more than a
 * text_buf holds.
 */
static bool collect(const int fd[2], struct text_buf *const to[2],
		    int64_t deadline)
{
	struct pollfd fds[2] = { { fd[0], POLLIN, 0 }, { fd[1], POLLIN, 0 } };
	int n_open = 2;
	bool overrun = false;

	while (n_open > 0 && !overrun) {
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
			if (r > 0 && (!to[i] || text_buf_add(to[i], chunk, (size_t)r)))
				continue;
			if (r < 0 && errno == EINTR)
				continue;
			overrun |= r > 0;
			close(fds[i].fd);
			fds[i].fd = -1;
			n_open--;
		}
	}
	for (int i = 0; i < 2; i++)
		if (fds[i].fd >= 0)
			close(fds[i].fd);
	return !overrun;
}

/*
 * The tool's end, in *status, by deadline: having closed its output it may
 * still run (hung, or waiting on something), and that wait is bounded as
 * the reading was. Past deadline it is killed: false.
 */
static bool reap(pid_t pid, int64_t deadline, int *status)
{
	static const struct timespec nap = { 0, REAP_NAP_MS * 1000000L };
	pid_t w;

	while ((w = waitpid(pid, status, WNOHANG)) == 0 ||
	       (w < 0 && errno == EINTR)) {
		if (mono_ms() >= deadline) {
			kill(pid, SIGKILL);
			while (waitpid(pid, status, 0) < 0 && errno == EINTR)
				;
			return false;
		}
		nanosleep(&nap, NULL);
	}
	return w == pid;
}

int tool_run(char *const argv[], struct text_buf *out, struct text_buf *err)
{
	int64_t deadline = mono_ms() + TOOL_SECONDS * 1000;
	struct text_buf *const to[2] = { out, err };
	int fd[2], status;
	bool bounded;
	pid_t pid;

	if ((pid = spawn(argv, fd)) < 0)
		return -1;
	/* Past its bounds while printing: killed at once. */
	bounded = collect(fd, to, deadline);
	if (!reap(pid, bounded ? deadline : 0, &status) || !bounded) {
		if (err && mono_ms() >= deadline)
			text_buf_printf(err, "%s: no end within %d s: killed\n",
					argv[0], TOOL_SECONDS);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool nft_check(const char *file, struct text_buf *err)
{
	char *argv[] = { "nft", "-c", "-f", (char *)file, NULL };

	return tool_run(argv, NULL, err) == 0;
}

bool nft_load(const char *file, struct text_buf *err)
{
	char *argv[] = { "nft", "-f", (char *)file, NULL };

	return tool_run(argv, NULL, err) == 0;
}

bool nft_list_ruleset(struct text_buf *out, struct text_buf *err)
{
	char *argv[] = { "nft", "list", "ruleset", NULL };

	out->len = 0;
	return tool_run(argv, out, err) == 0;
}

/* nft's first error: its words, and the two lines after them, the source
 * line and the carets under the part it blames (NULL if missing). */
struct located {
	const char *words, *src, *carets;
	size_t words_len, src_len, carets_len;
};

/* The length of nft's words from words to end, less its guess. */
static size_t words_len(const char *words, const char *end)
{
	const char *guess = strstr(words, GUESS_MARK);

	return (size_t)((guess && guess < end ? guess : end) - words);
}

static void locate(const char *text, struct located *e)
{
	memset(e, 0, sizeof(*e));
	for (const char *line = text; *line; ) {
		const char *end = strchrnul(line, '\n'), *m;

		if (!e->words && (m = strstr(line, ERROR_MARK)) && m < end) {
			e->words = m + strlen(ERROR_MARK);
			e->words_len = words_len(e->words, end);
		} else if (e->words && !e->src) {
			e->src = line;
			e->src_len = (size_t)(end - line);
		} else if (e->words && !e->carets) {
			e->carets = line;
			e->carets_len = (size_t)(end - line);
			break;
		}
		line = *end ? end + 1 : end;
	}
}

/* "'PART' in "RULE" fails: WORDS", if the carets fit under the source
 * line. */
static bool format_blamed(const struct located *e, char *out, size_t len)
{
	const char *first, *rule = e->src, *src_end = e->src + e->src_len;
	size_t a, b = e->carets_len;

	if (!e->src || !e->carets ||
	    !(first = memchr(e->carets, '^', e->carets_len)))
		return false;
	a = (size_t)(first - e->carets);
	while (b > a && e->carets[b - 1] != '^')
		b--;
	if (b > e->src_len)
		return false;
	while (rule < src_end && (*rule == ' ' || *rule == '\t'))
		rule++;
	snprintf(out, len, "'%.*s' in \"%.*s\" fails: %.*s", (int)(b - a),
		 e->src + a, (int)(src_end - rule), rule, (int)e->words_len,
		 e->words);
	return true;
}

void nft_error_line(const struct text_buf *err, char *out, size_t len)
{
	struct located e;
	const char *last;
	size_t n = err->len;

	locate(err->p ? err->p : "", &e);
	if (e.words) {
		if (!format_blamed(&e, out, len))
			snprintf(out, len, "%.*s", (int)e.words_len, e.words);
		return;
	}
	/* No located error: nft's last line, or nothing. */
	while (n > 0 && err->p[n - 1] == '\n')
		n--;
	if (n == 0) {
		snprintf(out, len, "nft failed and said nothing");
		return;
	}
	for (last = err->p + n; last > err->p && last[-1] != '\n'; last--)
		;
	snprintf(out, len, "%.*s", (int)(err->p + n - last), last);
}

void nft_error_words(const struct text_buf *err, char *out, size_t len)
{
	const char *text = err->p ? err->p : "";
	struct located e;

	locate(text, &e);
	if (!e.words) {
		e.words = text;
		e.words_len = words_len(text, strchrnul(text, '\n'));
	}
	snprintf(out, len, "%.*s", (int)e.words_len, e.words);
}

bool nft_file_write(const char *dir, const char *what, const char *head,
		    const struct text_buf *body, char path[PATH_MAX],
		    char *why, size_t why_len)
{
	FILE *f;
	int fd;

	snprintf(path, PATH_MAX, "%s/postern-nft-%s.XXXXXX", dir, what);
	if ((fd = mkostemp(path, O_CLOEXEC)) < 0) {
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
		return false;
	}
	if (!(f = fdopen(fd, "w"))) {
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
		close(fd);
		unlink(path);
		return false;
	}
	fputs(head, f);
	if (body && body->len)
		fwrite(body->p, 1, body->len, f);
	if (ferror(f) | (fclose(f) != 0)) {
		snprintf(why, why_len, "%s: cannot write it", path);
		unlink(path);
		return false;
	}
	return true;
}

bool nft_ruleset_write(const char *dir, const char *what,
		       const struct text_buf *body, char path[PATH_MAX],
		       char *why, size_t why_len)
{
	return nft_file_write(dir, what, "flush ruleset\n", body, path, why,
			      why_len);
}
