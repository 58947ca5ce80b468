/*
 * buf: a capped, always NUL-terminated byte buffer.
 */
#include "buf.h"
#include "harness.h"

#include <string.h>

static void test_empty(void)
{
	struct buf b;

	buf_init(&b, 0);
	CHECK(b.data == NULL); /* nothing allocated */
	CHECK_STR_EQ(buf_str(&b), "");
	CHECK_INT_EQ(b.len, 0);
	buf_release(&b);
}

static void test_append_grows(void)
{
	struct buf b;
	int i, rc = 0;

	buf_init(&b, 0);
	for (i = 0; i < 10000; i++)
		rc |= buf_append(&b, LIT("0123456789"));
	CHECK_INT_EQ(rc, 0);
	CHECK_INT_EQ(b.len, 100000);
	CHECK_INT_EQ(strlen(buf_str(&b)), 100000);
	CHECK(memcmp(b.data + 99990, LIT("0123456789")) == 0);
	CHECK_INT_EQ(b.truncated, 0);
	/* binary bytes go in as they are */
	buf_reset(&b);
	CHECK_INT_EQ(buf_append(&b, LIT("a\0b")), 0);
	CHECK_MEM_EQ(b.data, b.len, "a\0b", sizeof("a\0b") - 1);
	CHECK_INT_EQ(b.data[3], 0);
	buf_release(&b);
}

static void test_cap(void)
{
	struct buf b;

	buf_init(&b, 5);
	CHECK_INT_EQ(buf_append(&b, LIT("abc")), 0);
	CHECK_INT_EQ(buf_append(&b, LIT("de")), 0); /* exactly full */
	CHECK_INT_EQ(b.truncated, 0);
	CHECK_INT_EQ(buf_append(&b, LIT("f")), 1);
	CHECK_INT_EQ(b.truncated, 1);
	CHECK_STR_EQ(buf_str(&b), "abcde");
	CHECK_INT_EQ(buf_append(&b, LIT("ghijk")), 1);
	CHECK_STR_EQ(buf_str(&b), "abcde");
	/* reset forgets the contents and the truncation, keeps the cap */
	buf_reset(&b);
	CHECK_INT_EQ(b.truncated, 0);
	CHECK_INT_EQ(buf_append(&b, LIT("123456")), 1);
	CHECK_STR_EQ(buf_str(&b), "12345");
	buf_release(&b);
	CHECK_INT_EQ(b.cap, 5);
	CHECK_INT_EQ(b.len, 0);
	CHECK_INT_EQ(buf_append(&b, LIT("xy")), 0); /* usable after release */
	CHECK_STR_EQ(buf_str(&b), "xy");
	buf_release(&b);
}

static void test_addf(void)
{
	struct buf b;

	buf_init(&b, 0);
	CHECK_INT_EQ(buf_addf(&b, "%d read", 12), 0);
	CHECK_INT_EQ(buf_addf(&b, ", %s%%", "50"), 0);
	CHECK_INT_EQ(buf_addf(&b, "%s", ""), 0);
	CHECK_STR_EQ(buf_str(&b), "12 read, 50%");
	CHECK_INT_EQ(b.len, sizeof("12 read, 50%") - 1);
	/* past the growth of the first allocation, in one piece */
	buf_reset(&b);
	CHECK_INT_EQ(buf_addf(&b, "%0300d|", 7), 0);
	CHECK_INT_EQ(b.len, 301);
	CHECK_INT_EQ(strlen(buf_str(&b)), 301);
	CHECK(b.data[299] == '7' && b.data[300] == '|');
	buf_release(&b);
}

static void test_addf_cap(void)
{
	struct buf b;

	buf_init(&b, 8);
	CHECK_INT_EQ(buf_addf(&b, "%s", "abc"), 0);
	CHECK_INT_EQ(buf_addf(&b, "%d", 12345), 0); /* exactly full */
	CHECK_INT_EQ(b.truncated, 0);
	CHECK_STR_EQ(buf_str(&b), "abc12345");
	CHECK_INT_EQ(buf_addf(&b, "%c", 'x'), 1);
	CHECK_INT_EQ(b.truncated, 1);
	CHECK_STR_EQ(buf_str(&b), "abc12345");
	buf_reset(&b);
	CHECK_INT_EQ(buf_addf(&b, "%s-%s", "hello", "world"), 1);
	CHECK_STR_EQ(buf_str(&b), "hello-wo");
	CHECK_INT_EQ(b.len, 8);
	CHECK(b.alloc <= 64); /* nothing past the cap was kept */
	buf_release(&b);
}

/* A writer fills buf_space() itself; the contents stay NUL-terminated. */
static void test_space(void)
{
	struct buf b;
	char *p;

	buf_init(&b, 4); /* the cap is for appends from outside */
	CHECK_INT_EQ(buf_append(&b, LIT("ab")), 0);
	p = buf_space(&b, 1000);
	if (CHECK(p != NULL)) {
		CHECK(p == b.data + 2);
		CHECK(b.alloc >= 2 + 1000 + 1);
		memset(p, 'x', 1000);
		buf_commit(&b, 6);
		CHECK_STR_EQ(buf_str(&b), "abxxxxxx");
		CHECK_INT_EQ(b.len, 8);
	}
	/* an impossible size is refused, the contents kept */
	CHECK(buf_space(&b, (size_t)-1) == NULL);
	CHECK_STR_EQ(buf_str(&b), "abxxxxxx");
	buf_release(&b);
}

static const struct h_test tests[] = {
	TEST(test_empty), TEST(test_append_grows), TEST(test_cap),
	TEST(test_addf),  TEST(test_addf_cap),	   TEST(test_space),
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}
