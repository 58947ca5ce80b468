/*
 * window: how many requests may be in flight, adapted to the API.
 *
 * A loss-based AIMD limiter, as TCP congestion control: every answer that
 * is not "busy" grows the window by 1/window (about one more request per
 * round trip); a 503, a 429 or a timeout shrinks it multiplicatively, at
 * most once per window's worth of requests, so that one burst of 503s
 * does not collapse it to one.  The configured concurrency is the ceiling.
 *
 * As BIC and CUBIC do, the window remembers the size that met the last
 * overload: it grows back quickly to one below it (half the way a round
 * trip, at least one request), then probes slowly (WINDOW_PROBE times
 * slower) up to one above it, and only past that, where the API evidently
 * takes more than before, grows as usual again.
 * Against an API that serves a fixed number at a time, the window then
 * spends most of its time at that number rather than climbing into 503s
 * once per few round trips.
 */
#ifndef SENDER_WINDOW_H
#define SENDER_WINDOW_H

/* How much slower the window grows near the size of the last overload. */
#define WINDOW_PROBE 16

struct window {
	double size;	       /* current window, 1 .. ceiling */
	double ceiling;	       /* [api] concurrency */
	double decrease;       /* multiplicative factor on a busy answer */
	double overload;       /* size at the last decrease; 0: none known */
	unsigned long sent;    /* requests started so far */
	unsigned long recover; /* no new decrease for requests sent before */
};

void window_init(struct window *w, unsigned ceiling);

/* Requests that may be in flight now (at least 1). */
unsigned window_limit(const struct window *w);

/* A request is starting; returns its sequence number for window_*(). */
unsigned long window_sent(struct window *w);

/* The answer to the request numbered seq was not a sign of overload. */
void window_success(struct window *w);

/* The request numbered seq met a busy API (503, 429) or timed out. */
void window_busy(struct window *w, unsigned long seq);

#endif
