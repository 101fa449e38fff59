/*
 * The first bytes of a stream: the client's 3-byte open request as
 * postern-tunneld decodes it (tunnel_request_decode), and the server's
 * status byte as the client reads it (tunnel_status_str), plus the status
 * a failed connect(2) turns into (tunnel_status_from_errno). The input is
 * read as a run of requests, then as status bytes, then as errno values.
 *
 * Invariants: a request is taken exactly when it is a connect, its port
 * is the big-endian u16 that follows, and encoding that port gives the same
 * three bytes back; every status byte has a message, a distinct one for
 * each defined status, and "unknown status" for the rest; every errno
 * maps to a defined status that is not "ok" unless errno is 0.
 */
#include <string.h>

#include "fuzz_util.h"

static const uint8_t defined[] = {
	TUNNEL_STATUS_OK, TUNNEL_STATUS_NOT_ALLOWED, TUNNEL_STATUS_REFUSED,
	TUNNEL_STATUS_UNREACHABLE, TUNNEL_STATUS_INTERNAL,
};

static bool is_defined(uint8_t status)
{
	return memchr(defined, status, sizeof(defined)) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t again[TUNNEL_REQUEST_LEN];
	uint16_t port;

	for (size_t i = 0; i + TUNNEL_REQUEST_LEN <= size; i += TUNNEL_REQUEST_LEN) {
		const uint8_t *req = data + i;
		bool ok;

		port = 0x5a5a;
		ok = tunnel_request_decode(req, &port);
		check(ok == (req[0] == TUNNEL_CMD_CONNECT));
		if (!ok) {
			check(port == 0x5a5a);	/* untouched */
			continue;
		}
		check(port == (req[1] << 8 | req[2]));
		tunnel_request_encode(again, port);
		check(memcmp(again, req, TUNNEL_REQUEST_LEN) == 0);
	}
	for (size_t i = 0; i < size; i++) {
		const char *s = tunnel_status_str(data[i]);

		check(s != NULL && s[0] != '\0');
		check(is_defined(data[i]) == (strcmp(s, "unknown status") != 0));
		for (size_t j = 0; j < sizeof(defined); j++)
			check(defined[j] == data[i] ||
			      strcmp(s, tunnel_status_str(defined[j])) != 0);
	}
	for (size_t i = 0; i + sizeof(int) <= size; i += sizeof(int)) {
		int err;
		enum tunnel_status s;

		memcpy(&err, data + i, sizeof(err));
		s = tunnel_status_from_errno(err);
		check(is_defined((uint8_t)s) && (uint8_t)s == (unsigned int)s);
		check((s == TUNNEL_STATUS_OK) == (err == 0));
	}
	return 0;
}
