/*
 * progress: the live line on stderr while a run goes on.
 *
 * Redrawn in place ("\r" and erase-to-end) at most four times a second;
 * cleared before any other line is printed and at the end, so that the
 * terminal keeps only real messages and the summary.  It is meant for a
 * terminal: sender.c turns it on only for a TTY or with --progress.
 *
 * The line starts with the time elapsed and is cut to the terminal's
 * width (asked with TIOCGWINSZ at each redraw): a line that wrapped would
 * leave its first part behind on every redraw, since "\r" only goes back
 * to the start of the last row.  When the caller sees SIGWINCH it counts
 * it in *resized, and the line is redrawn at once at the new width.
 */
#ifndef SENDER_PROGRESS_H
#define SENDER_PROGRESS_H

#include <signal.h>
#include <stdio.h>

#define PROGRESS_SAMPLES 8
/* Most bytes of the line after "sender: " (it needs about 120). */
#define PROGRESS_LINE_MAX 255

struct buf;

/* What the line shows. */
struct progress_state {
	unsigned long read, done, in_flight, deferred;
	long long bytes_read, bytes_total; /* total < 0: unknown (stdin) */
	int stopping; /* draining after a signal: no ETA, what it waits for */
};

struct progress {
	FILE *out;
	int enabled;
	int shown; /* a line is on the screen */
	long start_ms, last_ms;
	const volatile sig_atomic_t *resized; /* count of SIGWINCH, or NULL */
	sig_atomic_t resized_seen;
	/* (time, done) samples a second or more apart, for the rate */
	long sample_ms[PROGRESS_SAMPLES];
	unsigned long sample_done[PROGRESS_SAMPLES];
	unsigned nsamples;
};

void progress_init(struct progress *p, FILE *out, int enabled);

/*
 * Redraw if enabled and at least 250 ms have passed since the last time,
 * or the terminal was resized.
 */
void progress_update(struct progress *p, const struct progress_state *s);

/* Erase the line, if one is shown (before printing anything else). */
void progress_clear(struct progress *p);

/*
 * Append the line (without "\r", "sender: " and the time elapsed) to
 * out, which progress_update() caps at the terminal's width; rate < 0:
 * not known yet.  Tests look at it.
 */
void progress_format(const struct progress_state *s, double rate,
		     struct buf *out);

#endif
