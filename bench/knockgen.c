/*
 * knockgen: the packet generator of bench/knock. It writes whole Ethernet
 * frames to an AF_PACKET socket with sendmmsg, so any IPv4 source address
 * can be used without configuring it (per-source rate limits never apply
 * to a benchmark that spreads its packets over many sources), and it paces
 * to a rate. The same generator drives posternd, the bare NFQUEUE consumer
 * and fwknopd.
 *
 *   knockgen make -s SERVER_PUB -p PSK_FILE -k KEYS -n COUNT -o FILE [-O MS]
 *       Build COUNT valid knocks (145-byte records) into FILE. Client keys
 *       come round-robin from KEYS (one base64 private key per line); knock
 *       i carries the timestamp now + MS + i, so every key's timestamps
 *       strictly increase in the order the knocks are sent.
 *
 *   knockgen send -i IFACE -m DST_MAC -d DST -p PORT -S SRC -N NSRC
 *                 (-g | -f FILE | -F FILE) [-r RATE] [-t SECS] [-c COUNT]
 *                 [-w NETNS | -l NETNS] [-T MS] [-G MS] [-o FILE]
 *       -g       garbage: random 145-byte payloads with the version byte
 *                set, so each costs the receiver its mac1 check
 *       -j PSK_FILE -s SERVER_PUB  with -g: junk with a valid mac1, as
 *                someone who has the PSK (a leaked one) can make: each
 *                costs the receiver a Noise read, past its rate limit
 *       -f FILE  145-byte records (knockgen make); -F FILE: one payload per
 *                line (fwknop's saved SPA packets). Each record is sent once.
 *       Packet i comes from SRC + (i mod NSRC), UDP source port 40000.
 *       -r RATE  packets per second (0: as fast as possible); -t SECS and
 *                -c COUNT bound a garbage run (the first reached ends it).
 *       -w NETNS count mode: watch nf_tables in NETNS (its multicast
 *                group, as `nft monitor` does), send, then wait up to -T ms
 *                for one new set element or rule per packet sent.
 *       -l NETNS latency mode: send one packet, spin on the event socket
 *                for up to -T ms until the new set element or rule that
 *                holds its source address shows up, pause -G ms, repeat;
 *                print percentiles (and every sample to -o FILE).
 *
 * Output is one line of key=value pairs on stdout. Every loop is bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/if_packet.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <libmnl/libmnl.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "keys.h"
#include "knock.h"

#define MAX_PAYLOAD 1024
#define HDR_LEN (14 + 20 + 8)
#define MAX_RECORDS 65536
#define GARBAGE_POOL 4096
#define MAX_BATCH 64
#define SRC_PORT 40000

struct frame {
	uint32_t src;		/* host order */
	uint16_t len;
	uint8_t b[HDR_LEN + MAX_PAYLOAD];
};

struct gen {
	int fd;
	uint8_t src_mac[6], dst_mac[6];
	uint32_t dst, src_base, nsrc;	/* host order */
	uint16_t port;
	struct frame *frames;
	size_t nframes;
};

static int fail(const char *what)
{
	fprintf(stderr, "knockgen: %s\n", what);
	return 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
	struct timespec ts = { .tv_sec = (time_t)t };

	ts.tv_nsec = (long)((t - (double)ts.tv_sec) * 1e9);
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static uint16_t ip_checksum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static void build_frame(const struct gen *g, struct frame *f, uint32_t src,
			const uint8_t *payload, size_t len, uint16_t ip_id)
{
	uint8_t *e = f->b, *ip = e + 14, *udp = ip + 20;
	uint32_t s = htonl(src), d = htonl(g->dst);
	uint16_t v;

	f->src = src;
	f->len = (uint16_t)(HDR_LEN + len);
	memcpy(e, g->dst_mac, 6);
	memcpy(e + 6, g->src_mac, 6);
	e[12] = 0x08;
	e[13] = 0x00;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	v = htons((uint16_t)(20 + 8 + len));
	memcpy(ip + 2, &v, 2);
	v = htons(ip_id);
	memcpy(ip + 4, &v, 2);
	ip[6] = 0x40;		/* DF */
	ip[8] = 64;
	ip[9] = 17;
	memcpy(ip + 12, &s, 4);
	memcpy(ip + 16, &d, 4);
	v = htons(ip_checksum(ip, 20));
	memcpy(ip + 10, &v, 2);
	v = htons(SRC_PORT);
	memcpy(udp, &v, 2);
	v = htons(g->port);
	memcpy(udp + 2, &v, 2);
	v = htons((uint16_t)(8 + len));
	memcpy(udp + 4, &v, 2);
	udp[6] = udp[7] = 0;	/* no checksum (IPv4) */
	memcpy(udp + 8, payload, len);
}

static uint32_t src_of(const struct gen *g, size_t i)
{
	return g->src_base + (uint32_t)(i % g->nsrc);
}

/* mac1_key: NULL for plain garbage, else forge each packet's mac1. */
static bool load_garbage(struct gen *g, const uint8_t *mac1_key)
{
	uint8_t p[KNOCK_LEN];

	g->nframes = GARBAGE_POOL;
	g->frames = calloc(g->nframes, sizeof(*g->frames));
	if (!g->frames)
		return false;
	for (size_t i = 0; i < g->nframes; i++) {
		random_bytes(p, sizeof(p));
		p[0] = KNOCK_VERSION;
		if (mac1_key)
			blake2s_128_keyed(p + KNOCK_MAC_OFFSET, mac1_key, p,
					  KNOCK_MAC_OFFSET);
		build_frame(g, &g->frames[i], src_of(g, i), p, sizeof(p), (uint16_t)i);
	}
	return true;
}

static bool load_file(struct gen *g, const char *path, bool lines)
{
	FILE *f = fopen(path, "rb");
	uint8_t p[MAX_PAYLOAD + 2];
	char line[MAX_PAYLOAD + 2];

	if (!f)
		return false;
	g->frames = calloc(MAX_RECORDS, sizeof(*g->frames));
	if (!g->frames) {
		fclose(f);
		return false;
	}
	g->nframes = 0;
	while (g->nframes < MAX_RECORDS) {
		size_t len;

		if (lines) {
			if (!fgets(line, sizeof(line), f))
				break;
			len = strcspn(line, "\r\n");
			if (len == 0)
				continue;
			memcpy(p, line, len);
		} else {
			if (fread(p, 1, KNOCK_LEN, f) != KNOCK_LEN)
				break;
			len = KNOCK_LEN;
		}
		build_frame(g, &g->frames[g->nframes], src_of(g, g->nframes), p,
			    len, (uint16_t)g->nframes);
		g->nframes++;
	}
	fclose(f);
	return g->nframes > 0;
}

static bool open_packet_socket(struct gen *g, const char *ifname)
{
	struct sockaddr_ll sll = { .sll_family = AF_PACKET };
	struct ifreq ifr = { 0 };
	int one = 1, sndbuf = 4 << 20;

	g->fd = socket(AF_PACKET, SOCK_RAW, 0);	/* protocol 0: send only */
	if (g->fd < 0 || strlen(ifname) >= sizeof(ifr.ifr_name))
		return false;
	strcpy(ifr.ifr_name, ifname);
	if (ioctl(g->fd, SIOCGIFHWADDR, &ifr) < 0)
		return false;
	memcpy(g->src_mac, ifr.ifr_hwaddr.sa_data, 6);
	sll.sll_ifindex = (int)if_nametoindex(ifname);
	sll.sll_protocol = htons(ETH_P_IP);
	if (!sll.sll_ifindex || bind(g->fd, (struct sockaddr *)&sll, sizeof(sll)) < 0)
		return false;
	setsockopt(g->fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one));
	setsockopt(g->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof(sndbuf));
	return true;
}

/* Send frames[first..first+n) (indices wrap); returns how many went out.
 * A full device queue (ENOBUFS) is retried: "sent" counts what the veth
 * really took. */
static size_t send_batch(struct gen *g, size_t first, size_t n, uint64_t *retries)
{
	struct mmsghdr msgs[MAX_BATCH];
	struct iovec iov[MAX_BATCH];
	size_t done = 0;
	int spins = 0;

	for (size_t i = 0; i < n; i++) {
		struct frame *f = &g->frames[(first + i) % g->nframes];

		iov[i] = (struct iovec){ f->b, f->len };
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (done < n && spins < 10000) {
		int r = sendmmsg(g->fd, msgs + done, (unsigned int)(n - done), 0);

		if (r > 0) {
			done += (size_t)r;
			continue;
		}
		if (r < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR)
			break;
		(*retries)++;
		spins++;
		sched_yield();
	}
	return done;
}

/* --- nf_tables events (what `nft monitor` reads) --- */

static struct mnl_socket *monitor_open(const char *netns)
{
	char path[300];
	int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), ns, big = 32 << 20;
	struct mnl_socket *nl = NULL;

	snprintf(path, sizeof(path), "/run/netns/%s", netns);
	ns = open(path, O_RDONLY | O_CLOEXEC);
	if (self < 0 || ns < 0 || setns(ns, CLONE_NEWNET) < 0)
		goto out;
	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (nl && mnl_socket_bind(nl, 1u << (NFNLGRP_NFTABLES - 1), MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(nl);
		nl = NULL;
	}
	if (nl)
		setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	if (setns(self, CLONE_NEWNET) < 0 && nl) {
		mnl_socket_close(nl);
		nl = NULL;
	}
out:
	if (self >= 0)
		close(self);
	if (ns >= 0)
		close(ns);
	return nl;
}

struct events {
	uint64_t opened;	/* NEWSETELEM + NEWRULE */
	uint64_t gens;		/* NEWGEN: committed transactions */
	double first, last;	/* times of the first and last opened */
	uint32_t want;		/* latency mode: source to look for (host order) */
	bool seen;		/* latency mode: an event held it */
	double seen_t;		/* latency mode: when */
	uint64_t overruns;	/* events lost: the socket buffer overran */
};

/*
 * Read what is waiting, without ever sleeping on the socket: a process
 * asleep on it would be woken by each event, and that wake-up (an IPI, a VM
 * exit here) would be paid inside the daemon's nf_tables commit. Callers
 * spin (latency) or sleep on a timer (count mode) between calls.
 */
static int monitor_read(struct mnl_socket *nl, struct events *ev)
{
	static uint8_t buf[1 << 16];
	int got = 0, fd = mnl_socket_get_fd(nl);

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		double t = now_s();
		const struct nlmsghdr *nlh = (const void *)buf;
		int len = (int)n;

		if (n < 0 && errno == ENOBUFS) {
			ev->overruns++;
			continue;
		}
		if (n <= 0)
			break;
		got++;
		for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			unsigned int type = nlh->nlmsg_type & 0xff;
			uint32_t want = htonl(ev->want);
			const uint8_t *pl = mnl_nlmsg_get_payload(nlh);
			size_t pl_len = mnl_nlmsg_get_payload_len(nlh);

			if ((nlh->nlmsg_type >> 8) != NFNL_SUBSYS_NFTABLES)
				continue;
			if (type == NFT_MSG_NEWGEN) {
				ev->gens++;
			} else if (type == NFT_MSG_NEWSETELEM || type == NFT_MSG_NEWRULE) {
				if (!ev->opened++)
					ev->first = t;
				ev->last = t;
				if (ev->want && !ev->seen && memmem(pl, pl_len, &want, 4)) {
					ev->seen = true;
					ev->seen_t = t;
				}
			}
		}
	}
	return got;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double pct(const double *sorted, size_t n, double p)
{
	size_t k = (size_t)(p * (double)n + 0.999999);

	return n ? sorted[(k ? k : 1) - 1] : 0;
}

static int run_latency(struct gen *g, struct mnl_socket *nl, int timeout_ms,
		       int gap_ms, const char *out)
{
	double *lat = calloc(g->nframes, sizeof(*lat));
	size_t n = 0, timeouts = 0;
	uint64_t retries = 0;
	FILE *f = out ? fopen(out, "w") : NULL;
	struct events ev = { 0 };

	if (!lat)
		return fail("out of memory");
	monitor_read(nl, &ev);	/* whatever came before */
	for (size_t i = 0; i < g->nframes; i++) {
		double t0, deadline;

		ev.want = g->frames[i].src;
		ev.seen = false;
		t0 = now_s();
		if (send_batch(g, i, 1, &retries) != 1)
			return fail("send failed");
		deadline = t0 + timeout_ms / 1000.0;
		while (!ev.seen && now_s() < deadline)
			monitor_read(nl, &ev);	/* spin: the time is the measure */
		if (ev.seen) {
			lat[n] = (ev.seen_t - t0) * 1e6;
			if (f)
				fprintf(f, "%.1f\n", lat[n]);
			n++;
		} else {
			timeouts++;
			if (f)
				fprintf(f, "timeout\n");
		}
		if (gap_ms)
			usleep((useconds_t)gap_ms * 1000);
		monitor_read(nl, &ev);
	}
	if (f)
		fclose(f);
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("samples=%zu timeouts=%zu min_us=%.0f p50_us=%.0f p90_us=%.0f "
	       "p99_us=%.0f max_us=%.0f\n", n, timeouts, n ? lat[0] : 0,
	       pct(lat, n, 0.50), pct(lat, n, 0.90), pct(lat, n, 0.99),
	       n ? lat[n - 1] : 0);
	free(lat);
	return 0;
}

static int run_stream(struct gen *g, struct mnl_socket *nl, double rate,
		      double secs, uint64_t count, int timeout_ms)
{
	size_t batch = rate > 0 ? (size_t)(rate / 10000) : MAX_BATCH;
	uint64_t sent = 0, retries = 0;
	struct events ev = { 0 };
	double start, end, deadline;

	if (batch < 1)
		batch = 1;
	if (batch > MAX_BATCH)
		batch = MAX_BATCH;
	if (nl)
		monitor_read(nl, &ev);
	ev = (struct events){ 0 };
	start = now_s();
	for (;;) {
		double t = now_s();
		size_t n = batch;

		if ((secs > 0 && t - start >= secs) || (count && sent >= count))
			break;
		if (count && count - sent < n)
			n = (size_t)(count - sent);
		if (rate > 0) {
			double due = start + (double)(sent + n) / rate;

			if (due > t)
				sleep_until(due);
		}
		size_t done = send_batch(g, (size_t)(sent % g->nframes), n, &retries);
		if (done == 0)
			return fail("send failed");
		sent += done;
		if (nl)
			monitor_read(nl, &ev);
	}
	end = now_s();
	deadline = end + timeout_ms / 1000.0;
	while (nl && ev.opened < sent && now_s() < deadline) {
		monitor_read(nl, &ev);
		sleep_until(now_s() + 0.0002);	/* event times: ±0.2 ms */
	}
	printf("sent=%llu secs=%.3f rate=%.0f retries=%llu",
	       (unsigned long long)sent, end - start,
	       end > start ? (double)sent / (end - start) : 0,
	       (unsigned long long)retries);
	if (nl)
		printf(" opened=%llu gens=%llu overruns=%llu first_s=%.4f last_s=%.4f opened_per_s=%.0f",
		       (unsigned long long)ev.opened, (unsigned long long)ev.gens,
		       (unsigned long long)ev.overruns,
		       ev.opened ? ev.first - start : 0, ev.opened ? ev.last - start : 0,
		       ev.opened ? (double)ev.opened / (ev.last - start) : 0);
	printf("\n");
	return 0;
}

static bool parse_mac(uint8_t mac[6], const char *s)
{
	unsigned int m[6];

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4],
		   &m[5]) != 6)
		return false;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)m[i];
	return true;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int cmd_make(int argc, char *argv[])
{
	const char *server_pub = NULL, *psk_file = NULL, *keys_file = NULL, *out = NULL;
	long long count = 0, offset = 0;
	struct noise_keypair *kps = NULL;
	size_t nkeys = 0, cap = 0;
	uint8_t spub[KEY_LEN], psk[KEY_LEN], pkt[KNOCK_LEN];
	char err[512], line[256];
	uint64_t t0;
	FILE *f, *o;
	int c;

	while ((c = getopt(argc, argv, "s:p:k:n:o:O:")) != -1) {
		switch (c) {
		case 's': server_pub = optarg; break;
		case 'p': psk_file = optarg; break;
		case 'k': keys_file = optarg; break;
		case 'n': count = atoll(optarg); break;
		case 'o': out = optarg; break;
		case 'O': offset = atoll(optarg); break;
		default: return fail("bad make usage");
		}
	}
	if (!server_pub || !psk_file || !keys_file || !out || count <= 0 ||
	    count > MAX_RECORDS)
		return fail("make needs -s -p -k -n (1..65536) -o");
	if (!key_from_base64(spub, server_pub) ||
	    !key_load_secret_file(psk, psk_file, err, sizeof(err)))
		return fail("bad server key or PSK");
	if (!(f = fopen(keys_file, "r")))
		return fail("cannot read the keys file");
	while (fgets(line, sizeof(line), f)) {
		uint8_t priv[KEY_LEN];

		if (!key_from_text(priv, line, strlen(line)))
			continue;
		if (nkeys == cap) {
			cap = cap ? cap * 2 : 64;
			kps = realloc(kps, cap * sizeof(*kps));
			if (!kps)
				return fail("out of memory");
		}
		if (!noise_keypair_init(&kps[nkeys++], priv))
			return fail("bad client key");
	}
	fclose(f);
	if (!nkeys)
		return fail("no keys");
	if (!(o = fopen(out, "wb")))
		return fail("cannot write the output");
	t0 = wall_ms() + (uint64_t)offset;
	for (long long i = 0; i < count; i++) {
		struct knock_payload p = { .timestamp_ms = t0 + (uint64_t)i };

		if (!knock_build(pkt, &kps[(size_t)i % nkeys], spub, psk, &p) ||
		    fwrite(pkt, 1, sizeof(pkt), o) != sizeof(pkt))
			return fail("knock_build or write failed");
	}
	fclose(o);
	printf("made=%lld keys=%zu\n", count, nkeys);
	free(kps);
	return 0;
}

static int cmd_send(int argc, char *argv[])
{
	struct gen g = { .fd = -1, .nsrc = 1 };
	const char *ifname = NULL, *file = NULL, *watch_ns = NULL, *lat_ns = NULL, *out = NULL;
	const char *junk_psk = NULL, *server_pub = NULL;
	uint8_t mac1_key[HASH_LEN], psk[KEY_LEN], pub[KEY_LEN];
	bool garbage = false, lines = false, have_mac = false;
	double rate = 0, secs = 0;
	uint64_t count = 0;
	int timeout_ms = 5000, gap_ms = 5, c;
	struct in_addr a;
	struct mnl_socket *nl = NULL;

	while ((c = getopt(argc, argv, "i:m:d:p:S:N:gj:s:f:F:r:t:c:w:l:T:G:o:")) != -1) {
		switch (c) {
		case 'i': ifname = optarg; break;
		case 'm': have_mac = parse_mac(g.dst_mac, optarg); break;
		case 'd':
			if (inet_pton(AF_INET, optarg, &a) != 1)
				return fail("bad -d");
			g.dst = ntohl(a.s_addr);
			break;
		case 'p': g.port = (uint16_t)atoi(optarg); break;
		case 'S':
			if (inet_pton(AF_INET, optarg, &a) != 1)
				return fail("bad -S");
			g.src_base = ntohl(a.s_addr);
			break;
		case 'N': g.nsrc = (uint32_t)atoi(optarg); break;
		case 'g': garbage = true; break;
		case 'j': junk_psk = optarg; break;
		case 's': server_pub = optarg; break;
		case 'f': file = optarg; lines = false; break;
		case 'F': file = optarg; lines = true; break;
		case 'r': rate = atof(optarg); break;
		case 't': secs = atof(optarg); break;
		case 'c': count = (uint64_t)atoll(optarg); break;
		case 'w': watch_ns = optarg; break;
		case 'l': lat_ns = optarg; break;
		case 'T': timeout_ms = atoi(optarg); break;
		case 'G': gap_ms = atoi(optarg); break;
		case 'o': out = optarg; break;
		default: return fail("bad send usage");
		}
	}
	if (!ifname || !have_mac || !g.dst || !g.port || !g.src_base || !g.nsrc ||
	    garbage == (file != NULL))
		return fail("send needs -i -m -d -p -S and one of -g, -f, -F");
	if (garbage && secs <= 0 && !count)
		return fail("a garbage run needs -t or -c");
	if ((watch_ns || lat_ns) && !(nl = monitor_open(watch_ns ? watch_ns : lat_ns)))
		return fail("cannot watch nf_tables in that namespace");
	if (!open_packet_socket(&g, ifname))
		return fail("cannot open a packet socket on that interface");
	if (junk_psk) {
		char err[256];

		if (!server_pub || !key_from_base64(pub, server_pub) ||
		    !key_load_secret_file(psk, junk_psk, err, sizeof(err)))
			return fail("-j needs a PSK file and -s SERVER_PUB");
		knock_mac1_key(mac1_key, pub, psk);
	}
	if (garbage ? !load_garbage(&g, junk_psk ? mac1_key : NULL) :
		      !load_file(&g, file, lines))
		return fail("cannot load the packets");
	if (!garbage && (!count || count > g.nframes))
		count = g.nframes;
	prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
	c = lat_ns ? run_latency(&g, nl, timeout_ms, gap_ms, out) :
		     run_stream(&g, nl, rate, secs, count, timeout_ms);
	free(g.frames);
	return c;
}

int main(int argc, char *argv[])
{
	if (argc < 2)
		return fail("usage: knockgen make|send [options]");
	crypto_init();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(argv[1], "make"))
		return cmd_make(argc - 1, argv + 1);
	if (!strcmp(argv[1], "send"))
		return cmd_send(argc - 1, argv + 1);
	return fail("usage: knockgen make|send [options]");
}
