/*
 * pause: minimal pod-sandbox process in the manner of Kubernetes' pause.
 * Holds the pod's namespaces open, reaps orphans re-parented to it (it is
 * PID 1 when the pod shares a PID namespace) and exits 0 on SIGINT/SIGTERM.
 *
 * Build: gcc -static -Os -o pause pause.c   (see Makefile)
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define VERSION "coldbench-pause 3.10"

static void sigdown(int signo)
{
	(void)signo;
	_exit(0);
}

static void sigreap(int signo)
{
	(void)signo;
	int saved = errno;
	/* One SIGCHLD can stand for many exits, so reap until none are left. */
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
	errno = saved;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "-v") == 0) {
		printf("%s\n", VERSION);
		return 0;
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);

	sa.sa_handler = sigdown;
	if (sigaction(SIGINT, &sa, NULL) < 0 || sigaction(SIGTERM, &sa, NULL) < 0)
		return 1;

	sa.sa_handler = sigreap;
	sa.sa_flags = SA_NOCLDSTOP;
	if (sigaction(SIGCHLD, &sa, NULL) < 0)
		return 2;

	/* After the handlers, so a supervisor may treat this line as "ready". */
	if (getpid() != 1)
		fprintf(stderr, "pause: warning: not PID 1, orphans will not be reaped here\n");

	for (;;)
		pause();
	fprintf(stderr, "pause: infinite loop terminated\n");
	return 42;
}
