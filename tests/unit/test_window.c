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

/*
 * About +1 per window of successes when no overload is known (or it is
 * left behind): additive, not multiplicative.
 */
static void test_additive_increase(void)
{
	struct window w;
	unsigned i, n;

	window_init(&w, 32);
	w.size = 10.0;
	n = window_limit(&w);
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

/*
 * Against an API that serves cap requests at a time and answers 503 above
 * that, in rounds: each round the window's worth is sent, cap of them
 * succeed and the rest are busy.  The window must keep the API nearly
 * full without knocking on it often: a plain AIMD window climbs past cap
 * within a few rounds of each decrease (about 0.9 of cap used).  The
 * first rounds, where it comes down from the ceiling, are not counted.
 */
#define WARM_UP 200

static void simulate(unsigned ceiling, unsigned cap, unsigned rounds,
		     double *used, double *busy_share)
{
	struct window w;
	unsigned long seq[1024];
	unsigned long ok = 0, busy = 0;
	unsigned r, i, n;

	window_init(&w, ceiling);
	for (r = 0; r < rounds; r++) {
		n = window_limit(&w);
		for (i = 0; i < n; i++)
			seq[i] = window_sent(&w);
		for (i = 0; i < n; i++) {
			if (i < cap) {
				window_success(&w);
				ok += r >= WARM_UP;
			} else {
				window_busy(&w, seq[i]);
				busy += r >= WARM_UP;
			}
		}
	}
	*used = (double)ok / ((double)(rounds - WARM_UP) * cap);
	*busy_share = (double)busy / (double)(ok + busy);
}

static void test_keeps_a_capacity_full(void)
{
	static const unsigned caps[] = { 2, 8, 20, 50 };
	size_t k;

	for (k = 0; k < sizeof(caps) / sizeof(caps[0]); k++) {
		double used, busy;

		simulate(64, caps[k], WARM_UP + 2000, &used, &busy);
		if (!CHECK(used >= 0.95) || !CHECK(busy <= 0.05))
			printf("    capacity %u: %.3f of it used, %.3f busy\n",
			       caps[k], used, busy);
	}
}

/* Near the size of the last overload it grows WINDOW_PROBE times slower. */
static void test_probes_slowly_near_last_overload(void)
{
	struct window w;
	unsigned slow = 0, fast = 0;

	window_init(&w, 64);
	w.size = 21.0;			      /* grown to 21, say */
	window_busy(&w, window_sent(&w));     /* and an overload met there */
	CHECK_INT_EQ(window_limit(&w), 14);   /* 21 * 0.7 */
	while (w.size < 20.0 && fast < 10000) /* one below it: quickly */
		window_success(&w), fast++;
	while (w.size < 22.0 && slow < 10000) /* up to one above it: slowly */
		window_success(&w), slow++;
	/* plain AIMD takes (20^2 - 14.7^2) / 2 = 92 answers to 20 */
	if (!CHECK(fast >= 40 && fast <= 75) ||
	    !CHECK(slow >= 30 * WINDOW_PROBE && slow <= 50 * WINDOW_PROBE))
		printf("    %u answers to 20, then %u to 22\n", fast, slow);
	/* past it the API takes more than before: as fast as ever */
	fast = 0;
	while (w.size < 24.0 && fast < 10000)
		window_success(&w), fast++;
	if (!CHECK(fast >= 35 && fast <= 60))
		printf("    %u answers from 22 to 24\n", fast);
}

static const struct h_test tests[] = {
	TEST(test_starts_at_ceiling),
	TEST(test_sequence_numbers),
	TEST(test_one_decrease_per_window),
	TEST(test_never_below_one),
	TEST(test_additive_increase),
	TEST(test_grows_back_to_ceiling),
	TEST(test_shrinks_again_after_recovery),
	TEST(test_keeps_a_capacity_full),
	TEST(test_probes_slowly_near_last_overload),
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}
