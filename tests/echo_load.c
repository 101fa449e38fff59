/*
 * Test tool: open COUNT connections to ADDR:PORT at once, send BYTES on each
 * (a pattern that differs per connection), half-close, and check that the
 * same bytes come back. Prints "COUNT/COUNT ok"; exit 0 only if all did.
 * Gives up after SECONDS.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int fd;
	size_t sent, got;
	bool shut, done, bad;
};

static uint8_t pattern(size_t conn, size_t i)
{
	return (uint8_t)(conn * 31 + i * 7 + (i >> 8));
}

int main(int argc, char *argv[])
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	size_t count, bytes, ok = 0;
	struct conn *c;
	struct pollfd *p;
	time_t end;
	uint8_t buf[16384];

	if (argc != 6) {
		fprintf(stderr, "usage: echo_load ADDR PORT COUNT BYTES SECONDS\n");
		return 2;
	}
	inet_pton(AF_INET, argv[1], &sa.sin_addr);
	sa.sin_port = htons((uint16_t)atoi(argv[2]));
	count = (size_t)atoi(argv[3]);
	bytes = (size_t)atol(argv[4]);
	end = time(NULL) + atoi(argv[5]);
	c = calloc(count, sizeof(*c));
	p = calloc(count, sizeof(*p));
	for (size_t i = 0; i < count; i++) {
		c[i].fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		if (connect(c[i].fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 &&
		    errno != EINPROGRESS)
			c[i].bad = c[i].done = true;
	}
	while (time(NULL) < end) {
		size_t active = 0;

		for (size_t i = 0; i < count; i++) {
			p[i].fd = c[i].done ? -1 : c[i].fd;
			p[i].events = POLLIN | (c[i].sent < bytes ? POLLOUT : 0);
			active += !c[i].done;
		}
		if (!active)
			break;
		if (poll(p, count, 200) <= 0)
			continue;
		for (size_t i = 0; i < count; i++) {
			if (c[i].done)
				continue;
			if ((p[i].revents & POLLOUT) && c[i].sent < bytes) {
				size_t n = bytes - c[i].sent;
				ssize_t w;

				if (n > sizeof(buf))
					n = sizeof(buf);
				for (size_t k = 0; k < n; k++)
					buf[k] = pattern(i, c[i].sent + k);
				w = write(c[i].fd, buf, n);
				if (w > 0)
					c[i].sent += (size_t)w;
			}
			if (c[i].sent == bytes && !c[i].shut) {
				shutdown(c[i].fd, SHUT_WR);
				c[i].shut = true;
			}
			if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t r = read(c[i].fd, buf, sizeof(buf));

				if (r > 0) {
					for (ssize_t k = 0; k < r; k++)
						if (buf[k] != pattern(i, c[i].got + (size_t)k))
							c[i].bad = true;
					c[i].got += (size_t)r;
				} else if (r == 0 || errno != EAGAIN) {
					c[i].done = true;
				}
			}
		}
	}
	for (size_t i = 0, shown = 0; i < count; i++) {
		bool good = c[i].done && !c[i].bad && c[i].got == bytes;

		ok += good;
		if (!good && shown++ < 5)
			fprintf(stderr, "connection %zu: sent %zu, got %zu, %s%s\n", i,
				c[i].sent, c[i].got, c[i].done ? "ended" : "still open",
				c[i].bad ? ", wrong bytes" : "");
		close(c[i].fd);
	}
	printf("%zu/%zu ok\n", ok, count);
	free(c);
	free(p);
	return ok == count ? 0 : 1;
}
