/*
 * crun-oci-compat: the OCI runtime binary containerd 2.x is given for crun
 * (its runc shim's BinaryName) on hosts with Debian 12's crun 1.8.1.
 *
 * containerd 2.x writes runtime-spec version 1.3.0 into every bundle, the pod
 * sandbox's included (base_runtime_spec cannot reach that one), and crun
 * 1.8.1 refuses any ociVersion above 1.1 ("unknown version specified"). For a
 * call that names a bundle (create, run) this rewrites the minor digit of the
 * bundle's ociVersion to 1 in place (one byte, same length: "1.3.0" becomes
 * "1.1.0"), then execs crun with the same arguments. Fields newer than 1.1
 * are ignored by crun 1.8.1 either way.
 *
 * It is C and does one pread and one pwrite so that crun's cold starts pay
 * as little as possible for it: one extra execve of a small static binary
 * per crun call (measured by `go run ./bench/crun-compat`). A shell + sed
 * wrapper cost several ms.
 *
 * CRUN in the environment overrides the real binary (default /usr/bin/crun).
 * Built by scripts/node-up.sh: cc -O2 -static -o crun-oci-compat this.c
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *bundle_of(int argc, char **argv) {
	for (int i = 1; i < argc; i++) {
		if ((strcmp(argv[i], "--bundle") == 0 || strcmp(argv[i], "-b") == 0) && i + 1 < argc)
			return argv[i + 1];
		if (strncmp(argv[i], "--bundle=", 9) == 0)
			return argv[i] + 9;
	}
	return NULL;
}

/* lower_version patches path's "ociVersion": "1.N..." (N in 2..9) to 1.1. */
static void lower_version(const char *bundle) {
	char path[4096];
	if (snprintf(path, sizeof path, "%s/config.json", bundle) >= (int)sizeof path)
		return;
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return; /* crun will report the missing bundle itself */
	/* containerd puts ociVersion first: the head of the file is enough. */
	char buf[512];
	ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
	if (n > 0) {
		buf[n] = 0;
		char *p = strstr(buf, "\"ociVersion\"");
		if (p) {
			p += strlen("\"ociVersion\"");
			while (*p == ' ' || *p == ':')
				p++;
			/* p -> "1.3.0" */
			if (p[0] == '"' && p[1] == '1' && p[2] == '.' && p[3] >= '2' && p[3] <= '9' && p[4] == '.') {
				if (pwrite(fd, "1", 1, (p + 3) - buf) != 1)
					perror("crun-oci-compat: rewriting ociVersion");
			}
		}
	}
	close(fd);
}

int main(int argc, char **argv) {
	const char *crun = getenv("CRUN");
	if (!crun || !*crun)
		crun = "/usr/bin/crun";
	const char *bundle = bundle_of(argc, argv);
	if (bundle)
		lower_version(bundle);
	argv[0] = (char *)crun;
	execv(crun, argv);
	perror("crun-oci-compat: exec crun");
	return 127;
}
