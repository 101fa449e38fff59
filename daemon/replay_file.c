/* posternd's replay state file: see replay_file.h. */
#include "replay_file.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keys.h"

#define MAGIC "postern-knock-state 1"
#define MAX_LINE (1 << 17)	/* > 4096 knocks of 32 bytes: any replay_entries */
#define MAX_FILE (64 << 20)

/* Journal lines past which the file is written whole again. */
#define JOURNAL_MAX 4096

struct replay_file {
	char *path;
	const char *name;	/* in path, after the directory */
	char *tmp_name;
	int dirfd;
	int fd;			/* the file, for appending; -1: write it whole */
	size_t journal;		/* lines appended since it was written whole */
	bool unsynced_data;	/* appended or written since the last sync */
	bool unsynced_dir;	/* renamed since the last sync */
};

struct replay_file *replay_file_open(const char *path, char *err, size_t err_len)
{
	struct replay_file *f = calloc(1, sizeof(*f));
	char *slash, *dir;

	if (!f || !(f->path = strdup(path)) || !(dir = strdup(path))) {
		snprintf(err, err_len, "out of memory");
		replay_file_close(f);
		return NULL;
	}
	f->dirfd = f->fd = -1;
	slash = strrchr(dir, '/');
	f->name = strrchr(f->path, '/') ? strrchr(f->path, '/') + 1 : f->path;
	if (slash)
		slash[slash == dir] = '\0';	/* "/x" keeps "/" */
	if (asprintf(&f->tmp_name, ".%s.new", f->name) < 0)
		f->tmp_name = NULL;
	f->dirfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0 || !f->tmp_name || !*f->name) {
		int e = !*f->name ? EINVAL : f->dirfd < 0 ? errno : ENOMEM;

		snprintf(err, err_len, "state file %s: %s", path, strerror(e));
		free(dir);
		replay_file_close(f);
		errno = e;	/* for the caller: ENOENT is a directory not made yet */
		return NULL;
	}
	free(dir);
	return f;
}

void replay_file_close(struct replay_file *f)
{
	if (!f)
		return;
	replay_file_sync(f);
	if (f->fd >= 0)
		close(f->fd);
	if (f->dirfd >= 0)
		close(f->dirfd);
	free(f->path);
	free(f->tmp_name);
	free(f);
}

const char *replay_file_path(const struct replay_file *f)
{
	return f->path;
}

bool replay_file_writable(const struct replay_file *f, char *err, size_t err_len)
{
	/* faccessat checks the real ids, which are the dropped ones now */
	if (faccessat(f->dirfd, ".", W_OK | X_OK, 0) == 0)
		return true;
	snprintf(err, err_len, "the directory of %s: %s", f->path, strerror(errno));
	return false;
}

/* One key's line; false when it has nothing to say. */
static bool write_key(const struct replay_key *k, FILE *out)
{
	char key[KEY_B64_LEN + 1];

	if (k->floor_ms == 0 && k->n_seen == 0)
		return false;
	key_to_base64(key, k->pub);
	fprintf(out, "%s %" PRIu64, key, k->floor_ms);
	for (size_t j = 0; j < k->n_seen; j++) {
		fprintf(out, " %" PRIu64 ":", k->seen[j].ts_ms);
		for (size_t b = 0; b < REPLAY_ID_LEN; b++)
			fprintf(out, "%02x", k->seen[j].id[b]);
	}
	fputc('\n', out);
	return true;
}

bool replay_write(const struct replay_table *t, const struct replay_header *h,
		  FILE *out)
{
	size_t lines = 0;

	fprintf(out, "%s\nwindow %" PRIu32 "\n", MAGIC, h->window_s);
	if (h->floor_expires_ms)
		fprintf(out, "floor %" PRIu64 " %" PRIu64 "\n", h->floor_wall_ms,
			h->floor_expires_ms);
	for (size_t i = 0; i < t->n_keys; i++)
		lines += write_key(&t->keys[i], out);
	for (size_t j = 0; j < t->n_orphans; j++)
		lines += write_key(&t->orphans[j], out);
	fprintf(out, "end %zu\n", lines);
	return !ferror(out);
}

/* A decimal u64 ending at a delimiter in delims; *p moves past it. */
static bool parse_u64(char **p, uint64_t *v, const char *delims)
{
	char *end;

	if (**p < '0' || **p > '9')
		return false;
	errno = 0;
	*v = strtoull(*p, &end, 10);
	if (errno || !strchr(delims, *end))
		return false;
	*p = end;
	return true;
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static bool parse_seen(char **p, struct replay_seen *s, uint64_t now)
{
	s->seen_ms = now;
	if (!parse_u64(p, &s->ts_ms, ":") || s->ts_ms == 0)
		return false;
	(*p)++;
	for (size_t b = 0; b < REPLAY_ID_LEN; b++) {
		int hi = hex_digit((*p)[0]), lo = hi < 0 ? -1 : hex_digit((*p)[1]);

		if (lo < 0)
			return false;
		s->id[b] = (uint8_t)(hi << 4 | lo);
		*p += 2;
	}
	return **p == ' ' || **p == '\0';
}

/* One "KEY FLOOR [TS:ID]..." line, without its newline. */
static bool parse_key_line(struct replay_table *t, char *line,
			   struct replay_seen *seen, size_t max_seen,
			   uint64_t now)
{
	uint8_t pub[KEY_LEN];
	uint64_t floor_ms;
	size_t n = 0;
	char *p = line + KEY_B64_LEN;

	if (strlen(line) < KEY_B64_LEN + 2 || *p != ' ')
		return false;
	*p++ = '\0';
	if (!key_from_base64(pub, line) || !parse_u64(&p, &floor_ms, " "))
		return false;
	while (*p == ' ') {
		p++;
		if (n == max_seen || !parse_seen(&p, &seen[n++], now))
			return false;
	}
	return *p == '\0' && replay_restore(t, pub, floor_ms, seen, n, now);
}

/* One journal line, "+ KEY TS:ID", without its newline. */
static bool parse_journal_line(struct replay_table *t, char *line,
			       uint64_t now)
{
	struct replay_seen seen;
	uint8_t pub[KEY_LEN];
	char *p = line + 2 + KEY_B64_LEN;

	if (strncmp(line, "+ ", 2) != 0 || strlen(line) < 2 + KEY_B64_LEN + 2 ||
	    *p != ' ')
		return false;
	*p++ = '\0';
	if (!key_from_base64(pub, line + 2) || !parse_seen(&p, &seen, now) ||
	    *p != '\0')
		return false;
	replay_load_knock(t, pub, &seen);
	return true;
}

/* "window S" or "floor WALL EXPIRES", before the key lines. */
static bool parse_header_line(const char *line, struct replay_header *h)
{
	char extra;

	if (sscanf(line, "window %" SCNu32 "%c", &h->window_s, &extra) == 1)
		return h->window_s > 0;
	return sscanf(line, "floor %" SCNu64 " %" SCNu64 "%c", &h->floor_wall_ms,
		      &h->floor_expires_ms, &extra) == 2 && h->floor_expires_ms;
}

bool replay_parse(struct replay_table *t, FILE *in, uint64_t now,
		  struct replay_header *h, char *err, size_t err_len)
{
	/* A line holds at most MAX_LINE bytes: that bounds its knocks. */
	size_t max_seen = MAX_LINE / (REPLAY_ID_LEN * 2 + 3), cap = 0, keys = 0;
	struct replay_seen *seen = calloc(max_seen, sizeof(*seen));
	char *line = NULL;
	unsigned int lineno = 0;
	bool ended = false, ok = seen != NULL;
	ssize_t n;

	memset(h, 0, sizeof(*h));
	while (ok && (n = getline(&line, &cap, in)) >= 0) {
		size_t end_n;
		char extra;

		lineno++;
		if (n > MAX_LINE) {
			ok = false;
			break;
		}
		/* A last journal line without its newline is an append that
		 * a crash cut: nothing used it. */
		if (line[n - 1] != '\n') {
			ok = ended && lineno > 1;
			break;
		}
		line[n - 1] = '\0';
		if (lineno == 1) {
			ok = strcmp(line, MAGIC) == 0;
		} else if (ended) {
			ok = parse_journal_line(t, line, now);
		} else if (sscanf(line, "end %zu%c", &end_n, &extra) == 1) {
			ended = true;
			ok = end_n == keys;
		} else if (!keys && (!strncmp(line, "window ", 7) ||
				     !strncmp(line, "floor ", 6))) {
			ok = parse_header_line(line, h);
		} else {
			ok = parse_key_line(t, line, seen, max_seen, now);
			keys++;
		}
	}
	if (ok && !ended) {
		ok = false;
		lineno++;
	}
	if (!ok)
		snprintf(err, err_len, "%u: %s", lineno,
			 !seen ? "out of memory" : lineno == 1 ?
			 "not a postern knock state file" : ended ?
			 "not a journal line" : "malformed, or the file is cut short");
	free(seen);
	free(line);
	return ok;
}

static void clear_history(struct replay_table *t)
{
	for (size_t i = 0; i < t->n_keys; i++) {
		t->keys[i].floor_ms = 0;
		t->keys[i].n_seen = 0;
	}
	for (size_t j = 0; j < t->n_orphans; j++)
		free(t->orphans[j].seen);
	t->n_orphans = 0;
}

/* The file, opened for reading, or NULL with errno set. */
static FILE *open_state(struct replay_file *f)
{
	int fd = openat(f->dirfd, f->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st = { 0 };
	FILE *in;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || st.st_size > MAX_FILE || !(in = fdopen(fd, "r"))) {
		int e = st.st_size > MAX_FILE ? EFBIG : errno;

		close(fd);
		errno = e;
		return NULL;
	}
	return in;
}

enum replay_load replay_file_load(struct replay_file *f, struct replay_table *t,
				  uint64_t now, struct replay_header *h,
				  char *err, size_t err_len)
{
	FILE *in = open_state(f);
	char why[256];
	bool ok;

	if (!in && errno == ENOENT) {
		snprintf(err, err_len, "%s: no such file", f->path);
		return REPLAY_MISSING;
	}
	if (!in) {
		snprintf(err, err_len, "%s: %s", f->path, strerror(errno));
		clear_history(t);
		return REPLAY_CORRUPT;
	}
	ok = replay_parse(t, in, now, h, why, sizeof(why));
	fclose(in);
	if (!ok) {
		snprintf(err, err_len, "%s:%s", f->path, why);
		clear_history(t);
		return REPLAY_CORRUPT;
	}
	return REPLAY_LOADED;
}

static bool write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		buf += n;
		len -= (size_t)n;
	}
	return true;
}

/* A state file that cannot be kept up to date is removed: stale state
 * must not pass for whole after a restart. */
static bool fail_write(struct replay_file *f, int e, char *err, size_t err_len)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	unlinkat(f->dirfd, f->tmp_name, 0);
	unlinkat(f->dirfd, f->name, 0);
	snprintf(err, err_len, "cannot write %s: %s", f->path, strerror(e));
	return false;
}

bool replay_file_rewrite(struct replay_file *f, struct replay_table *t,
			 const struct replay_header *h, char *err, size_t err_len)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&buf, &len);
	bool ok = mem && replay_write(t, h, mem);
	int fd = -1, e = ENOMEM;

	if (mem)
		ok = fclose(mem) == 0 && ok;
	if (ok) {
		fd = openat(f->dirfd, f->tmp_name,
			    O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC | O_NOFOLLOW,
			    0600);
		ok = fd >= 0 && write_all(fd, buf, len) &&
		     renameat(f->dirfd, f->tmp_name, f->dirfd, f->name) == 0;
		e = errno;
	}
	free(buf);
	if (f->fd >= 0)
		close(f->fd);
	f->fd = fd;
	if (!ok)
		return fail_write(f, e, err, err_len);
	f->journal = 0;
	f->unsynced_data = f->unsynced_dir = true;
	t->n_fresh = 0;
	t->overflow = false;
	return true;
}

bool replay_file_record(struct replay_file *f, struct replay_table *t,
			const struct replay_header *h, char *err, size_t err_len)
{
	char buf[REPLAY_FRESH_MAX * (KEY_B64_LEN + 64)], key[KEY_B64_LEN + 1];
	size_t len = 0;

	if (f->fd < 0 || t->overflow)
		return replay_file_rewrite(f, t, h, err, err_len);
	for (size_t i = 0; i < t->n_fresh; i++) {
		const struct replay_seen *s = &t->fresh[i].seen;

		key_to_base64(key, t->fresh[i].pub);
		len += (size_t)snprintf(buf + len, sizeof(buf) - len, "+ %s %" PRIu64 ":",
					key, s->ts_ms);
		for (size_t b = 0; b < REPLAY_ID_LEN; b++)
			len += (size_t)snprintf(buf + len, sizeof(buf) - len, "%02x",
						s->id[b]);
		buf[len++] = '\n';
	}
	/* One write: a crash leaves at most its last line cut short. */
	if (len && !write_all(f->fd, buf, len))
		return fail_write(f, errno, err, err_len);
	f->journal += t->n_fresh;
	f->unsynced_data |= t->n_fresh > 0;
	t->n_fresh = 0;
	return true;
}

bool replay_file_compact(struct replay_file *f, struct replay_table *t,
			 const struct replay_header *h, char *err, size_t err_len)
{
	if (f->fd >= 0 && f->journal < JOURNAL_MAX)
		return true;
	return replay_file_rewrite(f, t, h, err, err_len);
}

void replay_file_sync(struct replay_file *f)
{
	if (f->unsynced_data && f->fd >= 0)
		fdatasync(f->fd);
	if (f->unsynced_dir)
		fsync(f->dirfd);
	f->unsynced_data = f->unsynced_dir = false;
}
