/*
 * crash: the test function that fails at start. It writes one line to
 * stderr and exits 1 before listening, like a function whose start-up fails
 * (a missing setting, a broken build). coldbench's fault tests run it as
 * coldbench.local/fn-crash:v1 (`coldbench image build crash`) and expect the
 * attempt recorded as error_class "crashed".
 */
#include <stdio.h>

int main(void) {
	fputs("crash: failing at start on purpose (coldbench's crash test function)\n", stderr);
	return 1;
}
