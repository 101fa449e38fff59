/* Sending a knock, and waiting for the gate it opens. */
#ifndef POSTERN_KNOCKER_H
#define POSTERN_KNOCKER_H

#include <stdbool.h>
#include <sys/socket.h>

#include "context.h"
#include "gate.h"

/* Resolve a server's address (a name or a literal) for UDP or TCP. */
bool resolve_server(const struct server_entry *s, uint16_t port,
		    struct sockaddr_storage *sa, socklen_t *len,
		    char *err, size_t err_len);

/* A fresh knock for s, into pkt (KNOCK_LEN bytes). */
bool knock_packet(const struct client_ctx *ctx, const struct server_entry *s,
		  const uint8_t *target, uint8_t *pkt, char *err, size_t err_len);

/* Send one knock to s at sa (its knock port). target: NULL, or the address
 * (16-byte form) the server should open instead of the packet's source. */
bool knock_send(const struct client_ctx *ctx, const struct server_entry *s,
		const struct sockaddr_storage *sa, socklen_t len,
		const uint8_t *target, char *err, size_t err_len);

/* One line for a gate that did not let us through: what happened, the
 * causes most likely first, and where to look. */
void gate_failure_text(char *buf, size_t len, const struct server_entry *s,
		       const struct gate *g, enum gate_failure f,
		       uint64_t total_ms);

#endif
