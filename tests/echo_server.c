/*
 * Test tool: a TCP echo service on 127.0.0.1:PORT for at most SECONDS
 * seconds; echoes each connection until the client half-closes, then
 * half-closes back. One thread per connection keeps it short.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static void *echo(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(fd, buf + off, (size_t)(n - off));

			if (w <= 0)
				goto out;
			off += w;
		}
	shutdown(fd, SHUT_WR);
out:
	close(fd);
	return NULL;
}

int main(int argc, char *argv[])
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int one = 1, fd;

	if (argc != 3) {
		fprintf(stderr, "usage: echo_server PORT SECONDS\n");
		return 2;
	}
	sa.sin_port = htons((uint16_t)atoi(argv[1]));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 512) < 0) {
		perror("echo_server");
		return 1;
	}
	alarm((unsigned int)atoi(argv[2]));	/* bounded in time */
	for (;;) {
		int c = accept(fd, NULL, NULL);
		pthread_t t;

		if (c < 0)
			continue;
		if (pthread_create(&t, NULL, echo, (void *)(intptr_t)c) == 0)
			pthread_detach(t);
		else
			close(c);
	}
}
