#!/bin/sh
# sans_io_check.sh NM ARCHIVE: fail when an object of ARCHIVE (the
# protocol library, postern_proto) calls I/O: files, sockets, terminals,
# the clock, the environment, logging, libconfuse, libsystemd. The names
# are libc's with their _FORTIFY_SOURCE (__*_chk) and 64-bit variants.
# What is allowed is what the cores need: memory, strings, libgcrypt,
# inet_pton/ntop, getrandom.
set -eu
nm=$1 archive=$2

io='open|openat|creat|close|read|write|pread|pwrite|readv|writev|lseek'
io="$io|stat|fstat|lstat|fstatat|statx|access|unlink|rename|mkdir|ioctl|fcntl"
io="$io|mmap|munmap|mlock|madvise|dup|dup2|pipe|poll|ppoll|select|epoll_[a-z_]*"
io="$io|socket|connect|bind|listen|accept|accept4|shutdown"
io="$io|send|sendto|sendmsg|recv|recvfrom|recvmsg|getsockopt|setsockopt"
io="$io|fopen|fdopen|freopen|fmemopen|fclose|fread|fwrite|fflush|fgets|fputs"
io="$io|fputc|putc|putchar|puts|getc|getchar|fgetc|getline|getdelim"
io="$io|printf|fprintf|dprintf|vprintf|vfprintf|vdprintf|perror|scanf|fscanf"
io="$io|syslog|vsyslog|openlog|closelog|err|errx|warn|warnx|verr|vwarn"
io="$io|time|clock_gettime|gettimeofday|getenv|secure_getenv|system|popen"
io="$io|fork|execve|execv|execvp|kill|signal|sigaction|stdin|stdout|stderr"
pattern="^(__)?($io)(64)?(_chk)?(@.*)?\$|^(sd_|cfg_|log_|uv_|mnl_|nft|nfq_)"

bad=$("$nm" -u -A "$archive" | awk '{ print $1, $NF }' |
	sed -E 's/^[^:]*:([^:]*): /\1 /' | awk -v re="$pattern" '$2 ~ re')
if [ -n "$bad" ]; then
	echo "$(basename "$archive") must do no I/O (the rule of postern_proto); these objects call:" >&2
	echo "$bad" >&2
	exit 1
fi
echo "$(basename "$archive"): no I/O among $("$nm" -u "$archive" | grep -c ' U ') undefined symbols"
