/* The local TCP listeners of forward and socks: "[BIND:]PORT", bound. */
#ifndef POSTERN_LOCAL_LISTEN_H
#define POSTERN_LOCAL_LISTEN_H

#include <stdbool.h>
#include <sys/socket.h>
#include <uv.h>

#include "addr.h"

#define LOCAL_LISTEN_BIND "127.0.0.1"	/* without BIND */
#define LOCAL_LISTEN_BACKLOG 128

/* "[BIND:]PORT", BIND a numeric address, "[IPv6]", "localhost" or "*"
 * (every IPv4 interface), split at the last colon. */
bool local_listen_parse(const char *spec, struct sockaddr_storage *sa,
			socklen_t *sa_len);

/* Initialise tcp (close it, whatever the outcome), bind it to sa and
 * listen; name gets the address bound ("127.0.0.1:2201"). False after one
 * line on stderr. */
bool local_listen(uv_loop_t *loop, uv_tcp_t *tcp,
		  const struct sockaddr_storage *sa, uv_connection_cb cb,
		  char name[ADDR_TEXT_MAX]);

#endif
