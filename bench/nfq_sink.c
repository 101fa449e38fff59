/*
 * nfq_sink: the ceiling of bench/knock. A bare NFQUEUE consumer that does
 * nothing but DROP what it receives, set up and batched exactly as
 * posternd's daemon/nfqueue.c: the same copy range, queue length, 8 MiB
 * SO_RCVBUFFORCE buffer, NETLINK_NO_ENOBUFS, fail-open off, recvmmsg bursts
 * of 64 messages answered by one NFQNL_MSG_VERDICT_BATCH, and the same
 * poll-then-drain loop (up to 64 bursts per wake-up). It parses each
 * message only as far as the packet id.
 *
 *   nfq_sink [-m MAC1] [-q QMAXLEN] [-b BYTES] QUEUE
 *       runs until SIGTERM/SIGINT, then prints packets=N verdicts=M mac1_ok=K
 *   -m none     the bare consumer (the default: the ceiling)
 *   -m shipped  also, as posternd does, copy each burst's 145-byte payloads
 *               (after the IPv4 and UDP headers), DROP the burst, then
 *               check each mac1 with posternd's knock_check_outer
 *   -m reuse    the same mac1 through one keyed libgcrypt handle kept for
 *               the process's life (reset, setkey, write, read)
 *   -q N        queue length (default 8192, posternd's)
 *   -b BYTES    socket receive buffer (default 8 MiB, posternd's)
 * The -m modes split posternd's per-packet cost into the queue's and the
 * mac1's; bench/knock reports the consumer CPU time per packet of each.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gcrypt.h>

#include "knock.h"

#define COPY_RANGE 256
#define QUEUE_MAXLEN 8192
#define RCVBUF (8 << 20)
#define MSG_BUF (COPY_RANGE + 512)
#define BURST 64

enum mac1_mode { MAC1_NONE, MAC1_SHIPPED, MAC1_REUSE };

static volatile sig_atomic_t stop;
static enum mac1_mode mac1_mode;
static uint8_t mac1_key[HASH_LEN];
static struct keyed_blake2s mac1_ctx;	/* as posternd keeps it */
static gcry_md_hd_t mac1_md;
static uint32_t queue_maxlen = QUEUE_MAXLEN;
static int rcvbuf = RCVBUF;
static uint64_t mac1_ok;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static bool config(struct mnl_socket *nl, uint16_t num, uint32_t portid)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	int n;

	for (int step = 0; step < 2; step++) {
		nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, num);
		nlh->nlmsg_seq = (uint32_t)step + 1;
		nlh->nlmsg_flags |= NLM_F_ACK;
		if (step == 0) {
			nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
		} else {
			nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, COPY_RANGE);
			nfq_nlmsg_cfg_put_qmaxlen(nlh, queue_maxlen);
			mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(0));
			mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN));
		}
		if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
			return false;
		n = (int)mnl_socket_recvfrom(nl, buf, sizeof(buf));
		if (n < 0 || mnl_cb_run(buf, (size_t)n, nlh->nlmsg_seq, portid,
					NULL, NULL) < 0)
			return false;
	}
	return true;
}

static uint8_t bufs[BURST][MSG_BUF];

/* The mac1 of a copied knock. */
static void check_mac1(const uint8_t knock[KNOCK_LEN])
{
	if (mac1_mode == MAC1_SHIPPED) {
		mac1_ok += knock_check_outer(&mac1_ctx, knock, KNOCK_LEN) == KNOCK_OK;
	} else if (knock[0] == KNOCK_VERSION) {
		gcry_md_reset(mac1_md);
		gcry_md_setkey(mac1_md, mac1_key, HASH_LEN);
		gcry_md_write(mac1_md, knock, KNOCK_MAC_OFFSET);
		mac1_ok += equal_ct(gcry_md_read(mac1_md, 0), knock + KNOCK_MAC_OFFSET,
				    KNOCK_MAC_LEN);
	}
}

/* One burst: returns the number of packets, −1 on error. */
static int receive(struct mnl_socket *nl, uint16_t num, uint64_t *verdicts)
{
	struct mmsghdr msgs[BURST];
	struct iovec iov[BURST];
	uint32_t last_id = 0;
	int n, packets = 0, copied = 0;
	/* As posternd: copy the knock-sized payloads (after a 20-byte IPv4
	 * and 8-byte UDP header: what the benchmark sends), DROP the burst,
	 * then check them. */
	static uint8_t copies[BURST][KNOCK_LEN];

	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BURST; i++) {
		iov[i] = (struct iovec){ bufs[i], MSG_BUF };
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	n = recvmmsg(mnl_socket_get_fd(nl), msgs, BURST, MSG_DONTWAIT, NULL);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR || errno == ENOBUFS ? 0 : -1;
	for (int i = 0; i < n; i++) {
		const struct nlmsghdr *nlh = (const void *)bufs[i];
		int len = (int)msgs[i].msg_len;

		for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			struct nlattr *attr[NFQA_MAX + 1] = { 0 };
			struct nfqnl_msg_packet_hdr *ph;

			if (NFNL_MSG_TYPE(nlh->nlmsg_type) != NFQNL_MSG_PACKET ||
			    nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR])
				continue;
			ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
			last_id = ntohl(ph->packet_id);
			packets++;
			if (mac1_mode != MAC1_NONE && attr[NFQA_PAYLOAD] && copied < BURST &&
			    mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]) >= 28 + KNOCK_LEN)
				memcpy(copies[copied++],
				       (const uint8_t *)mnl_attr_get_payload(attr[NFQA_PAYLOAD]) + 28,
				       KNOCK_LEN);
		}
	}
	if (packets) {
		char buf[128];
		struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT_BATCH, num);

		nfq_nlmsg_verdict_put(nlh, (int)last_id, NF_DROP);
		if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
			return -1;
		(*verdicts)++;
	}
	for (int i = 0; i < copied; i++)
		check_mac1(copies[i]);
	return packets;
}

int main(int argc, char *argv[])
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct mnl_socket *nl;
	uint64_t packets = 0, verdicts = 0;
	int one = 1, c;
	uint16_t num;

	while ((c = getopt(argc, argv, "m:q:b:")) != -1) {
		if (c == 'm' && !strcmp(optarg, "none"))
			mac1_mode = MAC1_NONE;
		else if (c == 'm' && !strcmp(optarg, "shipped"))
			mac1_mode = MAC1_SHIPPED;
		else if (c == 'm' && !strcmp(optarg, "reuse"))
			mac1_mode = MAC1_REUSE;
		else if (c == 'q' && atoi(optarg) > 0)
			queue_maxlen = (uint32_t)atoi(optarg);
		else if (c == 'b' && atoi(optarg) > 0)
			rcvbuf = atoi(optarg);
		else
			return fprintf(stderr, "usage: nfq_sink [-m none|shipped|reuse] [-q QMAXLEN] [-b BYTES] QUEUE\n"), 2;
	}
	if (optind + 1 != argc)
		return fprintf(stderr, "usage: nfq_sink [-m none|shipped|reuse] [-q QMAXLEN] [-b BYTES] QUEUE\n"), 2;
	num = (uint16_t)atoi(argv[optind]);
	if (mac1_mode != MAC1_NONE) {
		if (!crypto_init() || gcry_md_open(&mac1_md, GCRY_MD_BLAKE2S_128, 0))
			return fprintf(stderr, "nfq_sink: libgcrypt\n"), 1;
		random_bytes(mac1_key, sizeof(mac1_key));
		if (!keyed_blake2s_init(&mac1_ctx, mac1_key))
			return fprintf(stderr, "nfq_sink: libgcrypt\n"), 1;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0)
		return perror("nfq_sink: netlink"), 1;
	if (setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf,
		       sizeof(rcvbuf)) < 0)
		setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVBUF, &rcvbuf,
			   sizeof(rcvbuf));
	mnl_socket_setsockopt(nl, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	if (!config(nl, num, mnl_socket_get_portid(nl)))
		return perror("nfq_sink: bind queue"), 1;
	while (!stop) {
		struct pollfd pfd = { .fd = mnl_socket_get_fd(nl), .events = POLLIN };

		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		for (int rounds = 0; rounds < 64 && !stop; rounds++) {
			int n = receive(nl, num, &verdicts);

			if (n < 0)
				return perror("nfq_sink: receive"), 1;
			if (n == 0)
				break;
			packets += (uint64_t)n;
		}
	}
	printf("packets=%llu verdicts=%llu mac1_ok=%llu\n", (unsigned long long)packets,
	       (unsigned long long)verdicts, (unsigned long long)mac1_ok);
	mnl_socket_close(nl);
	return 0;
}
