/*
 * What a loadable server configuration may still get wrong: a tunnel port
 * no client's knock opens, clients past their expiry, no client at all.
 * posternd -t and postern-tunneld -t print these as warnings; each would
 * otherwise show only as a knock that "does nothing".
 */
#ifndef POSTERN_CONFIG_LINT_H
#define POSTERN_CONFIG_LINT_H

#include <stdint.h>

#include "config.h"

/* Calls warn once per finding, at Unix time now; returns how many. */
unsigned int server_config_lint(const struct server_config *c, int64_t now,
				void (*warn)(void *arg, const char *msg),
				void *arg);

#endif
