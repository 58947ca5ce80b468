/*
 * clock: sender's own time, for deadlines, timeouts, flush intervals and
 * the pauses between reconnect attempts.
 *
 * Every reading comes from CLOCK_MONOTONIC, never the wall clock: the
 * wall clock jumps when NTP or an administrator sets it, and a deadline
 * measured on it would fire early (a request taken for a timeout and
 * POSTed again) or late (a run that waits an hour for nothing).  The
 * readings only mean something relative to one another, within one
 * process.  The timestamps stored with outcomes are wall-clock time and
 * do not come from here.
 */
#ifndef SENDER_CLOCK_H
#define SENDER_CLOCK_H

/* Milliseconds on the monotonic clock. */
long clock_ms(void);

/* Seconds on the monotonic clock, to the nanosecond. */
double clock_s(void);

/*
 * Sleep for seconds (< 0 or 0: return at once), resumed through signals:
 * callers bound seconds themselves, so the full pause is always taken.
 */
void clock_nap(double seconds);

#endif
