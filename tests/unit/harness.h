/*
 * harness: a tiny assert harness for the unit programs in tests/unit.
 *
 * A program lists its tests and hands them to h_main():
 *
 *	static void test_parse(void) { CHECK_INT_EQ(parse("7"), 7); }
 *	static const struct h_test tests[] = { TEST(test_parse), { 0 } };
 *	int main(int argc, char **argv) { return h_main(argc, argv, tests); }
 *
 * Each test runs in its own child process (a crash, a sanitizer report or
 * a hang past H_TIMEOUT seconds fails that test only, and getrusage()
 * measures that test alone).  A failed check prints FILE:LINE and both
 * values, and the test goes on.  The last line printed is exactly
 * "N passed, N failed", counting tests; the exit status is 1 if any
 * failed.  An argument runs only the tests whose name contains it.
 */
#ifndef SENDER_HARNESS_H
#define SENDER_HARNESS_H

#include <stddef.h>

#define H_TIMEOUT 300

struct h_test {
	const char *name;
	void (*fn)(void);
};

#define TEST(fn)        \
	{               \
#fn, fn \
	}

/* A string literal and its length, for the (text, length) arguments. */
#define LIT(s) (s), (sizeof(s) - 1)

#define CHECK(c) h_check(!!(c), __FILE__, __LINE__, #c)
#define CHECK_INT_EQ(a, b) \
	h_int_eq((long long)(a), (long long)(b), __FILE__, __LINE__, #a, #b)
#define CHECK_STR_EQ(a, b) \
	h_mem_eq(a, (size_t)-1, b, (size_t)-1, __FILE__, __LINE__, #a, #b)
#define CHECK_MEM_EQ(a, alen, b, blen) \
	h_mem_eq(a, alen, b, blen, __FILE__, __LINE__, #a, #b)
#define CHECK_CONTAINS(hay, needle) \
	h_contains(hay, needle, __FILE__, __LINE__, #hay)

int h_check(int ok, const char *file, int line, const char *expr);
int h_int_eq(long long a, long long b, const char *file, int line,
	     const char *ea, const char *eb);
/* (size_t)-1 as a length means "up to the NUL"; NULL is a value too. */
int h_mem_eq(const char *a, size_t alen, const char *b, size_t blen,
	     const char *file, int line, const char *ea, const char *eb);
int h_contains(const char *hay, const char *needle, const char *file, int line,
	       const char *ehay);

/* Checks failed so far in this test: helpers use it to name their caller. */
int h_failures(void);

/*
 * A fixture in tests/data/unit (or $UNIT_DATA), and a path in this
 * program's temporary directory (removed at the end).  Both return static
 * storage that the fourth call after reuses.
 */
const char *h_data(const char *name);
const char *h_tmp(const char *name);
/* Write a whole file; a failure fails the test. */
void h_write(const char *path, const void *data, size_t len);

int h_main(int argc, char **argv, const struct h_test *tests);

#endif
