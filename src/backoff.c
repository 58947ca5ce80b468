#include "backoff.h"

void backoff_init(struct backoff *b, long base_ms, long max_ms, uint64_t seed)
{
	b->base_ms = base_ms > 0 ? base_ms : 1;
	b->max_ms = max_ms >= b->base_ms ? max_ms : b->base_ms;
	b->rng = seed ? seed : 0x9E3779B97F4A7C15ull;
}

uint64_t backoff_random(struct backoff *b)
{
	uint64_t x = b->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	b->rng = x;
	return x * 0x2545F4914F6CDD1Dull;
}

long backoff_delay_ms(struct backoff *b, unsigned attempt, long retry_after_s)
{
	long ceiling = b->base_ms;
	long delay;

	/* double until the cap, never past it: no overflow, at most 63 turns */
	while (attempt-- > 0 && ceiling < b->max_ms)
		ceiling = ceiling > b->max_ms / 2 ? b->max_ms : ceiling * 2;
	delay = (long)(backoff_random(b) % ((uint64_t)ceiling + 1));
	if (retry_after_s >= 0) {
		long floor_ms = retry_after_s > BACKOFF_RETRY_AFTER_MAX
					? BACKOFF_RETRY_AFTER_MAX * 1000L
					: retry_after_s * 1000;

		if (delay < floor_ms)
			delay = floor_ms;
	}
	return delay;
}
