/*
 * Logs known entries for tests/journal_test.sh, which finds them in a real
 * journal. Usage: log_probe journal|auto TAG. Every entry carries
 * POSTERN_PROBE=TAG; stdout gets the MESSAGE_ID the knock_accepted entry must
 * carry.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"

int main(int argc, char **argv)
{
	char tag[64];
	const char *accepted[] = {
		"POSTERN_CLIENT=alice", "POSTERN_SRC=192.0.2.7",
		"POSTERN_TARGET=192.0.2.7", "POSTERN_PORTS=22 8443", tag, NULL,
	};
	const char *unknown[] = { tag, NULL };

	if (argc != 3 || (strcmp(argv[1], "journal") && strcmp(argv[1], "auto"))) {
		fprintf(stderr, "usage: log_probe journal|auto TAG\n");
		return 2;
	}
	snprintf(tag, sizeof(tag), "POSTERN_PROBE=%s", argv[2]);
	log_open("log_probe", LOG_INFO, strcmp(argv[1], "auto") == 0 ?
		 LOG_TARGET_AUTO : LOG_TARGET_JOURNAL);
	log_event(LOG_NOTICE, "knock_accepted", accepted,
		  "knock accepted from %s", "192.0.2.7");
	log_event(LOG_NOTICE, "probe_unknown", unknown, "an event not in the table");
	log_event(LOG_DEBUG, "probe_debug", unknown, "below max_priority");
	printf("MESSAGE_ID=%s\n", log_message_id("knock_accepted"));
	return 0;
}
