/* Local addresses that go away: rtnetlink's RTM_DELADDR, on a libuv loop. */
#include "addr_watch.h"

#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct addr_watch {
	uv_poll_t poll;
	struct mnl_socket *nl;
	addr_gone_fn *gone;
	void *user;
};

/* The address of an RTM_DELADDR: IFA_LOCAL where it is set (IPv4, and
 * the local end of a point-to-point link), else IFA_ADDRESS. */
static int attr_cb(const struct nlattr *a, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(a);

	if (type == IFA_LOCAL || type == IFA_ADDRESS)
		tb[type] = a;
	return MNL_CB_OK;
}

static bool deladdr_of(const struct nlmsghdr *nlh, struct sockaddr_storage *ss)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_MAX + 1] = { 0 };
	const struct nlattr *a;
	size_t want = ifa->ifa_family == AF_INET ? 4 : 16;

	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return false;
	if (mnl_attr_parse(nlh, sizeof(*ifa), attr_cb, tb) != MNL_CB_OK)
		return false;
	a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!a || mnl_attr_get_payload_len(a) != want)
		return false;
	memset(ss, 0, sizeof(*ss));
	if (ifa->ifa_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;

		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, mnl_attr_get_payload(a), want);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, mnl_attr_get_payload(a), want);
	}
	return true;
}

static int msg_cb(const struct nlmsghdr *nlh, void *data)
{
	struct addr_watch *w = data;
	struct sockaddr_storage ss;

	if (nlh->nlmsg_type == RTM_DELADDR && deladdr_of(nlh, &ss))
		w->gone(w->user, &ss);
	return MNL_CB_OK;
}

static void readable(uv_poll_t *p, int status, int events)
{
	struct addr_watch *w = p->data;
	char buf[MNL_SOCKET_BUFFER_SIZE];
	ssize_t n;

	(void)events;
	if (status < 0)
		return;
	/* Bounded: the socket is non-blocking, and a notification that
	 * arrives meanwhile wakes the poll again. */
	for (int i = 0; i < 16; i++) {
		struct sockaddr_nl from;
		socklen_t len = sizeof(from);

		n = recvfrom(mnl_socket_get_fd(w->nl), buf, sizeof(buf), 0,
			     (struct sockaddr *)&from, &len);
		if (n <= 0)
			return;	/* drained; or ENOBUFS: some were lost */
		/* The kernel's word only: another process may unicast to
		 * our port, and would end tunnels for nothing. */
		if (len == sizeof(from) && from.nl_pid == 0)
			mnl_cb_run(buf, (size_t)n, 0, 0, msg_cb, w);
	}
}

static void closed(uv_handle_t *h);

struct addr_watch *addr_watch_new(uv_loop_t *loop, addr_gone_fn *gone,
				  void *user)
{
	struct addr_watch *w = calloc(1, sizeof(*w));
	int fd;

	if (!w)
		return NULL;
	w->gone = gone;
	w->user = user;
	w->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (!w->nl)
		goto fail;
	if (mnl_socket_bind(w->nl, RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR,
			    MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	fd = mnl_socket_get_fd(w->nl);
	if (uv_poll_init(loop, &w->poll, fd) < 0)
		goto fail;
	w->poll.data = w;
	if (uv_poll_start(&w->poll, UV_READABLE, readable) < 0) {
		addr_watch_close(w);
		return NULL;
	}
	return w;
fail:
	if (w->nl)
		mnl_socket_close(w->nl);
	free(w);
	return NULL;
}

static void closed(uv_handle_t *h)
{
	struct addr_watch *w = h->data;

	mnl_socket_close(w->nl);
	free(w);
}

void addr_watch_close(struct addr_watch *w)
{
	if (w)
		uv_close((uv_handle_t *)&w->poll, closed);
}
