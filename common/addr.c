/* Socket addresses to and from text; see addr.h. */
#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

bool addr_parse_port(const char *s, uint16_t *port)
{
	unsigned long v = 0;
	size_t n = 0;

	for (; s[n]; n++) {
		if (s[n] < '0' || s[n] > '9' || n >= 5)
			return false;
		v = 10 * v + (unsigned long)(s[n] - '0');
	}
	if (n == 0 || v < 1 || v > 65535)
		return false;
	*port = (uint16_t)v;
	return true;
}

bool addr_parse(const char *text, struct sockaddr_storage *sa,
		socklen_t *sa_len)
{
	struct sockaddr_storage tmp;
	char host[INET6_ADDRSTRLEN];
	const char *h, *end, *port;
	uint16_t p;
	size_t hlen;
	bool v6 = text[0] == '[';

	if (!sa)
		sa = &tmp;
	if (v6) {
		h = text + 1;
		end = strchr(h, ']');
		if (!end || end[1] != ':')
			return false;
		port = end + 2;
	} else {
		h = text;
		end = strrchr(text, ':');
		if (!end)
			return false;
		port = end + 1;
	}
	hlen = (size_t)(end - h);
	if (hlen == 0 || hlen >= sizeof(host) || !addr_parse_port(port, &p))
		return false;
	memcpy(host, h, hlen);
	host[hlen] = '\0';

	memset(sa, 0, sizeof(*sa));
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)sa;

		if (inet_pton(AF_INET6, host, &s6->sin6_addr) != 1)
			return false;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(p);
		if (sa_len)
			*sa_len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)sa;

		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return false;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(p);
		if (sa_len)
			*sa_len = sizeof(*s4);
	}
	return true;
}

void addr_format(char *buf, size_t len, const struct sockaddr_storage *sa)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (sa->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, len, "[%s]:%u", host, ntohs(s6->sin6_port));
	} else if (sa->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, len, "%s:%u", host, ntohs(s4->sin_port));
	} else {
		snprintf(buf, len, "?");
	}
}

bool addr_same_host(const struct sockaddr_storage *a,
		    const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr,
			      16) == 0;
	return false;
}
