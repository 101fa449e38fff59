/*
 * Test tool: a scripted tunnel client, to drive postern-tunneld's limits.
 *
 *   tunnel_peer -k KEY -s SERVER_PUB -p PSK HOST PORT MODE ARGS...
 *
 *   replay N SECONDS       one message 1, sent as it is on N connections
 *                          (a replay), nothing after it. Prints "answered
 *                          A closed C": how many got message 2, and how
 *                          many the server then closed within SECONDS.
 *   streams N DPORT SECONDS [noread]
 *                          one tunnel, N streams opened to DPORT, run for
 *                          SECONDS. Prints "ok X reset Y other Z bytes B".
 *                          noread: never hand back window credit.
 *   seq N DPORT            one tunnel, N streams to DPORT one after
 *                          another: each opened, its status byte awaited
 *                          (5 s at most), then closed. Prints "ok X failed
 *                          Y reset Z other W": status ok, an error
 *                          status, reset, no answer.
 *   push N DPORT SECONDS   one tunnel, N streams to DPORT, each written to
 *                          as fast as its window allows, for SECONDS.
 *                          Prints "pushed B".
 *   garbage noise|yamux    one tunnel, then a protocol break: "noise"
 *                          sends bytes that are not a Noise message,
 *                          "yamux" a valid Noise message holding a
 *                          malformed yamux frame. Prints "closed" (exit
 *                          0) when the server drops the connection
 *                          within 5 s, else "still open" (exit 1).
 *   syn SECONDS            one tunnel, one stream opened without its open
 *                          request. Prints "reset" if the server resets it
 *                          within SECONDS, else "open".
 *
 * Every mode prints "up" once its tunnel (if any) is established.
 */
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bytes.h"
#include "keys.h"
#include "session.h"
#include "tunnel.h"

#define MAX_STREAMS 4096

struct peer {
	int fd;
	struct session *s;
	bool noread, ended;
	bool got_status[MAX_STREAMS], reset[MAX_STREAMS];
	uint8_t status[MAX_STREAMS];
	uint64_t bytes;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int die(const char *what)
{
	fprintf(stderr, "tunnel_peer: %s\n", what);
	return 1;
}

static bool read_full(int fd, uint8_t *p, size_t n)
{
	while (n) {
		ssize_t r = read(fd, p, n);

		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

static bool write_full(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

static int dial(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
	int fd;

	if (getaddrinfo(host, port, &hints, &res) != 0)
		return -1;
	fd = socket(res->ai_family, SOCK_STREAM, 0);
	if (fd >= 0 && connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

static size_t slot(uint32_t id)
{
	return (id / 2) % MAX_STREAMS;
}

static void on_data(void *user, uint32_t id, const uint8_t *p, size_t n)
{
	struct peer *pr = user;
	size_t i = slot(id);

	if (!pr->got_status[i] && n > 0) {
		pr->got_status[i] = true;
		pr->status[i] = p[0];
	}
	pr->bytes += n;
	if (!pr->noread)
		yamux_consumed(pr->s->mux, id, n, now_ms());
}

static void on_reset(void *user, uint32_t id)
{
	((struct peer *)user)->reset[slot(id)] = true;
}

static const struct yamux_events events = {
	.on_data = on_data,
	.on_reset = on_reset,
};

static void flush(struct peer *pr)
{
	static uint8_t buf[1 << 18];

	while (!pr->ended && session_output_pending(pr->s)) {
		size_t n = session_output(pr->s, buf, sizeof(buf));

		if (n == 0 || !write_full(pr->fd, buf, n))
			pr->ended = true;
	}
}

/* Run the session for ms: answer what comes, send what is queued. */
static void pump(struct peer *pr, uint64_t ms)
{
	static uint8_t buf[65536];
	uint64_t end = now_ms() + ms;

	while (!pr->ended && now_ms() < end) {
		struct pollfd p = { .fd = pr->fd, .events = POLLIN };
		ssize_t r;

		yamux_tick(pr->s->mux, now_ms());
		flush(pr);
		if (poll(&p, 1, 50) <= 0)
			continue;
		r = read(pr->fd, buf, sizeof(buf));
		if (r <= 0 || session_input(pr->s, buf, (size_t)r, now_ms()) != SESSION_OK)
			pr->ended = true;
	}
	flush(pr);
}

static bool tunnel_up(struct peer *pr, const char *host, const char *port,
		      const struct noise_keypair *kp, const uint8_t *pub,
		      const uint8_t *psk)
{
	struct yamux_config cfg = yamux_config_default(true);
	struct tunnel_handshake hs;
	struct tunnel_transport t;
	struct tunnel_server_hello hello;
	uint8_t buf[4096];
	size_t n = sizeof(buf), len;

	pr->fd = dial(host, port);
	if (pr->fd < 0 || tunnel_client_init(&hs, kp, pub, psk) != TUNNEL_OK ||
	    tunnel_client_start(&hs, buf, &n) != TUNNEL_OK ||
	    !write_full(pr->fd, buf, n) || !read_full(pr->fd, buf, 2))
		return false;
	len = get_be16(buf);
	if (len > sizeof(buf) || !read_full(pr->fd, buf, len) ||
	    tunnel_client_finish(&hs, buf, len, &hello, &t) != TUNNEL_OK)
		return false;
	pr->s = session_new(&t, &cfg, &events, pr);
	return pr->s != NULL;
}

static int replay(const char *host, const char *port, const uint8_t *msg1,
		  size_t len, int n, int seconds)
{
	static int fds[MAX_STREAMS];
	static bool got[MAX_STREAMS];
	int answered = 0, closed = 0;
	uint64_t end = now_ms() + (uint64_t)seconds * 1000;

	if (n < 1 || n > MAX_STREAMS)
		return die("replay: 1 to 4096 connections");
	for (int i = 0; i < n; i++) {
		fds[i] = dial(host, port);
		if (fds[i] < 0 || !write_full(fds[i], msg1, len))
			return die("connect");
	}
	while (closed < n && now_ms() < end) {
		for (int i = 0; i < n; i++) {
			struct pollfd p = { .fd = fds[i], .events = POLLIN };
			uint8_t buf[4096];
			ssize_t r;

			if (fds[i] < 0 || poll(&p, 1, 0) <= 0)
				continue;
			r = read(fds[i], buf, sizeof(buf));
			if (r > 0 && !got[i]) {
				got[i] = true;
				answered++;
			} else if (r <= 0) {
				close(fds[i]);
				fds[i] = -1;
				closed++;
			}
		}
		usleep(20000);
	}
	printf("answered %d closed %d\n", answered, closed);
	return 0;
}

static int streams(struct peer *pr, int n, uint16_t dport, int seconds)
{
	uint8_t req[TUNNEL_REQUEST_LEN];
	int ok = 0, reset = 0, other = 0;

	tunnel_request_encode(req, dport);
	for (int i = 0; i < n && i < MAX_STREAMS; i++) {
		uint32_t id = yamux_open(pr->s->mux);

		if (!id || yamux_write(pr->s->mux, id, req, sizeof(req)) != sizeof(req))
			return die("cannot open a stream");
		/* Not all at once: yamux's pending-open cap is 256. */
		if (i % 128 == 127)
			pump(pr, 200);
	}
	pump(pr, (uint64_t)seconds * 1000);
	for (int i = 0; i < n && i < MAX_STREAMS; i++) {
		size_t k = slot(2 * (uint32_t)i + 1);

		if (pr->reset[k])
			reset++;
		else if (pr->got_status[k] && pr->status[k] == TUNNEL_STATUS_OK)
			ok++;
		else
			other++;
	}
	printf("ok %d reset %d other %d bytes %llu%s\n", ok, reset, other,
	       (unsigned long long)pr->bytes, pr->ended ? " ended" : "");
	return 0;
}

static int sequence(struct peer *pr, int n, uint16_t dport)
{
	uint8_t req[TUNNEL_REQUEST_LEN];
	int ok = 0, failed = 0, reset = 0, other = 0;

	tunnel_request_encode(req, dport);
	for (int i = 0; i < n && !pr->ended; i++) {
		uint32_t id = yamux_open(pr->s->mux);
		uint64_t end = now_ms() + 5000;
		size_t k = slot(id);

		if (!id || yamux_write(pr->s->mux, id, req, sizeof(req)) != sizeof(req))
			return die("cannot open a stream");
		pr->got_status[k] = pr->reset[k] = false;
		while (!pr->ended && !pr->got_status[k] && !pr->reset[k] && now_ms() < end)
			pump(pr, 1);
		if (pr->reset[k])
			reset++;
		else if (!pr->got_status[k])
			other++;
		else if (pr->status[k] == TUNNEL_STATUS_OK)
			ok++;
		else
			failed++;
		yamux_close(pr->s->mux, id);
	}
	pump(pr, 200);	/* the last FIN goes out */
	printf("ok %d failed %d reset %d other %d%s\n", ok, failed, reset, other,
	       pr->ended ? " ended" : "");
	return 0;
}

static int push(struct peer *pr, int n, uint16_t dport, int seconds)
{
	static uint8_t chunk[16384];
	uint8_t req[TUNNEL_REQUEST_LEN];
	uint32_t ids[MAX_STREAMS];
	uint64_t end = now_ms() + (uint64_t)seconds * 1000, pushed = 0;

	tunnel_request_encode(req, dport);
	for (int i = 0; i < n && i < MAX_STREAMS; i++) {
		ids[i] = yamux_open(pr->s->mux);
		if (!ids[i] || yamux_write(pr->s->mux, ids[i], req, sizeof(req)) != sizeof(req))
			return die("cannot open a stream");
		if (i % 128 == 127)
			pump(pr, 200);
	}
	while (!pr->ended && now_ms() < end) {
		for (int i = 0; i < n && i < MAX_STREAMS; i++)
			while (yamux_writable(pr->s->mux, ids[i]) > 0)
				pushed += yamux_write(pr->s->mux, ids[i], chunk, sizeof(chunk));
		pump(pr, 100);
	}
	printf("pushed %llu%s\n", (unsigned long long)pushed, pr->ended ? " ended" : "");
	return 0;
}

static int garbage(struct peer *pr, const char *what)
{
	uint8_t buf[1024];
	size_t n;

	if (!strcmp(what, "noise")) {
		random_bytes(buf, 1000);
		buf[0] = 0x03;	/* a plausible length */
		buf[1] = 0xe6;
		n = 1000;
	} else {
		uint8_t frame[12] = { 0x07, 0x00 };	/* yamux version 7 */

		tunnel_seal(&pr->s->transport, frame, sizeof(frame), buf);
		n = sizeof(frame) + TUNNEL_OVERHEAD;
	}
	if (!write_full(pr->fd, buf, n))
		return die("write");
	/* EOF (a go-away may come first) within 5 s. */
	for (int i = 0; i < 50; i++) {
		struct pollfd p = { .fd = pr->fd, .events = POLLIN };

		if (poll(&p, 1, 100) > 0 && read(pr->fd, buf, sizeof(buf)) <= 0) {
			printf("closed\n");
			return 0;
		}
	}
	printf("still open\n");
	return 1;
}

static int syn_only(struct peer *pr, int seconds)
{
	uint32_t id = yamux_open(pr->s->mux);
	uint64_t end = now_ms() + (uint64_t)seconds * 1000;

	if (!id)
		return die("cannot open a stream");
	while (!pr->ended && !pr->reset[slot(id)] && now_ms() < end)
		pump(pr, 100);
	printf("%s\n", pr->reset[slot(id)] ? "reset" : "open");
	return 0;
}

int main(int argc, char *argv[])
{
	const char *key_file = NULL, *server_pub = NULL, *psk_file = NULL;
	uint8_t priv[KEY_LEN], pub[KEY_LEN], psk[KEY_LEN], msg1[256];
	struct noise_keypair kp;
	struct tunnel_handshake hs;
	static struct peer peer;
	struct peer *pr = &peer;
	char err[512];
	const char *host, *port, *mode;
	size_t n = sizeof(msg1);
	int c, rc;

	while ((c = getopt(argc, argv, "k:s:p:")) != -1) {
		switch (c) {
		case 'k': key_file = optarg; break;
		case 's': server_pub = optarg; break;
		case 'p': psk_file = optarg; break;
		default: return die("bad usage");
		}
	}
	if (optind + 3 > argc || !key_file || !server_pub || !psk_file)
		return die("usage: tunnel_peer -k KEY -s PUB -p PSK HOST PORT MODE ARGS...");
	host = argv[optind];
	port = argv[optind + 1];
	mode = argv[optind + 2];
	argv += optind + 3;
	argc -= optind + 3;
	crypto_init();
	if (!key_load_secret_file(priv, key_file, err, sizeof(err)) ||
	    !key_load_secret_file(psk, psk_file, err, sizeof(err)))
		return die(err);
	if (!key_from_base64(pub, server_pub) || !noise_keypair_init(&kp, priv))
		return die("bad key");
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(mode, "replay") && argc == 2) {
		if (tunnel_client_init(&hs, &kp, pub, psk) != TUNNEL_OK ||
		    tunnel_client_start(&hs, msg1, &n) != TUNNEL_OK)
			return die("message 1");
		tunnel_handshake_free(&hs);
		return replay(host, port, msg1, n, atoi(argv[0]), atoi(argv[1]));
	}
	if (!tunnel_up(pr, host, port, &kp, pub, psk)) {
		if (pr->fd >= 0)
			close(pr->fd);
		return die("handshake failed");
	}
	printf("up\n");
	if (!strcmp(mode, "streams") && (argc == 3 || argc == 4)) {
		pr->noread = argc == 4 && !strcmp(argv[3], "noread");
		rc = streams(pr, atoi(argv[0]), (uint16_t)atoi(argv[1]), atoi(argv[2]));
	} else if (!strcmp(mode, "seq") && argc == 2) {
		rc = sequence(pr, atoi(argv[0]), (uint16_t)atoi(argv[1]));
	} else if (!strcmp(mode, "push") && argc == 3) {
		rc = push(pr, atoi(argv[0]), (uint16_t)atoi(argv[1]), atoi(argv[2]));
	} else if (!strcmp(mode, "garbage") && argc == 1) {
		rc = garbage(pr, argv[0]);
	} else if (!strcmp(mode, "syn") && argc == 1) {
		rc = syn_only(pr, atoi(argv[0]));
	} else {
		rc = die("unknown mode or arguments");
	}
	session_free(pr->s);
	close(pr->fd);
	return rc;
}
