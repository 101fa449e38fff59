/* Logging to the journal or to stderr; see log.h and docs/LOGGING.md. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

/* Without this, sd_journal_sendv adds CODE_FILE/LINE/FUNC of this file. */
#define SD_JOURNAL_SUPPRESS_LOCATION
#include <systemd/sd-journal.h>

#define MSG_MAX 2048		/* formatted message text, NUL included */
#define IDENT_MAX 64
#define EVENT_MAX 64
#define FIELD_NAME_MAX 64	/* journald ignores longer field names */
#define LINE_TEXT_MAX (LOG_LINE_MAX - 4)	/* room left for "...\n" */
#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* Generated once with systemd-id128 new; each has an entry in
 * systemd/postern.catalog. Never reuse or change an id. */
const struct log_event_type log_event_types[] = {
	{ "knock_accepted",	"ecfe32b1de1e4e8aa3ef8abe79abd27c" },
	{ "knock_rejected",	"86c324feb8d14caaaea3a08396f81ba1" },
	{ "nft_error",		"bf06ac2bc18d459dae224c9ef42918ae" },
	{ "tunnel_open",	"e83b585e6d73481fb7b71fff961ff8b5" },
	{ "tunnel_close",	"f843fc3d3fd447b2ac892ee6b2ba64ae" },
	{ "tunnel_refused",	"9e6d35c8e9e1421f94f67ac71e479cf9" },
	{ "stream_open",	"6bf09fe4d9ef4367a9dd0c5a1c911f16" },
	{ "tunnel_unconfirmed",	"91292d3739114d019ba0ac3ae42942b3" },
	{ "tunnel_evicted",	"d7ac9d9ed68f4db5a0c0e966c62faa0e" },
	{ "tunnel_expired",	"5ad15158194b44da9e7c4bc7946d9d30" },
	{ "tunnel_revoked",	"ffed87adbcf64ac5bbd5bc7c1db37704" },
	{ "stream_refused",	"27dc4ba21b0444128900b6c6c2a0d59c" },
	{ "daemon_start",	"3aaa48ae9aa44a508936343a0e529ce2" },
	{ "daemon_stop",	"b9f289a07ed0411e9ea98a9495863c95" },
	{ "daemon_reload",	"a88e3086eb7c448d80186f92215fd575" },
	{ "state_error",	"7acc15e9c8704f84b6b2d26b1aa091bc" },
	{ NULL, NULL },
};

/* Fields this module sets; a caller's copy would make a second value. */
static const char *const reserved_fields[] = {
	"MESSAGE", "MESSAGE_ID", "PRIORITY", "SYSLOG_IDENTIFIER",
	"POSTERN_EVENT", NULL,
};

static struct {
	char ident[IDENT_MAX];
	int max_priority;
	enum log_target target;
	bool stderr_is_journal;	/* stderr is a journal stream */
} cfg = { "postern", LOG_INFO, LOG_TARGET_STDERR, false };

const char *log_message_id(const char *event)
{
	const struct log_event_type *t;

	for (t = log_event_types; event && t->name; t++)
		if (strcmp(t->name, event) == 0)
			return t->message_id;
	return NULL;
}

/* A decimal number followed by stop; strtoull alone would take signs and
 * blanks. */
static bool parse_number(const char **s, char stop, unsigned long long *v)
{
	char *end;

	if (**s < '0' || **s > '9')
		return false;
	errno = 0;
	*v = strtoull(*s, &end, 10);
	if (errno || *end != stop)
		return false;
	*s = end + 1;
	return true;
}

/* systemd sets $JOURNAL_STREAM to "device:inode" of the stream it gave the
 * service; it only means something while it still names our stderr (a child
 * inherits the variable but maybe not the stream). */
static bool stderr_is_journal_stream(void)
{
	const char *s = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;

	if (!s || !parse_number(&s, ':', &dev) || !parse_number(&s, '\0', &ino))
		return false;
	if (fstat(STDERR_FILENO, &st) < 0)
		return false;
	return st.st_dev == dev && st.st_ino == ino;
}

void log_open(const char *ident, int max_priority, enum log_target target)
{
	int saved = errno;
	const char *env = getenv("POSTERN_LOG");
	bool bad_env = false;

	snprintf(cfg.ident, sizeof(cfg.ident), "%s",
		 ident ? ident : program_invocation_short_name);
	if (max_priority < LOG_EMERG)
		max_priority = LOG_EMERG;
	cfg.max_priority = max_priority > LOG_DEBUG ? LOG_DEBUG : max_priority;
	cfg.stderr_is_journal = stderr_is_journal_stream();

	if (target != LOG_TARGET_STDERR && target != LOG_TARGET_JOURNAL) {
		target = cfg.stderr_is_journal ? LOG_TARGET_JOURNAL :
						 LOG_TARGET_STDERR;
		if (env && strcmp(env, "journal") == 0)
			target = LOG_TARGET_JOURNAL;
		else if (env && strcmp(env, "stderr") == 0)
			target = LOG_TARGET_STDERR;
		else if (env && *env)
			bad_env = true;
	}
	cfg.target = target;
	if (bad_env)
		log_msg(LOG_WARNING, "ignoring POSTERN_LOG=%s: not journal or stderr",
			env);
	errno = saved;
}

enum log_target log_get_target(void)
{
	return cfg.target;
}

/* A journal field name: A–Z, 0–9 and '_', not starting with a digit or '_'
 * (journald keeps those for its trusted fields), and not one we set. */
static bool field_ok(const char *f)
{
	const char *eq = strchr(f, '='), *p;
	const char *const *r;
	size_t n;

	if (!eq || eq == f || eq - f > FIELD_NAME_MAX || *f == '_' ||
	    (*f >= '0' && *f <= '9'))
		return false;
	for (p = f; p < eq; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '_'))
			return false;
	n = (size_t)(eq - f);
	for (r = reserved_fields; *r; r++)
		if (strlen(*r) == n && memcmp(*r, f, n) == 0)
			return false;
	return true;
}

/* iov_base is not const, but sd_journal_sendv only reads. */
static struct iovec iov_str(const char *s)
{
	return (struct iovec){ .iov_base = (void *)s, .iov_len = strlen(s) };
}

static int send_journal(int priority, const char *event, const char *msg,
			const char *const *fields, size_t nfields)
{
	char message[sizeof("MESSAGE=") + MSG_MAX];
	char prio[sizeof("PRIORITY=") + 4];
	char ident[sizeof("SYSLOG_IDENTIFIER=") + IDENT_MAX];
	char ev[sizeof("POSTERN_EVENT=") + EVENT_MAX];
	char id[sizeof("MESSAGE_ID=") + 32];
	struct iovec iov[5 + LOG_MAX_FIELDS];
	const char *message_id = log_message_id(event);
	int n = 0;
	size_t i;

	/* sd_journal_sendv reports success when the socket is missing (no
	 * journald): look first, so the message goes to stderr instead. */
	if (access(JOURNAL_SOCKET, F_OK) < 0)
		return -errno;
	snprintf(message, sizeof(message), "MESSAGE=%s", msg);
	snprintf(prio, sizeof(prio), "PRIORITY=%d", priority);
	snprintf(ident, sizeof(ident), "SYSLOG_IDENTIFIER=%s", cfg.ident);
	iov[n++] = iov_str(message);
	iov[n++] = iov_str(prio);
	iov[n++] = iov_str(ident);
	if (event) {
		snprintf(ev, sizeof(ev), "POSTERN_EVENT=%s", event);
		iov[n++] = iov_str(ev);
	}
	if (message_id) {
		snprintf(id, sizeof(id), "MESSAGE_ID=%s", message_id);
		iov[n++] = iov_str(id);
	}
	for (i = 0; i < nfields; i++)
		iov[n++] = iov_str(fields[i]);
	return sd_journal_sendv(iov, n);
}

/* A stderr line under construction. Once something does not fit, nothing
 * more is added, so a cut line is a prefix of the whole one. */
struct line {
	char buf[LOG_LINE_MAX];
	size_t len;
	bool cut;
};

static void put(struct line *l, const void *s, size_t n)
{
	if (l->cut || n > LINE_TEXT_MAX - l->len) {
		l->cut = true;
		return;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

/* Length of a well-formed UTF-8 sequence at s, or 0. Structure only: enough
 * to keep a character whole and to catch stray bytes. s is NUL-terminated. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	for (i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/*
 * Names and addresses come from config files and the network; written raw
 * they could forge lines or drive the admin's terminal. Escape C0 controls,
 * DEL, C1 controls (U+0080–U+009F), stray non-UTF-8 bytes and the backslash
 * itself as \xHH (\\), and keep an escape or a character whole when cutting.
 */
static void put_escaped(struct line *l, const char *str)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *s = (const unsigned char *)str;

	while (*s && !l->cut) {
		size_t n = utf8_len(s), i;
		char esc[16];

		if (*s == '\\') {
			put(l, "\\\\", 2);
			n = 1;
		} else if (*s >= 0x20 && *s < 0x7f) {
			put(l, s, 1);
			n = 1;
		} else if (n && !(s[0] == 0xc2 && s[1] < 0xa0)) {
			put(l, s, n);
		} else {
			n = n ? n : 1;
			for (i = 0; i < n; i++) {
				esc[4 * i] = '\\';
				esc[4 * i + 1] = 'x';
				esc[4 * i + 2] = hex[s[i] >> 4];
				esc[4 * i + 3] = hex[s[i] & 15];
			}
			put(l, esc, 4 * n);
		}
		s += n;
	}
}

static void put_str(struct line *l, const char *s)
{
	put(l, s, strlen(s));
}

/* One write per line: lines of processes sharing stderr do not interleave
 * (a pipe write of at most PIPE_BUF bytes is atomic). */
static void write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;	/* nowhere left to complain */
		buf += n;
		len -= (size_t)n;
	}
}

static void write_stderr(int priority, const char *msg,
			 const char *const *fields, size_t nfields)
{
	struct line l = { .len = 0 };
	char prefix[8];
	size_t i;

	/* A journal stream reads a "<N>" prefix as the line's priority. */
	if (cfg.stderr_is_journal) {
		snprintf(prefix, sizeof(prefix), "<%d>", priority);
		put_str(&l, prefix);
	}
	put_escaped(&l, cfg.ident);
	put_str(&l, ": ");
	put_escaped(&l, msg);
	for (i = 0; i < nfields; i++) {
		put_str(&l, i ? " " : " (");
		put_escaped(&l, fields[i]);
	}
	if (nfields)
		put_str(&l, ")");
	if (l.cut) {
		memcpy(l.buf + l.len, "...", 3);
		l.len += 3;
	}
	l.buf[l.len++] = '\n';
	write_all(STDERR_FILENO, l.buf, l.len);
}

static void __attribute__((format(printf, 4, 0)))
emit(int priority, const char *event, const char *const *fields,
     const char *fmt, va_list ap)
{
	char msg[MSG_MAX];
	const char *ok[LOG_MAX_FIELDS];
	size_t n = 0;
	int saved = errno;

	priority = LOG_PRI(priority);
	if (priority > cfg.max_priority)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);	/* before errno changes: %m */
	for (; fields && *fields && n < LOG_MAX_FIELDS; fields++)
		if (field_ok(*fields))
			ok[n++] = *fields;
	if (cfg.target != LOG_TARGET_JOURNAL ||
	    send_journal(priority, event, msg, ok, n) < 0)
		write_stderr(priority, msg, ok, n);
	errno = saved;
}

void log_msg(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(priority, NULL, NULL, fmt, ap);
	va_end(ap);
}

void log_event(int priority, const char *event, const char *const *fields,
	       const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(priority, event, fields, fmt, ap);
	va_end(ap);
}
