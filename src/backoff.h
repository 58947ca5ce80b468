/*
 * backoff: how long a letter waits before its next attempt.
 *
 * Exponential backoff with full jitter: a uniform draw from
 * [0, min(max_ms, base_ms * 2^attempt)], so that many letters failing at
 * once spread their retries instead of coming back together.  A
 * Retry-After from the API is a floor under that draw, whatever max_ms
 * says, up to BACKOFF_RETRY_AFTER_MAX, a guard against overflow: the
 * caller cuts it first to [retry] max_retry_after (an API asking for an
 * hour must not stall a run for an hour per letter).
 */
#ifndef SENDER_BACKOFF_H
#define SENDER_BACKOFF_H

#include <stdint.h>

/* The longest Retry-After ever honoured, in seconds (the key's maximum). */
#define BACKOFF_RETRY_AFTER_MAX 86400

struct backoff {
	long base_ms;
	long max_ms;
	uint64_t rng; /* xorshift64* state, never 0 */
};

void backoff_init(struct backoff *b, long base_ms, long max_ms, uint64_t seed);

/*
 * Delay in milliseconds before retry number `attempt` (0 for the first
 * retry).  retry_after_s is the API's Retry-After in seconds, or < 0.
 */
long backoff_delay_ms(struct backoff *b, unsigned attempt, long retry_after_s);

/* The next pseudo-random 64-bit number (also used for tests). */
uint64_t backoff_random(struct backoff *b);

#endif
