/*
 * A daemon's status file: its counters and last events as "key value"
 * lines, for postern gate status and gate ls (systemctl status shows one
 * line; an admin asking why a knock failed needs the reasons, when and
 * from where). Written whole to a file beside it and renamed over it, so
 * that a reader sees one version or the next.
 */
#ifndef POSTERN_STATUS_FILE_H
#define POSTERN_STATUS_FILE_H

#include <stdbool.h>
#include <stddef.h>

/* A growing text; on out of memory it stays as it was and ok turns false. */
struct status_text {
	char *buf;
	size_t len, cap;
	bool ok;
};

__attribute__((format(printf, 2, 3)))
void status_add(struct status_text *t, const char *fmt, ...);
void status_text_free(struct status_text *t);

/* A write that failed is tried again after this long. */
#define STATUS_RETRY_MS 60000

/* One line in err on failure. */
bool status_file_write(const char *path, const struct status_text *t,
		       char *err, size_t err_len);

#endif
