/*
 * linkemu: a long, lossy link between two interfaces, in user space (the
 * test kernel has no sch_netem). Every frame that arrives on one is sent
 * out of the other after a delay, unless it is lost; frames keep their
 * order (the jitter never reorders, as on most real paths), and an
 * optional rate with a drop-tail queue makes a bottleneck that can bloat.
 *
 *   linkemu IF_A IF_B DELAY_MS JITTER_MS LOSS_PERMILLE [RATE_KBIT [QUEUE] [SEED]]
 *
 * Each direction on its own: DELAY_MS ± JITTER_MS one way, LOSS_PERMILLE
 * frames in a thousand lost. RATE_KBIT 0 is unlimited; QUEUE (frames,
 * default 1000) bounds what waits for the rate. Runs until SIGTERM or
 * SIGINT, then prints "a>b forwarded N lost N overflow N" per direction.
 * The interfaces' senders must not hand it segmentation-offload frames
 * bigger than the MTU (`ip link set DEV gso_max_segs 1` on the veths).
 * Frames travel with their virtio-net header (PACKET_VNET_HDR), so a
 * checksum the sender left to the device is finished on the way out.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SLOTS 16384
#define FRAME_MAX 2048

struct frame {
	uint64_t due_ns;
	uint16_t len;
	uint8_t data[FRAME_MAX];
};

struct dir {
	int in, out;
	const char *name;
	struct frame *q;
	size_t head, n;			/* ring of SLOTS */
	uint64_t last_due_ns;		/* FIFO: never before the last */
	uint64_t forwarded, lost, overflow;
};

static uint64_t delay_ns, jitter_ns, rate_bps, queue_max = 1000;
static unsigned int loss_permille;
static uint64_t rng = 88172645463325252ull;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t next_random(void)	/* xorshift64 */
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static int open_if(const char *name)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET,
				   .sll_protocol = htons(ETH_P_ALL) };
	int fd = socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
			htons(ETH_P_ALL));
	int one = 1, buf = 16 << 20;

	sll.sll_ifindex = (int)if_nametoindex(name);
	if (fd < 0 || !sll.sll_ifindex ||
	    bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		fprintf(stderr, "linkemu: %s: %s\n", name, strerror(errno));
		exit(1);
	}
	/* our own sends on this interface are not input */
	setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof(one));
	if (setsockopt(fd, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof(one)) < 0) {
		fprintf(stderr, "linkemu: %s: PACKET_VNET_HDR: %s\n", name, strerror(errno));
		exit(1);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf));
	return fd;
}

/* Frames that arrived: lost, queued, or dropped at the tail. */
static void take(struct dir *d, uint64_t now)
{
	for (int i = 0; i < 256; i++) {
		struct frame *f = &d->q[(d->head + d->n) % SLOTS];
		ssize_t n;
		uint64_t due;

		if (d->n == SLOTS) {
			uint8_t junk[FRAME_MAX];

			if (recv(d->in, junk, sizeof(junk), 0) < 0)
				return;
			d->overflow++;
			continue;
		}
		n = recv(d->in, f->data, sizeof(f->data), MSG_TRUNC);
		if (n < 0)
			return;
		if (n > FRAME_MAX || (loss_permille &&
				      next_random() % 1000 < loss_permille)) {
			d->lost += n <= FRAME_MAX;
			d->overflow += n > FRAME_MAX;
			continue;
		}
		if (rate_bps && d->n >= queue_max) {
			d->overflow++;
			continue;
		}
		due = now + delay_ns;
		if (jitter_ns)
			due = due - jitter_ns + next_random() % (2 * jitter_ns + 1);
		/* the rate: each frame leaves its size's time after the last */
		if (rate_bps && d->last_due_ns + (uint64_t)n * 8 * 1000000000ull / rate_bps > due)
			due = d->last_due_ns + (uint64_t)n * 8 * 1000000000ull / rate_bps;
		if (due < d->last_due_ns)
			due = d->last_due_ns;
		d->last_due_ns = due;
		f->due_ns = due;
		f->len = (uint16_t)n;
		d->n++;
	}
}

/* Frames due: out. The next due time, or UINT64_MAX. */
static uint64_t give(struct dir *d, uint64_t now)
{
	while (d->n) {
		struct frame *f = &d->q[d->head];

		if (f->due_ns > now)
			return f->due_ns;
		if (send(d->out, f->data, f->len, 0) < 0 && errno == EAGAIN)
			return now + 100000;	/* the device is busy: soon */
		d->forwarded++;
		d->head = (d->head + 1) % SLOTS;
		d->n--;
	}
	return UINT64_MAX;
}

int main(int argc, char *argv[])
{
	struct dir d[2] = { { .name = "a>b" }, { .name = "b>a" } };
	int a, b;

	if (argc < 6 || argc > 9) {
		fprintf(stderr, "usage: linkemu IF_A IF_B DELAY_MS JITTER_MS "
			"LOSS_PERMILLE [RATE_KBIT [QUEUE] [SEED]]\n");
		return 2;
	}
	delay_ns = strtoull(argv[3], NULL, 10) * 1000000ull;
	jitter_ns = strtoull(argv[4], NULL, 10) * 1000000ull;
	loss_permille = (unsigned int)strtoul(argv[5], NULL, 10);
	if (argc > 6)
		rate_bps = strtoull(argv[6], NULL, 10) * 1000;
	if (argc > 7)
		queue_max = strtoull(argv[7], NULL, 10);
	if (argc > 8)
		rng ^= strtoull(argv[8], NULL, 10) * 0x9e3779b97f4a7c15ull;
	if (jitter_ns > delay_ns || loss_permille > 1000 || queue_max == 0 ||
	    queue_max > SLOTS) {
		fprintf(stderr, "linkemu: jitter above delay, loss above 1000 "
			"or a queue of 0 or over %d\n", SLOTS);
		return 2;
	}
	a = open_if(argv[1]);
	b = open_if(argv[2]);
	d[0].in = a, d[0].out = b;
	d[1].in = b, d[1].out = a;
	for (int i = 0; i < 2; i++)
		if (!(d[i].q = malloc(sizeof(struct frame) * SLOTS)))
			return 1;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	while (!stop) {
		struct pollfd pfd[2] = { { .fd = a, .events = POLLIN },
					 { .fd = b, .events = POLLIN } };
		uint64_t now = now_ns(), next = UINT64_MAX;
		int timeout;

		for (int i = 0; i < 2; i++) {
			uint64_t t = give(&d[i], now);

			if (t < next)
				next = t;
		}
		timeout = next == UINT64_MAX ? 100 :
			  next <= now ? 0 : (int)((next - now + 999999) / 1000000);
		if (timeout > 100)
			timeout = 100;
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR)
			break;
		now = now_ns();
		if (pfd[0].revents & POLLIN)
			take(&d[0], now);
		if (pfd[1].revents & POLLIN)
			take(&d[1], now);
	}
	for (int i = 0; i < 2; i++) {
		printf("%s forwarded %llu lost %llu overflow %llu\n", d[i].name,
		       (unsigned long long)d[i].forwarded,
		       (unsigned long long)d[i].lost,
		       (unsigned long long)d[i].overflow);
		free(d[i].q);
	}
	return 0;
}
