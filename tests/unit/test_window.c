/*
 * window: AIMD on the number of requests in flight: starts at the ceiling,
 * shrinks on busy answers at most once per window of requests, never below
 * 1, grows back by about one per window of good answers.
 */
#include "harness.h"
#include "window.h"

#include <stdio.h>

static void test_starts_at_ceiling(void)
{
	struct window w;

	window_init(&w, 32);
	CHECK_INT_EQ(window_limit(&w), 32);
	window_init(&w, 1);
	CHECK_INT_EQ(window_limit(&w), 1);
	window_init(&w, 0); /* nonsense, but at least one request */
	CHECK_INT_EQ(window_limit(&w), 1);
	window_init(&w, 1024);
	CHECK_INT_EQ(window_limit(&w), 1024);
}

static void test_sequence_numbers(void)
{
	struct window w;
	unsigned long a, b;

	window_init(&w, 4);
	a = window_sent(&w);
	b = window_sent(&w);
	CHECK(a >= 1);
	CHECK_INT_EQ(b, a + 1);
}

/* A burst of 503s for one window's requests is one decrease, not many. */
static void test_one_decrease_per_window(void)
{
	struct window w;
	unsigned long seq[32], next;
	unsigned i, after;

	window_init(&w, 32);
	for (i = 0; i < 32; i++)
		seq[i] = window_sent(&w);
	window_busy(&w, seq[0]);
	after = window_limit(&w);
	CHECK(after < 32);
	CHECK(after >= 16); /* multiplicative, not a collapse */
	for (i = 1; i < 32; i++)
		window_busy(&w, seq[i]);
	CHECK_INT_EQ(window_limit(&w), after);
	/* a request sent after the decrease may decrease it again */
	next = window_sent(&w);
	window_busy(&w, next);
	CHECK(window_limit(&w) < after);
}

static void test_never_below_one(void)
{
	struct window w;
	int i;

	window_init(&w, 32);
	for (i = 0; i < 200; i++) {
		window_busy(&w, window_sent(&w));
		if (!CHECK(window_limit(&w) >= 1) || !CHECK(w.size >= 1.0))
			break;
	}
	CHECK_INT_EQ(window_limit(&w), 1);
}

/* About +1 per window of successes: additive, not multiplicative. */
static void test_additive_increase(void)
{
	struct window w;
	unsigned i, n = 0;

	window_init(&w, 32);
	while (window_limit(&w) > 10 && n++ < 100)
		window_busy(&w, window_sent(&w));
	n = window_limit(&w);
	CHECK(n <= 10);
	for (i = 0; i < 2 * n; i++)
		window_success(&w);
	CHECK(window_limit(&w) >= n + 1);
	CHECK(window_limit(&w) <= n + 2);
}

static void test_grows_back_to_ceiling(void)
{
	struct window w;
	int i, over = 0, steps = -1;

	window_init(&w, 32);
	for (i = 0; i < 100; i++)
		window_busy(&w, window_sent(&w));
	CHECK_INT_EQ(window_limit(&w), 1);
	/* from 1 to 32 takes about 32 * 32 / 2 answers */
	for (i = 0; i < 2000; i++) {
		window_success(&w);
		over += window_limit(&w) > 32 || w.size > w.ceiling;
		if (steps < 0 && window_limit(&w) == 32)
			steps = i + 1;
	}
	CHECK_INT_EQ(window_limit(&w), 32);
	CHECK_INT_EQ(over, 0);
	if (!CHECK(steps >= 300 && steps <= 700))
		printf("    back at the ceiling after %d answers\n", steps);
}

/* A window that recovered can shrink again on a new overload. */
static void test_shrinks_again_after_recovery(void)
{
	struct window w;
	int i;

	window_init(&w, 8);
	window_busy(&w, window_sent(&w));
	CHECK(window_limit(&w) < 8);
	for (i = 0; i < 200; i++)
		window_success(&w);
	CHECK_INT_EQ(window_limit(&w), 8);
	window_busy(&w, window_sent(&w));
	CHECK(window_limit(&w) < 8);
}

static const struct h_test tests[] = {
	TEST(test_starts_at_ceiling),
	TEST(test_sequence_numbers),
	TEST(test_one_decrease_per_window),
	TEST(test_never_below_one),
	TEST(test_additive_increase),
	TEST(test_grows_back_to_ceiling),
	TEST(test_shrinks_again_after_recovery),
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}
