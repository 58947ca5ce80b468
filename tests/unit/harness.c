#include "harness.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int failed_checks;
static char tmpdir[256];

int h_failures(void)
{
	return failed_checks;
}

/* Count a failure and start its message with where it is. */
static void fail(const char *file, int line)
{
	printf("  %s:%d: ", file, line);
	failed_checks++;
}

/* Up to 120 bytes of a value, with what is not printable escaped. */
static void show(const char *what, const char *s, size_t n)
{
	size_t i;

	if (s == NULL) {
		printf("    %s: NULL\n", what);
		return;
	}
	printf("    %s: \"", what);
	for (i = 0; i < n && i < 120; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			putchar(c);
		else
			printf("\\x%02x", c);
	}
	printf("\"%s (%zu bytes)\n", n > 120 ? "..." : "", n);
}

int h_check(int ok, const char *file, int line, const char *expr)
{
	if (!ok) {
		fail(file, line);
		printf("check failed: %s\n", expr);
	}
	return ok;
}

int h_int_eq(long long a, long long b, const char *file, int line,
	     const char *ea, const char *eb)
{
	if (a == b)
		return 1;
	fail(file, line);
	printf("%s == %s\n    got %lld, want %lld\n", ea, eb, a, b);
	return 0;
}

int h_mem_eq(const char *a, size_t alen, const char *b, size_t blen,
	     const char *file, int line, const char *ea, const char *eb)
{
	if (a && alen == (size_t)-1)
		alen = strlen(a);
	if (b && blen == (size_t)-1)
		blen = strlen(b);
	if (a == b || (a && b && alen == blen && memcmp(a, b, alen) == 0))
		return 1;
	fail(file, line);
	printf("%s == %s\n", ea, eb);
	show("got ", a, alen);
	show("want", b, blen);
	return 0;
}

int h_contains(const char *hay, const char *needle, const char *file, int line,
	       const char *ehay)
{
	if (hay && strstr(hay, needle))
		return 1;
	fail(file, line);
	printf("%s does not contain \"%s\"\n", ehay, needle);
	show("got ", hay, hay ? strlen(hay) : 0);
	return 0;
}

/* Four buffers in turn, so that a few paths can be used together. */
static const char *join(const char *dir, const char *name)
{
	static char path[4][512];
	static int next;
	char *p = path[next++ % 4];

	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	return p;
}

const char *h_data(const char *name)
{
	const char *dir = getenv("UNIT_DATA");

	return join(dir ? dir : "tests/data/unit", name);
}

const char *h_tmp(const char *name)
{
	return join(tmpdir, name);
}

void h_write(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	CHECK(f != NULL && fwrite(data, 1, len, f) == len);
	if (f)
		CHECK(fclose(f) == 0);
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* Run one test in a child; returns 1 if it passed. */
static int run(const struct h_test *t)
{
	int status = -1;
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		alarm(H_TIMEOUT);
		t->fn();
		exit(failed_checks ? 1 : 0); /* LeakSanitizer runs at exit */
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		status = -1;
	if (status == 0)
		printf("ok   %s\n", t->name);
	else if (status != -1 && WIFSIGNALED(status))
		printf("FAIL %s: killed by signal %d\n", t->name,
		       WTERMSIG(status));
	else
		printf("FAIL %s\n", t->name);
	return status == 0;
}

int h_main(int argc, char **argv, const struct h_test *t)
{
	const char *base = getenv("TMPDIR");
	int passed = 0, failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(tmpdir, sizeof(tmpdir), "%s/unit.XXXXXX",
		 base ? base : "/tmp");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	for (; t->name; t++)
		if (argc < 2 || strstr(t->name, argv[1]))
			run(t) ? passed++ : failed++;
	nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
