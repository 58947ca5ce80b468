#include "bucket.h"

void bucket_init(struct bucket *b, unsigned long per_second, long now_ms)
{
	b->rate = (double)per_second / 1000.0;
	b->depth = (double)per_second / 10.0;
	if (b->depth < 1)
		b->depth = 1;
	/* one token to start with: the first letter goes out at once, and
	 * a run of N letters takes about N / rate seconds, not less */
	b->tokens = 1;
	b->last_ms = now_ms;
}

static void refill(struct bucket *b, long now_ms)
{
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * b->rate;
		if (b->tokens > b->depth)
			b->tokens = b->depth;
	}
	b->last_ms = now_ms;
}

int bucket_take(struct bucket *b, long now_ms)
{
	if (b->rate <= 0)
		return 1;
	refill(b, now_ms);
	if (b->tokens < 1)
		return 0;
	b->tokens -= 1;
	return 1;
}

long bucket_wait_ms(const struct bucket *b, long now_ms)
{
	double tokens = b->tokens;

	if (b->rate <= 0)
		return 0;
	if (now_ms > b->last_ms)
		tokens += (double)(now_ms - b->last_ms) * b->rate;
	if (tokens >= 1)
		return 0;
	return (long)((1 - tokens) / b->rate) + 1;
}
