/* The gate memo of gate_memo.h: one line per server file. */
#include "gate_memo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Server names are config identifiers; keep the file name plain anyway. */
static bool plain_name(const char *name)
{
	if (!*name || strlen(name) > 64)
		return false;
	for (const char *p = name; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && !strchr("-_.", *p))
			return false;
	return *name != '.';
}

static bool own_dir(const char *dir);

/* The directory, made if need be (0700), and the file WHAT-NAME in it. */
static bool memo_file(const struct server_entry *s, const char *what,
		      char *buf, size_t len, bool make)
{
	const char *run = getenv("XDG_RUNTIME_DIR"), *cache = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char dir[PATH_MAX];
	int n;

	if (!plain_name(s->name))
		return false;
	if (run && *run == '/')
		n = snprintf(dir, sizeof(dir), "%s/postern", run);
	else if (cache && *cache == '/')
		n = snprintf(dir, sizeof(dir), "%s/postern", cache);
	else if (home && *home == '/')
		n = snprintf(dir, sizeof(dir), "%s/.cache/postern", home);
	else
		return false;
	if (n < 0 || (size_t)n >= sizeof(dir))
		return false;
	if (make && mkdir(dir, 0700) < 0 && errno != EEXIST) {
		/* ~/.cache itself may be missing */
		char *slash = strrchr(dir, '/');

		*slash = '\0';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return false;
		*slash = '/';
		if (mkdir(dir, 0700) < 0 && errno != EEXIST)
			return false;
	}
	if (!own_dir(dir))
		return false;
	n = snprintf(buf, len, "%s/%s-%s", dir, what, s->name);
	return n > 0 && (size_t)n < len;
}

/* Ours alone: a directory another user may write in (a ~/.cache linked
 * to /tmp) could hold anything under our notes' names. */
static bool own_dir(const char *dir)
{
	struct stat st;

	return lstat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
	       st.st_uid == geteuid() && !(st.st_mode & (S_IWGRP | S_IWOTH));
}

/* A note to read: a regular file of ours, never a FIFO that would hang. */
static FILE *open_note(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	FILE *f;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_uid != geteuid() || !(f = fdopen(fd, "r"))) {
		close(fd);
		return NULL;
	}
	return f;
}

static bool memo_path(const struct server_entry *s, char *buf, size_t len,
		      bool make)
{
	return memo_file(s, "gate", buf, len, make);
}

void gate_memo_tunnels(const struct server_entry *s, unsigned int n)
{
	char path[PATH_MAX], file[PATH_MAX + 24];
	FILE *f;
	int fd;

	if (!memo_file(s, "tunnels", path, sizeof(path), n > 0) ||
	    snprintf(file, sizeof(file), "%s.%ld", path, (long)getpid()) >= (int)sizeof(file))
		return;
	if (n == 0) {
		unlink(file);
		return;
	}
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	fprintf(f, "%u\n", n);
	fclose(f);
}

unsigned int gate_memo_tunnels_up(const struct server_entry *s,
				  unsigned int *procs)
{
	char path[PATH_MAX], prefix[NAME_MAX + 2], *slash;
	unsigned int total = 0;
	struct dirent *e;
	DIR *dir;

	*procs = 0;
	if (!memo_file(s, "tunnels", path, sizeof(path), false))
		return 0;
	slash = strrchr(path, '/');
	snprintf(prefix, sizeof(prefix), "%s.", slash + 1);
	*slash = '\0';
	if (!(dir = opendir(path)))
		return 0;
	while ((e = readdir(dir))) {
		char file[PATH_MAX + NAME_MAX + 2], *end;
		unsigned int n;
		long pid;
		FILE *f;

		if (strncmp(e->d_name, prefix, strlen(prefix)))
			continue;
		pid = strtol(e->d_name + strlen(prefix), &end, 10);
		if (*end || pid <= 0)
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, e->d_name);
		/* A note left by a process that is gone (killed) says nothing. */
		if (kill((pid_t)pid, 0) != 0 && errno == ESRCH) {
			unlink(file);
			continue;
		}
		if (!(f = open_note(file)))
			continue;
		if (fscanf(f, "%u", &n) == 1 && n > 0 && n < 1000) {
			total += n;
			(*procs)++;
		}
		fclose(f);
	}
	closedir(dir);
	return total;
}

bool gate_memo_get(const struct server_entry *s, uint64_t *age_ms,
		   uint64_t *connect_ms)
{
	char path[PATH_MAX], addr[256];
	unsigned long long at, took;
	unsigned int port;
	uint64_t now = wall_ms();
	FILE *f;
	int n;

	if (!memo_path(s, path, sizeof(path), false) || !(f = open_note(path)))
		return false;
	n = fscanf(f, "%255s %u %llu %llu", addr, &port, &at, &took);
	fclose(f);
	/* The same server as configured now, and not from the future. */
	if (n != 4 || strcmp(addr, s->address) || port != s->tunnel_port ||
	    at > now || took > 60000)
		return false;
	*age_ms = now - at;
	*connect_ms = took;
	return true;
}

void gate_memo_put(const struct server_entry *s, uint64_t connect_ms)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;
	int fd;

	if (!memo_path(s, path, sizeof(path), true) ||
	    snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long)getpid()) >= (int)sizeof(tmp))
		return;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	fprintf(f, "%s %u %llu %llu\n", s->address, s->tunnel_port,
		(unsigned long long)wall_ms(), (unsigned long long)connect_ms);
	/* rename: a reader sees the old line or the new one, whole */
	if (fclose(f) != 0 || rename(tmp, path) < 0)
		unlink(tmp);
}
