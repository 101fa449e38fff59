/*
 * postern gate status: what the daemons' status files say (their counters,
 * each kind of refusal with when and from where it was last seen, the last
 * session), with what each refusal most likely means. Exit 1 when a daemon
 * has no status or is not running.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "config_file.h"
#include "gate_cmd.h"

/* Refusals of posternd's status file, and what an admin does about each. */
static const struct {
	const char *reason, *meaning;
} refusals[] = {
	{ "bad_mac1", "not a knock for this server: a wrong PSK or server key, or a scan" },
	{ "unknown_key", "a device key not listed: journalctl -u posternd has it; postern gate allow NAME KEY" },
	{ "expired", "a client past its expiry: postern gate ls" },
	{ "clock_skew", "the device's clock is off by more than knock.window" },
	{ "replay", "a knock seen before (a copy, or a resent packet)" },
	{ "rate_limited", "more knocks from one source than knock.rate allows" },
	{ "bad_noise", "passed mac1 but not the handshake: a forged or damaged knock" },
	{ "bad_payload", "a knock of a newer protocol version" },
	{ "target_refused", "a target address while knock.allow_target is off" },
	{ "truncated", "the kernel passed part of the packet" },
	{ "bad_length", "a packet of the wrong size at the knock port" },
	{ "bad_version", "a packet of another version at the knock port" },
	{ "not_udp", "not a UDP packet" },
	{ "bad_source", "a source address no one can knock from" },
};

/* A daemon writes a few KiB; more is not its file. */
#define STATUS_MAX (256u << 10)

char *gate_status_read(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	char *text = NULL;
	size_t got = 0;
	ssize_t n = 0;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		errno = EINVAL;
	else if (st.st_mode & (S_IWGRP | S_IWOTH))
		errno = EPERM;	/* others could have written it: no evidence */
	else
		text = malloc(STATUS_MAX + 1);
	if (!text) {
		close(fd);
		return NULL;
	}
	while (got < STATUS_MAX &&
	       (n = read(fd, text + got, STATUS_MAX - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (n < 0) {
		free(text);
		return NULL;
	}
	text[got] = '\0';
	return text;
}

bool gate_status_get(const char *text, const char *key, char *buf, size_t len)
{
	size_t klen = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : p) {
		if (strncmp(p, key, klen) == 0 && p[klen] == ' ') {
			const char *v = p + klen + 1;
			size_t vlen = strcspn(v, "\n");

			snprintf(buf, len, "%.*s", (int)vlen, v);
			/* Written by a daemon's user, shown on root's terminal. */
			gate_printable(buf);
			return true;
		}
	}
	return false;
}

unsigned long long gate_status_number(const char *text, const char *key)
{
	char buf[32];

	return gate_status_get(text, key, buf, sizeof(buf)) ?
	       strtoull(buf, NULL, 10) : 0;
}

void gate_format_time(char *buf, size_t len, unsigned long long t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t > (unsigned long long)INT32_MAX * 4 || !gmtime_r(&tt, &tm))
		snprintf(buf, len, "(a bad time)");
	else
		strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

/* Seconds since t, 0 for a time in the future. */
static unsigned long long ago(unsigned long long t)
{
	unsigned long long now = (unsigned long long)time(NULL);

	return now > t ? now - t : 0;
}

/* The daemon's first lines; false when it has none or it is not running. */
static bool header(const char *name, const char *path, const char *text,
		   const char *unit)
{
	unsigned long long pid, updated;

	if (!text) {
		printf("%s: no status file %s (%s): not running? systemctl "
		       "status %s\n", name, path, strerror(errno), unit);
		return false;
	}
	pid = gate_status_number(text, "pid");
	updated = gate_status_number(text, "updated");
	if (pid == 0 || (kill((pid_t)pid, 0) != 0 && errno == ESRCH)) {
		printf("%s: not running (its status file is from %llu s ago); "
		       "systemctl status %s\n", name, ago(updated), unit);
		return false;
	}
	printf("%s: running, pid %llu, counters as of %llu s ago\n", name, pid,
	       ago(updated));
	return true;
}

static void knock_refusals(const char *text)
{
	char key[64], last[96], when[40];
	bool any = false;

	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		unsigned long long n;

		snprintf(key, sizeof(key), "refused.%s", refusals[i].reason);
		if (!(n = gate_status_number(text, key)))
			continue;
		if (!any)
			printf("  refused:\n");
		any = true;
		printf("    %-14s %llu", refusals[i].reason, n);
		snprintf(key, sizeof(key), "last.%s", refusals[i].reason);
		if (gate_status_get(text, key, last, sizeof(last))) {
			char *src = strchr(last, ' ');

			if (src)
				*src++ = '\0';
			gate_format_time(when, sizeof(when), strtoull(last, NULL, 10));
			printf(", last %s from %s", when, src ? src : "?");
		}
		printf("\n      %s\n", refusals[i].meaning);
	}
	if (!any)
		printf("  refused: none\n");
}

static bool knock_status(const struct server_config *cfg)
{
	char *text = gate_status_read(cfg->knock.status_file);
	bool ok = header("posternd", cfg->knock.status_file, text, "posternd");

	if (text) {
		printf("  received %llu, accepted %llu, nft errors %llu, state "
		       "errors %llu\n", gate_status_number(text, "received"),
		       gate_status_number(text, "accepted"),
		       gate_status_number(text, "nft_errors"),
		       gate_status_number(text, "state_errors"));
		knock_refusals(text);
	}
	free(text);
	return ok;
}

static bool tunnel_status(const struct server_config *cfg)
{
	char *text = gate_status_read(cfg->tunnel.status_file);
	bool ok = header("postern-tunneld", cfg->tunnel.status_file, text,
			 "postern-tunneld");
	char client[80], src[80], when[40];

	if (text) {
		printf("  sessions %llu, streams open %llu, handshakes %llu; "
		       "accepted %llu, refused %llu (handshake %llu, "
		       "unconfirmed %llu, max_sessions %llu)\n",
		       gate_status_number(text, "sessions"),
		       gate_status_number(text, "streams_open"),
		       gate_status_number(text, "handshakes"),
		       gate_status_number(text, "accepted"),
		       gate_status_number(text, "refused.handshake") +
		       gate_status_number(text, "refused.unconfirmed") +
		       gate_status_number(text, "refused.max_sessions"),
		       gate_status_number(text, "refused.handshake"),
		       gate_status_number(text, "refused.unconfirmed"),
		       gate_status_number(text, "refused.max_sessions"));
		if (gate_status_get(text, "last_session_client", client,
				    sizeof(client)) &&
		    gate_status_get(text, "last_session_src", src, sizeof(src))) {
			gate_format_time(when, sizeof(when),
					 gate_status_number(text, "last_session_at"));
			printf("  last session %s: %s from %s\n", when, client, src);
		}
	}
	free(text);
	return ok;
}

int gate_status_main(const struct cli_options *opt, int argc, char *argv[])
{
	struct server_config cfg;
	char conf[4096];
	bool ok;

	(void)argv;
	if (argc != 1) {
		fprintf(stderr, "Usage: %s gate status\n", PROG_NAME);
		return EXIT_USAGE;
	}
	if (!gate_config_load(opt, conf, sizeof(conf), &cfg))
		return EXIT_FAIL;
	ok = knock_status(&cfg);
	ok = tunnel_status(&cfg) && ok;
	server_config_free(&cfg);
	return fflush(stdout) == 0 && ok ? EXIT_OK : EXIT_FAIL;
}
