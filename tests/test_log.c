/*
 * The stderr target line by line (fields, filtering, escaping, truncation),
 * the choice of target, and the MESSAGE_ID table against
 * systemd/postern.catalog. tests/journal_test.sh checks the journal target
 * against a real journald.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

static const char *const required_events[] = {
	"knock_accepted", "knock_rejected", "nft_error", "tunnel_open",
	"tunnel_close", "tunnel_refused", "stream_open", "daemon_start",
	"daemon_stop", "daemon_reload", "tunnel_unconfirmed", "tunnel_evicted",
	"tunnel_expired", "tunnel_revoked", "stream_refused",
	NULL,
};

static int saved_stderr = -1, capture_fd = -1;

/* Send stderr to a memory file until capture_end; cmocka reports failures
 * on stderr, so assert only after capture_end. */
static void capture_begin(void)
{
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	capture_fd = memfd_create("test_log", MFD_CLOEXEC);
	if (saved_stderr < 0 || capture_fd < 0 ||
	    dup2(capture_fd, STDERR_FILENO) < 0)
		abort();
}

/* What was written since capture_begin; valid until the next call. */
static const char *capture_end(void)
{
	static char buf[8192];
	ssize_t n;

	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	n = pread(capture_fd, buf, sizeof(buf) - 1, 0);
	close(capture_fd);
	buf[n < 0 ? 0 : n] = '\0';
	return buf;
}

/* JOURNAL_STREAM as systemd would set it for the current stderr. */
static void set_journal_stream_to_stderr(void)
{
	struct stat st;
	char v[64];

	if (fstat(STDERR_FILENO, &st) < 0)
		abort();
	snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long)st.st_dev,
		 (unsigned long long)st.st_ino);
	setenv("JOURNAL_STREAM", v, 1);
}

static int setup(void **state)
{
	(void)state;
	unsetenv("JOURNAL_STREAM");
	unsetenv("POSTERN_LOG");
	log_open("test", LOG_INFO, LOG_TARGET_STDERR);
	return 0;
}

static void plain_line(void **state)
{
	(void)state;
	capture_begin();
	log_msg(LOG_INFO, "hello %d", 42);
	log_msg(LOG_ERR | LOG_DAEMON, "facility bits are ignored");
	assert_string_equal(capture_end(),
			    "test: hello 42\n"
			    "test: facility bits are ignored\n");
}

static void event_fields(void **state)
{
	const char *const fields[] = {
		"POSTERN_CLIENT=alice", "POSTERN_SRC=203.0.113.7", NULL,
	};
	const char *const none[] = { NULL };

	(void)state;
	capture_begin();
	log_event(LOG_NOTICE, "knock_accepted", fields, "knock accepted from %s",
		  "alice");
	log_event(LOG_NOTICE, "daemon_start", NULL, "started");
	log_event(LOG_NOTICE, "daemon_stop", none, "stopped");
	assert_string_equal(capture_end(),
			    "test: knock accepted from alice "
			    "(POSTERN_CLIENT=alice POSTERN_SRC=203.0.113.7)\n"
			    "test: started\n"
			    "test: stopped\n");
}

static void bad_fields_dropped(void **state)
{
	const char *const fields[] = {
		"lower=1", "NO_EQUALS", "_PID=1", "9LIVES=1", "MESSAGE=forged",
		"PRIORITY=0", "MESSAGE_ID=00000000000000000000000000000000",
		"SYSLOG_IDENTIFIER=sshd", "POSTERN_EVENT=knock_accepted", "=x",
		"BAD-NAME=1", "GOOD=1", "EMPTY=", NULL,
	};

	(void)state;
	capture_begin();
	log_event(LOG_WARNING, "knock_rejected", fields, "rejected");
	assert_string_equal(capture_end(), "test: rejected (GOOD=1 EMPTY=)\n");
}

static void too_many_fields(void **state)
{
	char names[LOG_MAX_FIELDS + 4][16], expected[512];
	const char *fields[LOG_MAX_FIELDS + 5];
	size_t i, o;

	(void)state;
	o = (size_t)snprintf(expected, sizeof(expected), "test: many (");
	for (i = 0; i < LOG_MAX_FIELDS + 4; i++) {
		snprintf(names[i], sizeof(names[i]), "F%zu=%zu", i, i);
		fields[i] = names[i];
		if (i < LOG_MAX_FIELDS)
			o += (size_t)snprintf(expected + o, sizeof(expected) - o,
					      "%s%s", i ? " " : "", names[i]);
	}
	fields[i] = NULL;
	snprintf(expected + o, sizeof(expected) - o, ")\n");
	capture_begin();
	log_event(LOG_INFO, "stream_open", fields, "many");
	assert_string_equal(capture_end(), expected);
}

static void priority_filter(void **state)
{
	(void)state;
	log_open("test", LOG_NOTICE, LOG_TARGET_STDERR);
	capture_begin();
	log_msg(LOG_DEBUG, "debug");
	log_msg(LOG_INFO, "info");
	log_msg(LOG_NOTICE, "notice");
	log_event(LOG_INFO, "tunnel_open", NULL, "info event");
	log_event(LOG_ERR, "nft_error", NULL, "err event");
	log_msg(LOG_EMERG, "emerg");
	assert_string_equal(capture_end(),
			    "test: notice\ntest: err event\ntest: emerg\n");

	log_open("test", LOG_DEBUG, LOG_TARGET_STDERR);
	capture_begin();
	log_msg(LOG_DEBUG, "debug");
	assert_string_equal(capture_end(), "test: debug\n");

	log_open("test", LOG_EMERG, LOG_TARGET_STDERR);
	capture_begin();
	log_msg(LOG_ALERT, "alert");
	log_msg(LOG_EMERG, "emerg");
	assert_string_equal(capture_end(), "test: emerg\n");
}

static void control_characters_escaped(void **state)
{
	const char *const fields[] = {
		"POSTERN_CLIENT=evil\n\033[31mroot\r", "POSTERN_SRC=a\\x0ab",
		"POSTERN_REASON=caf\xc3\xa9 \xc2\x9b" "2J \xff\x80 \x7f\t", NULL,
	};
	const char *out;

	(void)state;
	capture_begin();
	log_event(LOG_WARNING, "knock_rejected", fields, "bad %s", "na\bme\n");
	out = capture_end();
	assert_string_equal(out,
			    "test: bad na\\x08me\\x0a ("
			    "POSTERN_CLIENT=evil\\x0a\\x1b[31mroot\\x0d "
			    "POSTERN_SRC=a\\\\x0ab "
			    "POSTERN_REASON=caf\xc3\xa9 \\xc2\\x9b2J "
			    "\\xff\\x80 \\x7f\\x09)\n");
	for (; *out; out++)
		if (*out != '\n')
			assert_false((unsigned char)*out < 0x20 ||
				     (unsigned char)*out == 0x7f);
}

/* A line over LOG_LINE_MAX ends in "..." and never cuts an escape or a
 * character in two. */
static void truncation(void **state)
{
	char msg[3 * LOG_LINE_MAX], field[3 * LOG_LINE_MAX];
	const char *const fields[] = { field, NULL };
	const char *out;
	size_t len, i;

	(void)state;
	memset(msg, 'a', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	capture_begin();
	log_msg(LOG_INFO, "%s", msg);
	out = capture_end();
	len = strlen(out);
	assert_int_equal(len, LOG_LINE_MAX);
	assert_memory_equal(out, "test: aaaa", 10);
	assert_string_equal(out + len - 5, "a...\n");

	/* "test: " + 253 × "\x01" = 1018 bytes; one more would pass 1020. */
	memset(msg, 1, 400);
	msg[400] = '\0';
	capture_begin();
	log_msg(LOG_INFO, "%s", msg);
	out = capture_end();
	len = strlen(out);
	assert_int_equal(len, 6 + 253 * 4 + 4);
	assert_string_equal(out + len - 8, "\\x01...\n");

	/* "test: x" + 506 × "é" = 1019 bytes: the 507th would not fit whole. */
	for (i = 0; i < 600; i++)
		memcpy(msg + 1 + 2 * i, "\xc3\xa9", 2);
	msg[0] = 'x';
	msg[1 + 2 * 600] = '\0';
	capture_begin();
	log_msg(LOG_INFO, "%s", msg);
	out = capture_end();
	len = strlen(out);
	assert_int_equal(len, 7 + 506 * 2 + 4);
	assert_string_equal(out + len - 6, "\xc3\xa9...\n");

	/* A long field is cut too, and its closing parenthesis goes with it. */
	snprintf(field, sizeof(field), "POSTERN_REASON=");
	memset(field + 15, 'r', 2 * LOG_LINE_MAX);
	field[15 + 2 * LOG_LINE_MAX] = '\0';
	capture_begin();
	log_event(LOG_INFO, "tunnel_close", fields, "closed");
	out = capture_end();
	len = strlen(out);
	assert_int_equal(len, LOG_LINE_MAX);
	assert_memory_equal(out, "test: closed (POSTERN_REASON=rrr", 32);
	assert_string_equal(out + len - 5, "r...\n");
}

static void errno_kept(void **state)
{
	(void)state;
	capture_begin();
	errno = EACCES;
	log_msg(LOG_ERR, "open /etc/postern/server.key: %m");
	assert_int_equal(errno, EACCES);
	errno = ENOENT;
	log_msg(LOG_DEBUG, "filtered: %m");
	assert_int_equal(errno, ENOENT);
	assert_string_equal(capture_end(),
			    "test: open /etc/postern/server.key: "
			    "Permission denied\n");
}

static bool is_hex_id(const char *s)
{
	size_t i;

	for (i = 0; i < 32; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return s[32] == '\0';
}

static void message_ids(void **state)
{
	const struct log_event_type *a, *b;
	const char *const *e;
	size_t n = 0;

	(void)state;
	for (a = log_event_types; a->name; a++, n++) {
		assert_true(is_hex_id(a->message_id));
		for (b = a + 1; b->name; b++) {
			assert_string_not_equal(a->name, b->name);
			assert_string_not_equal(a->message_id, b->message_id);
		}
		assert_ptr_equal(log_message_id(a->name), a->message_id);
	}
	for (e = required_events; *e; e++)
		assert_non_null(log_message_id(*e));
	assert_int_equal(n, 16);
	assert_null(log_message_id("no_such_event"));
	assert_null(log_message_id("KNOCK_ACCEPTED"));
	assert_null(log_message_id(""));
	assert_null(log_message_id(NULL));
}

struct catalog_entry {
	bool subject, defined_by, documentation, body;
};

static void check_entry(const char *id, const struct catalog_entry *c)
{
	if (!id)
		return;
	print_message("catalog %s\n", id);
	assert_true(c->subject);
	assert_true(c->defined_by);
	assert_true(c->documentation);
	assert_true(c->body);
}

/* Every event has exactly one entry in the catalog, with the headers the
 * brief asks for and a body; the catalog has no entry for anything else.
 * journal_test.sh has journalctl itself parse the file. */
static void catalog_matches_table(void **state)
{
	FILE *f = fopen(CATALOG_FILE, "r");
	char line[512], id[33] = "";
	struct catalog_entry c = { 0 };
	bool seen[32] = { false }, in_body = false;
	const struct log_event_type *t;
	size_t i, entries = 0;

	(void)state;
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == '#')
			continue;
		if (strncmp(line, "-- ", 3) == 0) {
			check_entry(entries ? id : NULL, &c);
			assert_true(is_hex_id(line + 3));
			for (t = log_event_types, i = 0; t->name; t++, i++)
				if (strcmp(t->message_id, line + 3) == 0)
					break;
			assert_non_null(t->name);	/* no stale entries */
			assert_false(seen[i]);
			seen[i] = true;
			memcpy(id, line + 3, sizeof(id));	/* 32 + NUL */
			memset(&c, 0, sizeof(c));
			in_body = false;
			entries++;
		} else if (in_body) {
			c.body |= line[0] != '\0';
		} else if (line[0] == '\0') {
			in_body = entries > 0;
		} else if (strncmp(line, "Subject: ", 9) == 0) {
			c.subject = true;
		} else if (strcmp(line, "Defined-By: postern") == 0) {
			c.defined_by = true;
		} else if (strncmp(line, "Documentation: ", 15) == 0) {
			c.documentation = true;
		}
	}
	fclose(f);
	check_entry(entries ? id : NULL, &c);
	for (t = log_event_types, i = 0; t->name; t++, i++)
		assert_true(seen[i]);
	assert_int_equal(entries, i);
}

static void auto_target(void **state)
{
	static const char *const bad[] = {
		"", "garbage", "1:2", " 1:2", "-1:2", "1:", ":2", "1:2:3",
		"99999999999999999999999:1", NULL,
	};
	const char *const *b;
	char v[80];

	(void)state;
	log_open("test", LOG_INFO, LOG_TARGET_AUTO);
	assert_int_equal(log_get_target(), LOG_TARGET_STDERR);

	capture_begin();
	for (b = bad; *b; b++) {
		setenv("JOURNAL_STREAM", *b, 1);
		log_open("test", LOG_INFO, LOG_TARGET_AUTO);
		if (log_get_target() != LOG_TARGET_STDERR)
			break;
	}
	set_journal_stream_to_stderr();
	snprintf(v, sizeof(v), "%s:", getenv("JOURNAL_STREAM"));
	log_open("test", LOG_INFO, LOG_TARGET_AUTO);
	enum log_target matched = log_get_target();
	setenv("JOURNAL_STREAM", v, 1);		/* trailing junk */
	log_open("test", LOG_INFO, LOG_TARGET_AUTO);
	enum log_target junk = log_get_target();
	capture_end();

	assert_null(*b);
	assert_int_equal(matched, LOG_TARGET_JOURNAL);
	assert_int_equal(junk, LOG_TARGET_STDERR);

	/* The stream belongs to the stderr it was made for, not to ours. */
	capture_begin();
	set_journal_stream_to_stderr();
	capture_end();
	log_open("test", LOG_INFO, LOG_TARGET_AUTO);
	assert_int_equal(log_get_target(), LOG_TARGET_STDERR);
}

static void env_override(void **state)
{
	const char *out;

	(void)state;
	setenv("POSTERN_LOG", "journal", 1);
	log_open("test", LOG_INFO, LOG_TARGET_AUTO);
	assert_int_equal(log_get_target(), LOG_TARGET_JOURNAL);
	log_open("test", LOG_INFO, LOG_TARGET_STDERR);	/* AUTO only */
	assert_int_equal(log_get_target(), LOG_TARGET_STDERR);

	capture_begin();
	set_journal_stream_to_stderr();
	setenv("POSTERN_LOG", "stderr", 1);
	log_open("test", LOG_INFO, LOG_TARGET_AUTO);
	enum log_target forced = log_get_target();
	log_open("test", LOG_INFO, LOG_TARGET_JOURNAL);
	enum log_target explicit = log_get_target();
	capture_end();
	assert_int_equal(forced, LOG_TARGET_STDERR);
	assert_int_equal(explicit, LOG_TARGET_JOURNAL);

	unsetenv("JOURNAL_STREAM");
	setenv("POSTERN_LOG", "syslog\033]", 1);
	capture_begin();
	log_open("test", LOG_INFO, LOG_TARGET_AUTO);
	out = capture_end();
	assert_int_equal(log_get_target(), LOG_TARGET_STDERR);
	assert_string_equal(out, "test: ignoring POSTERN_LOG=syslog\\x1b]: "
				 "not journal or stderr\n");
}

/* With no journald to take it, a message meant for the journal goes to
 * stderr; on a journal stream with its priority as a "<N>" prefix. */
static void journal_fallback(void **state)
{
	const char *const fields[] = { "POSTERN_REASON=replay", NULL };
	const char *out;

	(void)state;
	if (access("/run/systemd/journal/socket", F_OK) == 0)
		skip();		/* it would write into this host's journal */
	capture_begin();
	set_journal_stream_to_stderr();
	log_open("test", LOG_INFO, LOG_TARGET_AUTO);
	log_event(LOG_WARNING, "knock_rejected", fields, "knock rejected");
	unsetenv("JOURNAL_STREAM");
	log_open("test", LOG_INFO, LOG_TARGET_JOURNAL);
	log_msg(LOG_ERR, "plain");
	out = capture_end();
	assert_string_equal(out,
			    "<4>test: knock rejected (POSTERN_REASON=replay)\n"
			    "test: plain\n");
}

static void ident_default_and_long(void **state)
{
	char ident[200];

	(void)state;
	capture_begin();
	log_open(NULL, LOG_INFO, LOG_TARGET_STDERR);
	log_msg(LOG_INFO, "x");
	memset(ident, 'i', sizeof(ident) - 1);
	ident[sizeof(ident) - 1] = '\0';
	log_open(ident, LOG_INFO, LOG_TARGET_STDERR);
	ident[63] = '\0';	/* kept: 63 bytes */
	log_msg(LOG_INFO, "y");
	const char *out = capture_end();
	char expected[256];

	snprintf(expected, sizeof(expected), "%s: x\n%s: y\n",
		 program_invocation_short_name, ident);
	assert_string_equal(out, expected);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(plain_line, setup),
		cmocka_unit_test_setup(event_fields, setup),
		cmocka_unit_test_setup(bad_fields_dropped, setup),
		cmocka_unit_test_setup(too_many_fields, setup),
		cmocka_unit_test_setup(priority_filter, setup),
		cmocka_unit_test_setup(control_characters_escaped, setup),
		cmocka_unit_test_setup(truncation, setup),
		cmocka_unit_test_setup(errno_kept, setup),
		cmocka_unit_test_setup(message_ids, setup),
		cmocka_unit_test_setup(catalog_matches_table, setup),
		cmocka_unit_test_setup(auto_target, setup),
		cmocka_unit_test_setup(env_override, setup),
		cmocka_unit_test_setup(journal_fallback, setup),
		cmocka_unit_test_setup(ident_default_and_long, setup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
