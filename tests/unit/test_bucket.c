/*
 * bucket: the token bucket of --rate: N a second on average, a small
 * burst at most, no limit at 0.
 */
#include "bucket.h"
#include "harness.h"

/* Requests taken over `ms` milliseconds, trying every millisecond. */
static unsigned taken_in(struct bucket *b, long ms)
{
	unsigned n = 0;
	long t;

	for (t = 0; t <= ms; t++)
		while (bucket_take(b, t))
			n++;
	return n;
}

static void test_rate_over_ten_seconds(void)
{
	struct bucket b;
	unsigned n;

	bucket_init(&b, 200, 0);
	n = taken_in(&b, 10000);
	/* 200 a second for 10 s, plus the first token */
	CHECK(n >= 2000 && n <= 2001);
}

static void test_burst_is_small(void)
{
	struct bucket b;

	bucket_init(&b, 1000, 0);
	/* after a long pause, a tenth of a second's worth at once */
	CHECK_INT_EQ(taken_in(&b, 0), 1);
	CHECK_INT_EQ(bucket_take(&b, 60000), 1);
	{
		unsigned n = 1;

		while (bucket_take(&b, 60000))
			n++;
		CHECK_INT_EQ(n, 100);
	}
}

static void test_wait_says_when(void)
{
	struct bucket b;
	long w;

	bucket_init(&b, 10, 0);
	CHECK_INT_EQ(bucket_wait_ms(&b, 0), 0);
	CHECK_INT_EQ(bucket_take(&b, 0), 1);
	CHECK_INT_EQ(bucket_take(&b, 0), 0);
	w = bucket_wait_ms(&b, 0);
	CHECK(w >= 100 && w <= 101);
	CHECK_INT_EQ(bucket_take(&b, w), 1);
}

static void test_zero_is_unlimited(void)
{
	struct bucket b;
	unsigned i;

	bucket_init(&b, 0, 0);
	for (i = 0; i < 100000; i++)
		CHECK_INT_EQ(bucket_take(&b, 0), 1);
	CHECK_INT_EQ(bucket_wait_ms(&b, 0), 0);
}

static const struct h_test tests[] = {
	TEST(test_rate_over_ten_seconds),
	TEST(test_burst_is_small),
	TEST(test_wait_says_when),
	TEST(test_zero_is_unlimited),
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}
