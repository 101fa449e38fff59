/*
 * Logging for the daemons: structured entries in the journal when it is
 * there, one escaped line per message on stderr otherwise.
 *
 * There is no formatter for keys, PSKs or handshake state, and none must be
 * added: a secret written to a log outlives every wipe() of it. Log public
 * facts only (client names, addresses, ports, reasons).
 *
 * Not for signal handlers; log_open is not thread-safe, the rest keeps its
 * state on the stack and leaves errno as it found it.
 */
#ifndef POSTERN_LOG_H
#define POSTERN_LOG_H

#include <syslog.h>	/* LOG_ERR, LOG_WARNING, LOG_NOTICE, LOG_INFO, LOG_DEBUG */

#define LOG_LINE_MAX 1024	/* bytes of one stderr line, newline included */
#define LOG_MAX_FIELDS 16	/* fields of one event; more are dropped */

enum log_target { LOG_TARGET_AUTO, LOG_TARGET_STDERR, LOG_TARGET_JOURNAL };

/* An event known to the message catalog (systemd/postern.catalog). */
struct log_event_type {
	const char *name;	/* POSTERN_EVENT value */
	const char *message_id;	/* MESSAGE_ID: 32 lowercase hex digits */
};

/* Every known event, ended by an entry whose name is NULL. */
extern const struct log_event_type log_event_types[];

/*
 * ident becomes SYSLOG_IDENTIFIER and the stderr prefix (NULL: the program's
 * name). Messages less urgent than max_priority are dropped on both targets.
 * AUTO picks the journal when $JOURNAL_STREAM names stderr's device and inode,
 * as systemd sets it for a service, else stderr; $POSTERN_LOG=journal or
 * =stderr overrides AUTO, and only AUTO. Until the first call: "postern",
 * LOG_INFO, stderr.
 */
void log_open(const char *ident, int max_priority, enum log_target target);

/* The target log_open settled on: LOG_TARGET_STDERR or LOG_TARGET_JOURNAL. */
enum log_target log_get_target(void);

void log_msg(int priority, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * A structured event. event is the POSTERN_EVENT value (e.g.
 * "knock_accepted"); fields is a NULL-terminated array of "KEY=value" strings
 * (POSTERN_CLIENT=alice, POSTERN_SRC=203.0.113.7, ...), or NULL. MESSAGE_ID
 * comes from the event's entry in log_event_types; an unknown event is logged
 * without one. A field whose key is not a valid journal field name, or is one
 * this module sets itself (MESSAGE, PRIORITY, ...), is dropped.
 */
void log_event(int priority, const char *event, const char *const *fields,
	       const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The MESSAGE_ID of an event, or NULL when the event is not in the table. */
const char *log_message_id(const char *event);

#endif
