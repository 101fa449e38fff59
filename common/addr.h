/*
 * Socket addresses as the configuration and the messages write them:
 * "ADDR:PORT" for IPv4, "[ADDR]:PORT" for IPv6, numeric only.
 */
#ifndef POSTERN_ADDR_H
#define POSTERN_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* "[" INET6_ADDRSTRLEN-1 "]:" 5 digits and the NUL */
#define ADDR_TEXT_MAX 54

/* A port number, 1..65535, in decimal digits only. */
bool addr_parse_port(const char *text, uint16_t *port);

/*
 * "ADDR:PORT" (IPv4) or "[ADDR]:PORT" (IPv6), port 1..65535, into a
 * socket address; sa and sa_len may be NULL to only check the text. The
 * config loaders check listen options with it; the daemons and the CLI
 * bind with it.
 */
bool addr_parse(const char *text, struct sockaddr_storage *sa,
		socklen_t *sa_len);

/* The other way: "ADDR:PORT" or "[ADDR]:PORT"; "?" for another family. */
void addr_format(char *buf, size_t len, const struct sockaddr_storage *sa);

/* The same address, the port aside (IPv4 or IPv6). */
bool addr_same_host(const struct sockaddr_storage *a,
		    const struct sockaddr_storage *b);

#endif
