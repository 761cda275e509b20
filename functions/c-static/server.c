/*
 * c-static: the C cold-start probe function. Same contract as
 * functions/go-static: listens on 0.0.0.0:$PORT (default 8080), answers every
 * path and method with 200, a fixed body (none for HEAD) and
 * X-Coldbench-Process-Start: <unix nanoseconds>, and exits 0 on SIGTERM/SIGINT.
 *
 * Build: gcc -static -O2 -o c-static server.c   (see Makefile)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char body[] = "coldbench: hello from c-static\n";

static void on_term(int sig)
{
	(void)sig;
	_exit(0); /* async-signal-safe; there is nothing to flush */
}

/* Reads until the end of the request headers; the body, if any, is ignored. */
static ssize_t read_request(int fd, char *buf, size_t cap)
{
	size_t n = 0;
	while (n < cap - 1) {
		ssize_t r = recv(fd, buf + n, cap - 1 - n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return n > 0 ? (ssize_t)n : -1;
		n += (size_t)r;
		buf[n] = '\0';
		if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
			break;
	}
	buf[n] = '\0';
	return (ssize_t)n;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int main(void)
{
	/* First statement: the closest C gets to the process's first instruction. */
	struct timespec start;
	clock_gettime(CLOCK_REALTIME, &start);
	long long start_ns = (long long)start.tv_sec * 1000000000LL + start.tv_nsec;

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_term;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	int port = 8080;
	const char *env = getenv("PORT");
	if (env && *env) {
		char *end;
		long p = strtol(env, &end, 10);
		if (*end != '\0' || p < 0 || p > 65535) {
			fprintf(stderr, "c-static: invalid PORT %s\n", env);
			return 1;
		}
		port = (int)p;
	}

	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ls < 0) {
		perror("c-static: socket");
		return 1;
	}
	int one = 1;
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);

	struct sockaddr_in addr;
	memset(&addr, 0, sizeof addr);
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_ANY);
	addr.sin_port = htons((unsigned short)port);
	if (bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0) {
		perror("c-static: bind");
		return 1;
	}
	if (listen(ls, 128) < 0) {
		perror("c-static: listen");
		return 1;
	}
	fprintf(stderr, "c-static: listening on 0.0.0.0:%d (process start %lld)\n", port, start_ns);

	static char req[8192];
	char resp[512];
	/* Bounds a silent client's hold on this single-threaded loop. */
	struct timeval tmo = {.tv_sec = 5, .tv_usec = 0};

	for (;;) {
		int c = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
		if (c < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE ||
			    errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
				continue;
			perror("c-static: accept");
			return 1;
		}
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof tmo);
		setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof tmo);

		if (read_request(c, req, sizeof req) > 0) {
			int head = strncasecmp(req, "HEAD ", 5) == 0;
			int n = snprintf(resp, sizeof resp,
					 "HTTP/1.1 200 OK\r\n"
					 "Content-Type: text/plain; charset=utf-8\r\n"
					 "Content-Length: %zu\r\n"
					 "X-Coldbench-Process-Start: %lld\r\n"
					 "Connection: close\r\n"
					 "\r\n"
					 "%s",
					 sizeof body - 1, start_ns, head ? "" : body);
			if (n > 0 && (size_t)n < sizeof resp)
				write_all(c, resp, (size_t)n);
		}
		/*
		 * Closing with unread input makes the kernel send RST, which can
		 * destroy the response in flight: half-close, discard what has
		 * already arrived, then close.
		 */
		shutdown(c, SHUT_WR);
		while (recv(c, req, sizeof req, MSG_DONTWAIT) > 0)
			;
		close(c);
	}
}
