/*
 * postern pipe NAME PORT
 *
 * Joins standard input and output to one stream to PORT on the server's
 * loopback, as ssh's ProxyCommand wants (ProxyCommand='postern pipe %n
 * 22'). Half-close both ways: the end of standard input sends a FIN, and
 * the server's FIN closes standard output. Exit status 0 when the stream
 * ended that way on both sides.
 *
 * libuv streams need descriptors epoll accepts: pipes, sockets, ttys. A
 * regular file or a device such as /dev/null is bridged: a socketpair
 * stands in for it, and a pump copies between the two with uv_fs calls.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "context.h"
#include "pool.h"

#define BRIDGE_BUF 65536

struct bridge {
	uv_pipe_t near;			/* the relay's end */
	uv_pipe_t far;			/* the pump's end */
	uv_fs_t fs;
	uv_write_t wreq;
	uv_shutdown_t sreq;
	int fd;
	const char *what;		/* "standard input", for messages */
	int *status;
	size_t len, off;
	char buf[BRIDGE_BUF];
};

union local_handle {
	uv_pipe_t pipe;
	uv_tty_t tty;
};

struct pipe_run {
	uv_loop_t loop;
	struct pool *pool;
	struct pool_stream *ps;
	union local_handle hin, hout;
	struct bridge *bin, *bout;
	uv_stream_t *in, *out;		/* what the relay uses */
	int status;
};

/* The pump. */

static void bridge_fail(struct bridge *b, const char *op, int err)
{
	fprintf(stderr, "%s: %s %s: %s\n", PROG_NAME, op, b->what, uv_strerror(err));
	*b->status = EXIT_FAIL;
}

static void bridge_close_far(struct bridge *b)
{
	if (!uv_is_closing((uv_handle_t *)&b->far))
		uv_close((uv_handle_t *)&b->far, NULL);
}

static void file_read(struct bridge *b);

static void far_written(uv_write_t *req, int status)
{
	struct bridge *b = req->data;

	/* A failure means the relay closed its end: nothing more is wanted. */
	if (status < 0)
		bridge_close_far(b);
	else
		file_read(b);
}

static void far_shut(uv_shutdown_t *req, int status)
{
	(void)status;
	bridge_close_far(req->data);
}

static void file_read_done(uv_fs_t *req)
{
	struct bridge *b = req->data;
	ssize_t n = req->result;
	uv_buf_t buf;

	uv_fs_req_cleanup(req);
	if (n < 0) {
		bridge_fail(b, "reading", (int)n);
		bridge_close_far(b);
	} else if (n == 0) {
		b->sreq.data = b;
		if (uv_shutdown(&b->sreq, (uv_stream_t *)&b->far, far_shut) < 0)
			bridge_close_far(b);
	} else {
		buf = uv_buf_init(b->buf, (unsigned int)n);
		b->wreq.data = b;
		if (uv_write(&b->wreq, (uv_stream_t *)&b->far, &buf, 1, far_written) < 0)
			bridge_close_far(b);
	}
}

/* One buffer at a time: the next read waits for the write before. */
static void file_read(struct bridge *b)
{
	uv_buf_t buf = uv_buf_init(b->buf, sizeof(b->buf));
	int rc;

	b->fs.data = b;
	rc = uv_fs_read(b->far.loop, &b->fs, b->fd, &buf, 1, -1, file_read_done);
	if (rc < 0) {
		bridge_fail(b, "reading", rc);
		bridge_close_far(b);
	}
}

static void far_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf);

static void file_write_done(uv_fs_t *req);

static void file_write(struct bridge *b)
{
	uv_buf_t buf = uv_buf_init(b->buf + b->off, (unsigned int)(b->len - b->off));
	int rc;

	b->fs.data = b;
	rc = uv_fs_write(b->far.loop, &b->fs, b->fd, &buf, 1, -1, file_write_done);
	if (rc < 0) {
		bridge_fail(b, "writing", rc);
		bridge_close_far(b);
	}
}

static void far_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct bridge *b = h->data;

	(void)hint;
	*buf = uv_buf_init(b->buf, sizeof(b->buf));
}

static void file_write_done(uv_fs_t *req)
{
	struct bridge *b = req->data;
	ssize_t n = req->result;

	uv_fs_req_cleanup(req);
	if (n < 0) {
		/* Closing far makes the relay's writes fail: the stream resets. */
		bridge_fail(b, "writing", (int)n);
		bridge_close_far(b);
		return;
	}
	b->off += (size_t)n;
	if (b->off < b->len)
		file_write(b);
	else
		uv_read_start((uv_stream_t *)&b->far, far_alloc, far_read);
}

static void far_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
	struct bridge *b = st->data;

	(void)buf;
	if (n == 0)
		return;
	if (n < 0) {
		bridge_close_far(b);	/* EOF: the relay is done writing */
		return;
	}
	uv_read_stop(st);
	b->len = (size_t)n;
	b->off = 0;
	file_write(b);
}

/* A socketpair standing in for fd; the pump starts at once. */
static int bridge_open(uv_loop_t *loop, int fd, bool readable, const char *what,
		       int *status, struct bridge **out)
{
	struct bridge *b = calloc(1, sizeof(*b));
	int sv[2], rc;

	if (!b)
		return UV_ENOMEM;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		rc = -errno;
		free(b);
		return rc;
	}
	b->fd = fd;
	b->what = what;
	b->status = status;
	uv_pipe_init(loop, &b->near, 0);
	uv_pipe_init(loop, &b->far, 0);
	b->far.data = b;
	uv_pipe_open(&b->near, sv[0]);
	uv_pipe_open(&b->far, sv[1]);
	*out = b;
	if (readable)
		file_read(b);
	else
		uv_read_start((uv_stream_t *)&b->far, far_alloc, far_read);
	return 0;
}

/* Standard input or output as a libuv stream. */
static int open_local(struct pipe_run *r, int fd, bool readable,
		      union local_handle *h, struct bridge **b, uv_stream_t **st)
{
	const char *what = readable ? "standard input" : "standard output";
	struct stat sb;
	int rc;

	if (fstat(fd, &sb) < 0)
		return -errno;
	if (isatty(fd)) {
		rc = uv_tty_init(&r->loop, &h->tty, fd, readable);
		if (rc == 0)
			*st = (uv_stream_t *)&h->tty;
		return rc;
	}
	if (S_ISFIFO(sb.st_mode) || S_ISSOCK(sb.st_mode)) {
		uv_pipe_init(&r->loop, &h->pipe, 0);
		*st = (uv_stream_t *)&h->pipe;
		return uv_pipe_open(&h->pipe, fd);
	}
	rc = bridge_open(&r->loop, fd, readable, what, &r->status, b);
	if (rc == 0)
		*st = (uv_stream_t *)&(*b)->near;
	return rc;
}

/* One socket on both descriptors (inetd style) needs one handle: two
 * would watch the same descriptor. */
static bool same_socket(int a, int b)
{
	struct stat sa, sb;

	return fstat(a, &sa) == 0 && fstat(b, &sb) == 0 && S_ISSOCK(sa.st_mode) &&
	       sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

static bool open_stdio(struct pipe_run *r)
{
	int rc;

	rc = open_local(r, STDIN_FILENO, true, &r->hin, &r->bin, &r->in);
	if (rc < 0) {
		fprintf(stderr, "%s: standard input: %s\n", PROG_NAME, uv_strerror(rc));
		return false;
	}
	if (same_socket(STDIN_FILENO, STDOUT_FILENO)) {
		r->out = r->in;
		return true;
	}
	rc = open_local(r, STDOUT_FILENO, false, &r->hout, &r->bout, &r->out);
	if (rc < 0) {
		fprintf(stderr, "%s: standard output: %s\n", PROG_NAME, uv_strerror(rc));
		return false;
	}
	return true;
}

static void close_handle(uv_stream_t *st)
{
	if (st && !uv_is_closing((uv_handle_t *)st))
		uv_close((uv_handle_t *)st, NULL);
}

/* Close the local ends and the tunnel; the loop then runs dry. */
static void finish(struct pipe_run *r)
{
	close_handle(r->in);
	close_handle(r->out);
	if (r->pool)
		pool_close(r->pool);
}

/* The stream. */

static void on_ready(struct pool_stream *ps, struct uvt_stream *s)
{
	struct pipe_run *r = pool_stream_user(ps);

	uvt_stream_relay(s, r->in, r->out);
}

static void on_failed(struct pool_stream *ps, const char *err)
{
	struct pipe_run *r = pool_stream_user(ps);

	fprintf(stderr, "%s: %s\n", PROG_NAME, err);
	r->status = EXIT_FAIL;
	finish(r);
}

static void on_done(struct pool_stream *ps, const char *err)
{
	struct pipe_run *r = pool_stream_user(ps);

	if (err) {
		fprintf(stderr, "%s: %s\n", PROG_NAME, err);
		r->status = EXIT_FAIL;
	}
	finish(r);
}

/* The server's FIN reached standard output. A pipe has no half-close:
 * closing it is how its reader (ssh) sees the end. */
static void on_out_ended(struct pool_stream *ps, struct uvt_stream *s, int status)
{
	struct pipe_run *r = pool_stream_user(ps);
	int null;

	(void)s;
	if (status == UV_ECANCELED || r->out == r->in)
		return;
	close_handle(r->out);
	if (r->out != (uv_stream_t *)&r->hout.pipe)
		return;		/* a bridge's socket, or a tty */
	/* libuv never closes descriptors 0-2. Put /dev/null in the place
	 * of the pipe rather than leave 1 free for the next open(). */
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, STDOUT_FILENO);
		close(null);
	} else {
		close(STDOUT_FILENO);
	}
}

static const struct pool_stream_hooks hooks = {
	.ready = on_ready,
	.failed = on_failed,
	.done = on_done,
	.out_ended = on_out_ended,
};

static int usage(void)
{
	fprintf(stderr, "Usage: %s pipe NAME PORT\n", PROG_NAME);
	return EXIT_USAGE;
}

static int run_pipe(struct pipe_run *r, const struct client_ctx *ctx,
		    const struct server_entry *server, uint16_t port)
{
	if (open_stdio(r))
		r->pool = pool_new(&r->loop, ctx, server, false);
	if (r->pool)
		r->ps = pool_open(r->pool, port, &hooks, r);
	if (!r->ps) {
		if (r->in && r->pool)
			fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		r->status = EXIT_FAIL;
		finish(r);
	}
	uv_run(&r->loop, UV_RUN_DEFAULT);
	if (r->ps)
		pool_stream_free(r->ps);
	pool_free(r->pool);
	/* Bridges whose far end never closed (a failed setup) still hold
	 * handles: close them, and let the loop take them. */
	if (r->bin)
		close_handle((uv_stream_t *)&r->bin->far);
	if (r->bout)
		close_handle((uv_stream_t *)&r->bout->far);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	return r->status;
}

int pipe_main(const struct cli_options *opt, int argc, char *argv[])
{
	static const struct option longopts[] = { { NULL, 0, NULL, 0 } };
	const struct server_entry *server;
	struct client_ctx ctx;
	struct pipe_run *r;
	uint16_t port;
	int status;

	optind = 1;
	if (getopt_long(argc, argv, "+", longopts, NULL) != -1 || argc - optind != 2)
		return usage();
	if (!addr_parse_port(argv[optind + 1], &port)) {
		fprintf(stderr, "%s: pipe: '%s' is not a port (1-65535)\n", PROG_NAME,
			argv[optind + 1]);
		return EXIT_USAGE;
	}
	if (!client_ctx_load(&ctx, opt))
		return EXIT_FAIL;
	server = client_ctx_server(&ctx, argv[optind]);
	r = calloc(1, sizeof(*r));
	if (!server || !r || uv_loop_init(&r->loop) < 0) {
		if (server)
			fprintf(stderr, "%s: out of memory\n", PROG_NAME);
		free(r);
		client_ctx_free(&ctx);
		return EXIT_FAIL;
	}
	/* A reader that went away must be an error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	status = run_pipe(r, &ctx, server, port);
	uv_loop_close(&r->loop);
	free(r->bin);
	free(r->bout);
	free(r);
	client_ctx_free(&ctx);
	return status;
}
