/*
 * bench/tunnel's traffic and timing helper. Every mode is bounded in time.
 *
 *   tunnel_io sink ADDR PORT SECONDS
 *       Accept on ADDR:PORT, read and discard; close a connection at its
 *       EOF (so the sender sees the end arrive). One thread, epoll.
 *   tunnel_io greet ADDR PORT SECONDS
 *       Accept on ADDR:PORT, write "SSH-2.0-bench\r\n" at once and close:
 *       a service that answers as fast as a service can (sshd forks and
 *       re-executes itself first).
 *   tunnel_io send ADDR PORT MIB STREAMS SECONDS
 *       STREAMS parallel connections carry MIB MiB in all, each then
 *       half-closes and waits for the peer's EOF. Prints
 *       "BYTES SECONDS MB/s" (10^6 bytes); "timeout" in place of
 *       MB/s when SECONDS ran out first.
 *   tunnel_io banner ADDR PORT
 *       connect() to the first "SSH-2.0-": prints microseconds.
 *   tunnel_io spawn SECONDS PATTERN CMD [ARG...]
 *       Run CMD (stdin a pipe kept open; stdout and stderr one pipe) and
 *       print the microseconds from fork() to PATTERN in its output, then
 *       stop it. An empty PATTERN waits for CMD to exit 0 instead.
 *       Prints "fail" when neither happens.
 *   tunnel_io hold ADDR PORT N SECONDS BYTES
 *       Open N connections one after another, write BYTES on each and
 *       read back what comes (an echo service returns them), print
 *       "ready N" and hold them idle until SECONDS pass or SIGTERM.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (128 * 1024)

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int usage(void)
{
	fprintf(stderr, "usage: tunnel_io sink|greet ADDR PORT SECONDS | send ADDR PORT MIB "
		"STREAMS SECONDS | banner ADDR PORT | spawn SECONDS PATTERN CMD... | "
		"hold ADDR PORT N SECONDS BYTES\n");
	return 2;
}

static bool make_addr(const char *addr, const char *port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)atoi(port));
	return inet_pton(AF_INET, addr, &sa->sin_addr) == 1;
}

/* A blocking connected socket with 1 s send/receive timeouts, or -1. */
static int dial(const struct sockaddr_in *sa)
{
	struct timeval tv = { .tv_sec = 1 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* sink */

static int sink(const char *addr, const char *port, int seconds)
{
	static char buf[256 * 1024];
	struct sockaddr_in sa;
	struct epoll_event ev = { .events = EPOLLIN }, evs[64];
	int one = 1, lfd, ep;

	if (!make_addr(addr, port, &sa))
		return usage();
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1024) < 0) {
		perror("tunnel_io sink");
		return 1;
	}
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = lfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
	alarm((unsigned int)seconds);
	for (;;) {
		int n = epoll_wait(ep, evs, 64, -1);

		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == lfd) {
				int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

				if (c >= 0) {
					ev.data.fd = c;
					epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev);
				}
				continue;
			}
			for (int k = 0; k < 16; k++) {
				ssize_t r = read(fd, buf, sizeof(buf));

				if (r > 0)
					continue;
				if (r < 0 && (errno == EAGAIN || errno == EINTR))
					break;
				close(fd);	/* EOF or error: epoll forgets it */
				break;
			}
		}
	}
}

/* greet */

static int greet(const char *addr, const char *port, int seconds)
{
	static const char hello[] = "SSH-2.0-bench\r\n";
	struct sockaddr_in sa;
	int one = 1, lfd;

	if (!make_addr(addr, port, &sa))
		return usage();
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 128) < 0) {
		perror("tunnel_io greet");
		return 1;
	}
	alarm((unsigned int)seconds);
	for (;;) {
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (c < 0)
			continue;
		if (write(c, hello, sizeof(hello) - 1) < 0)
			perror("tunnel_io greet");
		close(c);
	}
}

/* send */

struct sender {
	pthread_t th;
	struct sockaddr_in sa;
	uint64_t bytes, deadline_us;
	_Atomic uint64_t sent;
	bool done;
};

static void *send_one(void *arg)
{
	static char buf[CHUNK];
	struct sender *s = arg;
	uint64_t left = s->bytes;
	char drain[4096];
	int fd = dial(&s->sa);

	if (fd < 0)
		return NULL;
	while (left && now_us() < s->deadline_us) {
		ssize_t w = write(fd, buf, left < CHUNK ? (size_t)left : CHUNK);

		if (w < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (w <= 0)
			break;
		left -= (uint64_t)w;
		atomic_fetch_add(&s->sent, (uint64_t)w);
	}
	if (left == 0) {
		shutdown(fd, SHUT_WR);
		while (now_us() < s->deadline_us) {
			ssize_t r = read(fd, drain, sizeof(drain));

			if (r == 0) {
				s->done = true;
				break;
			}
			if (r < 0 && errno != EAGAIN && errno != EINTR)
				break;
		}
	}
	close(fd);
	return NULL;
}

static int send_main(const char *addr, const char *port, int mib, int streams,
		     int seconds)
{
	struct sender *s = calloc((size_t)streams, sizeof(*s));
	uint64_t t0, t1, total = 0;
	bool all_done = true;

	if (!s || streams < 1 || mib < 1)
		return usage();
	t0 = now_us();
	for (int i = 0; i < streams; i++) {
		if (!make_addr(addr, port, &s[i].sa))
			return usage();
		s[i].bytes = ((uint64_t)mib << 20) / (uint64_t)streams;
		s[i].deadline_us = t0 + (uint64_t)seconds * 1000000u;
		pthread_create(&s[i].th, NULL, send_one, &s[i]);
	}
	for (int i = 0; i < streams; i++) {
		pthread_join(s[i].th, NULL);
		total += atomic_load(&s[i].sent);
		all_done &= s[i].done;
	}
	t1 = now_us();
	if (all_done)
		printf("%llu %.3f %.1f\n", (unsigned long long)total, (double)(t1 - t0) / 1e6,
		       (double)total / (double)(t1 - t0));
	else
		printf("%llu %.3f timeout\n", (unsigned long long)total,
		       (double)(t1 - t0) / 1e6);
	free(s);
	return all_done ? 0 : 1;
}

/* banner */

static int banner(const char *addr, const char *port)
{
	struct sockaddr_in sa;
	char buf[512];
	size_t have = 0;
	uint64_t t0;
	int fd;

	if (!make_addr(addr, port, &sa))
		return usage();
	t0 = now_us();
	fd = dial(&sa);
	while (fd >= 0 && have < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);

		if (r <= 0)
			break;
		have += (size_t)r;
		buf[have] = '\0';
		if (strstr(buf, "SSH-2.0-")) {
			printf("%llu\n", (unsigned long long)(now_us() - t0));
			close(fd);
			return 0;
		}
	}
	if (fd >= 0)
		close(fd);
	printf("fail\n");
	return 1;
}

/* spawn */

static void stop_child(pid_t pid)
{
	int status;

	kill(pid, SIGTERM);
	for (int i = 0; i < 200; i++) {	/* 2 s */
		if (waitpid(pid, &status, WNOHANG) == pid)
			return;
		usleep(10000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
}

static int spawn(int seconds, const char *pattern, char **argv)
{
	int in[2], out[2], status;
	char buf[8192];
	size_t have = 0;
	uint64_t t0, deadline, found = 0;
	bool exited = false;
	pid_t pid;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0)
		return 1;
	t0 = now_us();
	deadline = t0 + (uint64_t)seconds * 1000000u;
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(out[1], 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	while (!found && now_us() < deadline) {
		struct pollfd p = { .fd = out[0], .events = POLLIN };
		int ms = (int)((deadline - now_us()) / 1000) + 1;
		ssize_t r;

		if (poll(&p, 1, ms) <= 0)
			continue;
		r = read(out[0], buf + have, sizeof(buf) - 1 - have);
		if (r <= 0) {
			/* EOF: the command closed its output, probably exited. */
			if (!*pattern && waitpid(pid, &status, 0) == pid) {
				exited = true;
				if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
					found = now_us();
			}
			break;
		}
		have += (size_t)r;
		buf[have] = '\0';
		if (*pattern && strstr(buf, pattern))
			found = now_us();
		if (have > sizeof(buf) / 2) {	/* keep a tail for a split pattern */
			memmove(buf, buf + have - 256, 256);
			have = 256;
		}
	}
	close(in[1]);
	close(out[0]);
	if (!exited)
		stop_child(pid);
	if (found)
		printf("%llu\n", (unsigned long long)(found - t0));
	else
		printf("fail\n");
	return found ? 0 : 1;
}

/* hold */

static volatile sig_atomic_t stop_holding;

static void on_term(int sig)
{
	(void)sig;
	stop_holding = 1;
}

static int hold(const char *addr, const char *port, int n, int seconds, long bytes)
{
	static char buf[CHUNK];
	struct sockaddr_in sa;
	uint64_t deadline = now_us() + (uint64_t)seconds * 1000000u;
	int *fds = calloc((size_t)n, sizeof(*fds)), opened = 0;

	if (!fds || !make_addr(addr, port, &sa))
		return usage();
	signal(SIGTERM, on_term);
	for (int i = 0; i < n && !stop_holding && now_us() < deadline; i++) {
		long out = bytes, in = bytes;

		fds[i] = dial(&sa);
		if (fds[i] < 0)
			break;
		opened++;
		/* Write and read back in turns: an echo never backs up. */
		while ((out > 0 || in > 0) && now_us() < deadline && !stop_holding) {
			if (out > 0) {
				ssize_t w = write(fds[i], buf, out < CHUNK ? (size_t)out : CHUNK);

				if (w > 0)
					out -= w;
			}
			if (in > 0) {
				ssize_t r = read(fds[i], buf, sizeof(buf));

				if (r > 0)
					in -= r;
				else if (r == 0)
					in = 0;	/* not an echo: nothing comes back */
			}
		}
	}
	printf("ready %d\n", opened);
	fflush(stdout);
	while (!stop_holding && now_us() < deadline)
		usleep(50000);
	for (int i = 0; i < opened; i++)
		close(fds[i]);
	free(fds);
	return opened == n ? 0 : 1;
}

int main(int argc, char *argv[])
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 5 && !strcmp(argv[1], "sink"))
		return sink(argv[2], argv[3], atoi(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "greet"))
		return greet(argv[2], argv[3], atoi(argv[4]));
	if (argc == 7 && !strcmp(argv[1], "send"))
		return send_main(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]),
				 atoi(argv[6]));
	if (argc == 4 && !strcmp(argv[1], "banner"))
		return banner(argv[2], argv[3]);
	if (argc >= 5 && !strcmp(argv[1], "spawn"))
		return spawn(atoi(argv[2]), argv[3], argv + 4);
	if (argc == 7 && !strcmp(argv[1], "hold"))
		return hold(argv[2], argv[3], atoi(argv[4]), atoi(argv[5]), atol(argv[6]));
	return usage();
}
