/* posternd's NFQUEUE: bind, receive in bursts, batch DROP verdicts. */
#include "nfqueue.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/sock_diag.h>
#include <libmnl/libmnl.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* A knock is 145 bytes behind 8 of UDP and at most 60 of IPv4 header, or
 * 40 of IPv6 header and its extension headers. 512 bytes hold any IPv4
 * knock and an IPv6 one behind up to 319 bytes of extension headers (real
 * knocks carry none); a longer chain is cut by the kernel and the knock is
 * refused as truncated, never verified from a partial copy. */
#define COPY_RANGE 512
/* Under a flood, loss was always the queue overflowing (queue_dropped),
 * never the socket (user_dropped): 8,192 packets held 20–60 ms of flood on
 * a busy machine, 32,768 rode out the stalls (bench/knock). A queued
 * packet costs kernel memory only while posternd is behind. */
#define QUEUE_MAXLEN 32768
#define RCVBUF (16 << 20)
#define MSG_BUF (COPY_RANGE + 512)	/* one packet message with attributes */
/* The kernel's table of bound queues, this namespace's. It is 0440 root:
 * posternd opens it before it drops to its user and re-reads it from the
 * start each time (a seq_file is made anew on every read from 0). */
#define QUEUE_PROC "/proc/net/netfilter/nfnetlink_queue"
#define QUEUE_PROC_MAX 8192	/* room for 150 bound queues */

struct nfqueue {
	struct mnl_socket *nl;
	int proc_fd;			/* QUEUE_PROC, or -1 */
	uint16_t num;
	uint32_t portid;
	uint8_t bufs[NFQUEUE_BURST][MSG_BUF];
};

/* One line of /proc/net/netfilter/nfnetlink_queue (this namespace's). */
struct queue_proc {
	uint32_t portid;
	uint64_t queue_dropped, user_dropped;
};

static bool read_queue_proc(const struct nfqueue *q, struct queue_proc *qp)
{
	unsigned long long qnum, portid, total, mode, range, qd, ud;
	char buf[QUEUE_PROC_MAX], *line, *next;
	ssize_t n;

	if (q->proc_fd < 0)
		return false;
	n = pread(q->proc_fd, buf, sizeof(buf) - 1, 0);
	if (n < 0)
		return false;
	buf[n] = '\0';
	for (line = buf; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (sscanf(line, "%llu %llu %llu %llu %llu %llu %llu", &qnum,
			   &portid, &total, &mode, &range, &qd, &ud) == 7 &&
		    qnum == q->num) {
			qp->portid = (uint32_t)portid;
			qp->queue_dropped = qd;
			qp->user_dropped = ud;
			return true;
		}
	}
	return false;
}

static bool send_config(struct nfqueue *q, struct nlmsghdr *nlh, char *err,
			size_t err_len, const char *what)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	uint32_t seq = nlh->nlmsg_seq;
	int n;

	nlh->nlmsg_flags |= NLM_F_ACK;
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0) {
		snprintf(err, err_len, "queue %u: %s: %s", q->num, what, strerror(errno));
		return false;
	}
	n = mnl_socket_recvfrom(q->nl, buf, sizeof(buf));
	if (n < 0 || mnl_cb_run(buf, (size_t)n, seq, q->portid, NULL, NULL) < 0) {
		struct queue_proc qp;

		/* The kernel says EPERM both when we lack CAP_NET_ADMIN and
		 * when another socket owns the queue: tell them apart. */
		if (errno == EPERM && read_queue_proc(q, &qp) &&
		    qp.portid != q->portid)
			snprintf(err, err_len, "queue %u is already bound by another "
				 "process (netlink port %u); stop it "
				 "or choose another knock.queue", q->num, qp.portid);
		else if (errno == EPERM)
			snprintf(err, err_len, "queue %u: %s: %s (posternd needs "
				 "CAP_NET_ADMIN)", q->num, what, strerror(errno));
		else
			snprintf(err, err_len, "queue %u: %s: %s", q->num, what,
				 strerror(errno));
		return false;
	}
	return true;
}

static bool configure(struct nfqueue *q, char *err, size_t err_len)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	struct nlmsghdr *nlh;
	uint32_t seq = 1;

	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->num);
	nlh->nlmsg_seq = seq++;
	nfq_nlmsg_cfg_put_cmd(nlh, AF_UNSPEC, NFQNL_CFG_CMD_BIND);
	if (!send_config(q, nlh, err, err_len, "bind"))
		return false;

	nlh = nfq_nlmsg_put(buf, NFQNL_MSG_CONFIG, q->num);
	nlh->nlmsg_seq = seq++;
	nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, COPY_RANGE);
	nfq_nlmsg_cfg_put_qmaxlen(nlh, QUEUE_MAXLEN);
	/* Fail-open stays off: with it, the kernel lets packets past a full
	 * queue into the UDP stack. Clearing it explicitly overrides
	 * whatever a previous binder left. */
	mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(0));
	mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_FAIL_OPEN));
	return send_config(q, nlh, err, err_len, "set parameters");
}

struct nfqueue *nfqueue_open(uint16_t num, char *err, size_t err_len)
{
	struct nfqueue *q = calloc(1, sizeof(*q));
	int rcvbuf = RCVBUF, one = 1;

	if (!q) {
		snprintf(err, err_len, "out of memory");
		return NULL;
	}
	q->num = num;
	q->proc_fd = open(QUEUE_PROC, O_RDONLY | O_CLOEXEC);
	q->nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!q->nl || mnl_socket_bind(q->nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		snprintf(err, err_len, "netfilter netlink socket: %s", strerror(errno));
		nfqueue_close(q);
		return NULL;
	}
	q->portid = mnl_socket_get_portid(q->nl);
	/* A large buffer absorbs bursts; SO_RCVBUFFORCE passes rmem_max with
	 * CAP_NET_ADMIN, which posternd has anyway. */
	if (setsockopt(mnl_socket_get_fd(q->nl), SOL_SOCKET, SO_RCVBUFFORCE,
		       &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(mnl_socket_get_fd(q->nl), SOL_SOCKET, SO_RCVBUF,
			   &rcvbuf, sizeof(rcvbuf));
	/* Under overload the kernel drops and counts (user_dropped) instead
	 * of failing our recv with ENOBUFS; we read its counter. */
	mnl_socket_setsockopt(q->nl, NETLINK_NO_ENOBUFS, &one, sizeof(one));
	if (!configure(q, err, err_len)) {
		nfqueue_close(q);
		return NULL;
	}
	return q;
}

void nfqueue_close(struct nfqueue *q)
{
	if (!q)
		return;
	if (q->nl)
		mnl_socket_close(q->nl);	/* the kernel unbinds the queue */
	if (q->proc_fd >= 0)
		close(q->proc_fd);
	free(q);
}

int nfqueue_fd(const struct nfqueue *q)
{
	return mnl_socket_get_fd(q->nl);
}

bool nfqueue_fill_packet(struct knock_packet *k, const uint8_t *pkt,
			 size_t len, size_t orig_len, struct nfqueue_stats *st)
{
	struct udp_datagram d;

	/* Every byte of k is written: a burst slot never carries what an
	 * earlier packet left in it. */
	memset(k, 0, sizeof(*k));
	switch (ip_udp_parse(&d, pkt, len, orig_len)) {
	case IP_UDP_OK:
		break;
	case IP_UDP_BAD_SOURCE:
		st->bad_source++;
		return false;
	case IP_UDP_MALFORMED:
		st->not_udp++;
		return false;
	}
	k->src = d.src;
	k->len = d.payload_len;
	k->captured = d.captured;
	memcpy(k->data, d.payload, d.captured < KNOCK_LEN ? d.captured : KNOCK_LEN);
	return true;
}

/* The id of one queued packet, and what posternd needs of it in k;
 * *filled says whether k holds a datagram. False if nlh is not a packet. */
static bool read_packet(const struct nlmsghdr *nlh, struct knock_packet *k,
			bool *filled, uint32_t *id, struct nfqueue_stats *st)
{
	struct nlattr *attr[NFQA_MAX + 1] = { 0 };
	struct nfqnl_msg_packet_hdr *ph;
	size_t orig = 0;

	if (NFNL_MSG_TYPE(nlh->nlmsg_type) != NFQNL_MSG_PACKET ||
	    nfq_nlmsg_parse(nlh, attr) < 0 || !attr[NFQA_PACKET_HDR])
		return false;
	ph = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
	*id = ntohl(ph->packet_id);
	st->packets++;
	if (attr[NFQA_CAP_LEN])
		orig = ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN]));
	if (!attr[NFQA_PAYLOAD]) {
		st->not_udp++;
		*filled = false;
		return true;
	}
	*filled = nfqueue_fill_packet(k, mnl_attr_get_payload(attr[NFQA_PAYLOAD]),
				      mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]),
				      orig, st);
	return true;
}

static bool send_verdict(struct nfqueue *q, uint32_t last_id, char *err,
			 size_t err_len)
{
	char buf[128];
	struct nlmsghdr *nlh = nfq_nlmsg_put(buf, NFQNL_MSG_VERDICT_BATCH, q->num);

	/* One message drops every packet with an id up to last_id. */
	nfq_nlmsg_verdict_put(nlh, (int)last_id, NF_DROP);
	if (mnl_socket_sendto(q->nl, nlh, nlh->nlmsg_len) < 0) {
		snprintf(err, err_len, "queue %u: verdict: %s", q->num, strerror(errno));
		return false;
	}
	return true;
}

int nfqueue_receive(struct nfqueue *q, struct knock_packet out[NFQUEUE_BURST],
		    struct nfqueue_stats *st, char *err, size_t err_len)
{
	struct mmsghdr msgs[NFQUEUE_BURST];
	struct iovec iov[NFQUEUE_BURST];
	uint32_t last_id = 0, id = 0;
	bool any = false;
	int n, copied = 0;

	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < NFQUEUE_BURST; i++) {
		iov[i] = (struct iovec){ q->bufs[i], MSG_BUF };
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	n = recvmmsg(nfqueue_fd(q), msgs, NFQUEUE_BURST, MSG_DONTWAIT, NULL);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		if (errno == ENOBUFS) {
			st->enobufs++;
			return 0;
		}
		snprintf(err, err_len, "queue %u: receive: %s", q->num, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		const struct nlmsghdr *nlh = (const void *)q->bufs[i];
		int len = (int)msgs[i].msg_len;

		for (; mnl_nlmsg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
			struct knock_packet spare;
			struct knock_packet *k = copied < NFQUEUE_BURST ? &out[copied] : &spare;
			bool filled = false;

			if (!read_packet(nlh, k, &filled, &id, st))
				continue;
			/* Ids rise in the order packets are queued; the
			 * last one covers them all, even across a wrap. */
			last_id = id;
			any = true;
			if (filled && k != &spare)
				copied++;
		}
	}
	if (any && !send_verdict(q, last_id, err, err_len))
		return -1;
	return copied;
}

bool nfqueue_kernel_drops(const struct nfqueue *q, uint64_t *queue_dropped,
			  uint64_t *user_dropped)
{
	uint32_t mem[SK_MEMINFO_VARS] = { 0 };
	socklen_t len = sizeof(mem);
	struct queue_proc qp;

	if (read_queue_proc(q, &qp)) {
		*queue_dropped = qp.queue_dropped;
		*user_dropped = qp.user_dropped;
		return true;
	}
	/* The socket's own count of what it had no room for: the same
	 * number as user_dropped, readable without /proc. */
	*queue_dropped = 0;
	*user_dropped = 0;
	if (getsockopt(nfqueue_fd(q), SOL_SOCKET, SO_MEMINFO, mem, &len) == 0 &&
	    len > SK_MEMINFO_DROPS * sizeof(mem[0]))
		*user_dropped = mem[SK_MEMINFO_DROPS];
	return false;
}
