/*
 * notify_sink: stands in for systemd's notification socket, so bench/knock
 * can read posternd's sd_notify STATUS= counters. Binds a unix datagram
 * socket at PATH and prints each message as one line until SIGTERM.
 *
 *   NOTIFY_SOCKET=PATH posternd ...   with   notify_sink PATH > FILE
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

int main(int argc, char *argv[])
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char buf[4096];
	int fd;

	if (argc != 2 || strlen(argv[1]) >= sizeof(sun.sun_path))
		return fprintf(stderr, "usage: notify_sink PATH\n"), 2;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	strcpy(sun.sun_path, argv[1]);
	unlink(argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	/* Writable by all, as systemd's is: posternd notifies after it has
	 * dropped to another user. */
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    chmod(argv[1], 0666) < 0)
		return perror("notify_sink"), 1;
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (!stop) {
		ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

		if (n <= 0)
			continue;
		buf[n] = '\0';
		for (char *p = buf; *p; p++)
			if (*p == '\n')
				*p = ' ';
		printf("%s\n", buf);
	}
	close(fd);
	unlink(argv[1]);
	return 0;
}
