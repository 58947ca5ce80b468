/*
 * backoff: full jitter in [0, min(max, base * 2^attempt)], Retry-After as
 * a floor up to BACKOFF_RETRY_AFTER_MAX.
 */
#include "backoff.h"
#include "harness.h"

#include <limits.h>
#include <stdio.h>
#include <unistd.h>

#define DRAWS 20000

/*
 * Draw DRAWS delays for attempt: all in [lo, hi]; without a floor, both
 * halves of the range hit, the extremes approached, the mean near the
 * middle.
 */
static void check_draws(struct backoff *b, unsigned attempt, long retry_after,
			long lo, long hi)
{
	long d, min = LONG_MAX, max = LONG_MIN, low = 0, high = 0, out = 0;
	double sum = 0, mid = (lo + hi) / 2.0;
	int i, before = h_failures();

	for (i = 0; i < DRAWS; i++) {
		d = backoff_delay_ms(b, attempt, retry_after);
		out += d < lo || d > hi;
		min = d < min ? d : min;
		max = d > max ? d : max;
		low += d < mid;
		high += d > mid;
		sum += (double)d;
	}
	CHECK_INT_EQ(out, 0);
	/* a range worth calling random, not bent by a Retry-After floor */
	if (hi - lo >= 100 && retry_after <= 0) {
		CHECK(low > DRAWS / 3 && high > DRAWS / 3);
		CHECK(min - lo < (hi - lo) / 50);
		CHECK(hi - max < (hi - lo) / 50);
		CHECK(sum / DRAWS > mid - (hi - lo) / 20.0 &&
		      sum / DRAWS < mid + (hi - lo) / 20.0);
	}
	if (h_failures() != before)
		printf("    (attempt %u, retry-after %ld: want [%ld, %ld], "
		       "drew [%ld, %ld], mean %.1f, %ld below the middle, "
		       "%ld above)\n",
		       attempt, retry_after, lo, hi, min, max, sum / DRAWS, low,
		       high);
}

static void test_full_jitter(void)
{
	struct backoff b;
	unsigned a;
	long ceiling = 200;

	backoff_init(&b, 200, 30000, 12345);
	for (a = 0; a < 12; a++) {
		check_draws(&b, a, -1, 0, ceiling);
		ceiling = ceiling * 2 > 30000 ? 30000 : ceiling * 2;
	}
}

static void test_huge_attempts(void)
{
	struct backoff b;
	unsigned attempts[] = { 31, 32, 63, 64, 65, 1000, UINT_MAX };
	size_t i;

	backoff_init(&b, 200, 30000, 99);
	for (i = 0; i < sizeof(attempts) / sizeof(attempts[0]); i++)
		check_draws(&b, attempts[i], -1, 0, 30000);
	backoff_init(&b, 1000, 3600000, 7);
	check_draws(&b, UINT_MAX, -1, 0, 3600000);
}

/* A cap as large as a long can hold: doubling must not overflow. */
static void test_cap_near_long_max(void)
{
	struct backoff b;

	alarm(20); /* an overflowed ceiling can loop for 2^32 doublings */
	backoff_init(&b, 1, LONG_MAX, 7);
	check_draws(&b, 62, -1, 0, 1L << 62);
	check_draws(&b, 63, -1, 0, LONG_MAX);
	check_draws(&b, UINT_MAX, -1, 0, LONG_MAX);
	backoff_init(&b, 3, LONG_MAX / 2 + 1, 7);
	check_draws(&b, 200, -1, 0, LONG_MAX / 2 + 1);
}

static void test_retry_after(void)
{
	const long most = BACKOFF_RETRY_AFTER_MAX * 1000L;
	struct backoff b;

	backoff_init(&b, 200, 30000, 5);
	/* a floor under the draw */
	check_draws(&b, 0, 5, 5000, 5000);
	check_draws(&b, 10, 5, 5000, 30000);
	check_draws(&b, 10, 0, 0, 30000);
	/* honoured past max_delay_ms ... */
	check_draws(&b, 0, 31, 31000, 31000);
	check_draws(&b, 0, BACKOFF_RETRY_AFTER_MAX, most, most);
	/* ... up to BACKOFF_RETRY_AFTER_MAX, however large */
	check_draws(&b, 0, BACKOFF_RETRY_AFTER_MAX + 1, most, most);
	check_draws(&b, 10, 86400, most, most);
	check_draws(&b, 0, LONG_MAX, most, most);
	check_draws(&b, UINT_MAX, LONG_MAX / 1000 + 1, most, most);
	/* a cap above the Retry-After limit still bounds the draw */
	backoff_init(&b, 1000, 3600000, 5);
	check_draws(&b, 20, 1, 1000, 3600000);
}

static void test_init_guards(void)
{
	struct backoff b;

	/* base 0 would never grow; a max under base is raised to it */
	backoff_init(&b, 0, 100, 1);
	CHECK(b.base_ms >= 1);
	check_draws(&b, 20, -1, 0, 100);
	backoff_init(&b, 500, 10, 1);
	check_draws(&b, 0, -1, 0, 500);
	/* seed 0 would stick xorshift at 0 */
	backoff_init(&b, 100, 1000, 0);
	CHECK(b.rng != 0);
	CHECK(backoff_random(&b) != backoff_random(&b));
}

/* Two seeds give two sequences; one seed gives the same one again. */
static void test_seeds(void)
{
	struct backoff a, b, c;
	int i, same = 0, diff = 0;

	backoff_init(&a, 100, 10000, 1);
	backoff_init(&b, 100, 10000, 1);
	backoff_init(&c, 100, 10000, 2);
	for (i = 0; i < 100; i++) {
		long x = backoff_delay_ms(&a, 5, -1);

		same += x == backoff_delay_ms(&b, 5, -1);
		diff += x != backoff_delay_ms(&c, 5, -1);
	}
	CHECK_INT_EQ(same, 100);
	CHECK(diff > 90);
}

static const struct h_test tests[] = {
	TEST(test_full_jitter),
	TEST(test_huge_attempts),
	TEST(test_cap_near_long_max),
	TEST(test_retry_after),
	TEST(test_init_guards),
	TEST(test_seeds),
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}
