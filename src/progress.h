/*
 * progress: the live line on stderr while a run goes on.
 *
 * Redrawn in place ("\r" and erase-to-end) at most four times a second;
 * cleared before any other line is printed and at the end, so that the
 * terminal keeps only real messages and the summary.  It is meant for a
 * terminal: sender.c turns it on only for a TTY or with --progress.
 */
#ifndef SENDER_PROGRESS_H
#define SENDER_PROGRESS_H

#include <stdio.h>

#define PROGRESS_SAMPLES 8
/* Most bytes of the line after "sender: " (it needs about 120). */
#define PROGRESS_LINE_MAX 255

struct buf;

/* What the line shows. */
struct progress_state {
	unsigned long read, done, in_flight, deferred;
	long long bytes_read, bytes_total; /* total < 0: unknown (stdin) */
};

struct progress {
	FILE *out;
	int enabled;
	int shown; /* a line is on the screen */
	long last_ms;
	/* (time, done) samples a second or more apart, for the rate */
	long sample_ms[PROGRESS_SAMPLES];
	unsigned long sample_done[PROGRESS_SAMPLES];
	unsigned nsamples;
};

void progress_init(struct progress *p, FILE *out, int enabled);

/* Redraw if enabled and at least 250 ms have passed since the last time. */
void progress_update(struct progress *p, const struct progress_state *s);

/* Erase the line, if one is shown (before printing anything else). */
void progress_clear(struct progress *p);

/*
 * Append the line (without "\r" and "sender: ") to out; rate < 0: not
 * known yet.  progress_update() draws it; tests look at it.
 */
void progress_format(const struct progress_state *s, double rate,
		     struct buf *out);

#endif
