/* Sending a knock. */
#include "knocker.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "knock.h"

bool resolve_server(const struct server_entry *s, uint16_t port,
		    struct sockaddr_storage *sa, socklen_t *len,
		    char *err, size_t err_len)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_DGRAM }, *res;
	char service[8];
	int rc;

	snprintf(service, sizeof(service), "%u", port);
	rc = getaddrinfo(s->address, service, &hints, &res);
	if (rc != 0) {
		snprintf(err, err_len, "%s: cannot resolve %s: %s", s->name,
			 s->address, gai_strerror(rc));
		return false;
	}
	memcpy(sa, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return true;
}

/* A knock's timestamp. A server accepts each key's timestamps only in
 * strictly increasing order, and two configured names may be one server
 * (its IPv4 and IPv6 address): knocks sent in the same millisecond get
 * successive timestamps. */
static uint64_t knock_timestamp_ms(void)
{
	static uint64_t last;
	struct timespec ts;
	uint64_t now;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	last = now > last ? now : last + 1;
	return last;
}

bool knock_packet(const struct client_ctx *ctx, const struct server_entry *s,
		  const uint8_t *target, uint8_t *pkt,
		  char *err, size_t err_len)
{
	struct knock_payload p = { .timestamp_ms = knock_timestamp_ms() };

	if (target)
		memcpy(p.target, target, sizeof(p.target));
	if (!knock_build(pkt, &ctx->sec->key, s->public_key, ctx->sec->psk,
			 &p)) {
		snprintf(err, err_len, "%s: cannot build a knock", s->name);
		return false;
	}
	return true;
}

bool knock_send(const struct client_ctx *ctx, const struct server_entry *s,
		const struct sockaddr_storage *sa, socklen_t len,
		const uint8_t *target, char *err, size_t err_len)
{
	uint8_t pkt[KNOCK_LEN];
	ssize_t n;
	int fd;

	if (!knock_packet(ctx, s, target, pkt, err, err_len))
		return false;
	fd = socket(sa->ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, err_len, "%s: socket: %s", s->name, strerror(errno));
		return false;
	}
	n = sendto(fd, pkt, sizeof(pkt), 0, (const struct sockaddr *)sa, len);
	close(fd);
	if (n != (ssize_t)sizeof(pkt)) {
		snprintf(err, err_len, "%s: sending the knock to %s: %s", s->name,
			 s->address, n < 0 ? strerror(errno) : "short write");
		return false;
	}
	return true;
}

void gate_failure_text(char *buf, size_t len, const struct server_entry *s,
		       const struct gate *g, enum gate_failure f,
		       uint64_t total_ms)
{
	char last[128] = "";

	if (f == GATE_REFUSED) {
		snprintf(buf, len, "%s: the gate opened but the tunnel port %u "
			 "refused the connection: is postern-tunneld running?",
			 s->name, s->tunnel_port);
		return;
	}
	if (gate_last_error(g))
		snprintf(last, sizeof(last), "; the last connect failed: %s",
			 strerror(gate_last_error(g)));
	snprintf(buf, len, "%s: knock unanswered: tunnel port %u still closed "
		 "after %llu s and %u knocks%s. Most likely first: the server "
		 "refused the knocks (wrong server key, PSK or knock port, "
		 "clocks more than its window apart, or this device's key is "
		 "not listed), posternd is not running there, or the link lost "
		 "them or is slower than connect_timeout allows; postern doctor "
		 "%s narrows it down, and on the server postern gate status "
		 "says which", s->name, s->tunnel_port,
		 (unsigned long long)(total_ms / 1000), gate_knocks(g), last,
		 s->name);
}
