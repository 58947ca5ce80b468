/*
 * bucket: a token bucket, for --rate (at most N requests a second, on
 * average over the run).
 *
 * Tokens accrue at `rate` a second up to a small depth (a tenth of a
 * second's worth, at least one), and each request takes one.  A sleep per
 * letter would waste the concurrency: with the bucket, requests go out as
 * fast as the window allows until the tokens run out, and then at the
 * rate.  Time is given by the caller in milliseconds on a monotonic
 * clock, so that tests control it.
 */
#ifndef SENDER_BUCKET_H
#define SENDER_BUCKET_H

struct bucket {
	double rate;   /* tokens a millisecond; 0: unlimited */
	double depth;  /* most tokens kept */
	double tokens; /* available now */
	long last_ms;  /* when tokens was last brought up to date */
};

/* per_second 0 means no limit: bucket_take() always succeeds. */
void bucket_init(struct bucket *b, unsigned long per_second, long now_ms);

/* Take a token if there is one: 1, else 0. */
int bucket_take(struct bucket *b, long now_ms);

/* Milliseconds until a token is available (0: now). */
long bucket_wait_ms(const struct bucket *b, long now_ms);

#endif
