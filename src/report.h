/*
 * report: the per-letter report of --report FILE, one JSON object a line
 * for every letter as it finishes:
 *
 *   {"id": 7, "outcome": "delivered", "http_status": 200, "attempts": 1,
 *    "ts": "2026-12-01 14:03:11", "text": "..."}
 *
 * Each line goes out in one write(2), so that `tail -f` sees whole lines
 * and a run killed at any moment (even by SIGKILL) leaves a file whose
 * every line is valid JSON.  "text" is the API's answer where there is
 * one (rejected, error); "reason" says why sender itself decided
 * (deferred, skipped, invalid, in_doubt).
 */
#ifndef SENDER_REPORT_H
#define SENDER_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The outcomes, as SPEC section 8 names them. */
enum report_outcome {
	REPORT_DELIVERED,
	REPORT_NOT_DELIVERED,
	REPORT_REJECTED,
	REPORT_ERROR,
	REPORT_SKIPPED,
	REPORT_DEFERRED,
	REPORT_IN_DOUBT,
	REPORT_INVALID,
};

struct report;

/*
 * Open path for appending lines ("-": standard output, left open at the
 * end).  An existing file is truncated: the report is of this run.
 * Returns NULL with err naming the file.  Free with report_close().
 */
struct report *report_open(const char *path, char *err, size_t errlen);

/* One letter's line. */
struct report_line {
	long long id; /* < 0: the letter had no usable id (invalid) */
	enum report_outcome outcome;
	long http_status; /* 0: no answer */
	unsigned attempts;
	time_t ts;	    /* when it finished */
	const char *text;   /* the API's text, or NULL */
	const char *reason; /* sender's own reason, or NULL */
};

/*
 * Write the line.  Returns -1 with err on a write error (the disk full):
 * the caller warns once and carries on, the store being the record.
 */
int report_write(struct report *r, const struct report_line *l, char *err,
		 size_t errlen);

/* The outcome's name in the report. */
const char *report_outcome_name(enum report_outcome o);

/* NULL is accepted. */
void report_close(struct report *r);

#endif
