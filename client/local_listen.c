/* Local listeners (local_listen.h). */
#include "local_listen.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "subcommands.h"

bool local_listen_parse(const char *spec, struct sockaddr_storage *sa,
			socklen_t *sa_len)
{
	char buf[INET6_ADDRSTRLEN + 16], addr[INET6_ADDRSTRLEN + 24];
	const char *bind = LOCAL_LISTEN_BIND;
	char *port;

	if (strlen(spec) >= sizeof(buf))
		return false;
	strcpy(buf, spec);
	port = strrchr(buf, ':');
	if (port) {
		*port++ = '\0';
		bind = buf;
		if (!strcmp(bind, "localhost"))
			bind = "127.0.0.1";
		else if (!strcmp(bind, "*"))
			bind = "0.0.0.0";
	} else {
		port = buf;
	}
	snprintf(addr, sizeof(addr), "%s:%s", bind, port);
	return addr_parse(addr, sa, sa_len);
}

bool local_listen(uv_loop_t *loop, uv_tcp_t *tcp,
		  const struct sockaddr_storage *sa, uv_connection_cb cb,
		  char name[ADDR_TEXT_MAX])
{
	struct sockaddr_storage bound;
	int len = sizeof(bound), rc;

	addr_format(name, ADDR_TEXT_MAX, sa);
	uv_tcp_init(loop, tcp);
	rc = uv_tcp_bind(tcp, (const struct sockaddr *)sa, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)tcp, LOCAL_LISTEN_BACKLOG, cb);
	if (rc < 0) {
		fprintf(stderr, "%s: %s: cannot listen: %s\n", PROG_NAME, name,
			uv_strerror(rc));
		return false;
	}
	if (uv_tcp_getsockname(tcp, (struct sockaddr *)&bound, &len) == 0)
		addr_format(name, ADDR_TEXT_MAX, &bound);
	return true;
}
