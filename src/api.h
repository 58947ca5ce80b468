/*
 * api: POSTs letters to the mail API, many at a time, on one thread.
 *
 * libcurl's multi interface drives up to `concurrency` transfers over
 * reused keep-alive connections.  Each letter occupies one slot from the
 * moment it is handed over until its outcome is known: in flight, or
 * waiting out a backoff.  The window (window.h) decides how many slots
 * may be in flight at once; backoff (backoff.h) when a letter comes back.
 * The caller hands letters in with api_add(), turns the crank with
 * api_run() and takes outcomes out with api_take().
 */
#ifndef SENDER_API_H
#define SENDER_API_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct api_opts {
	const char *url;
	long timeout_ms;       /* one request */
	unsigned concurrency;  /* slots, and the window's ceiling */
	unsigned max_attempts; /* POSTs per letter before deferring */
	long base_delay_ms, max_delay_ms;
	uint64_t seed;	    /* for the backoff jitter */
	unsigned long rate; /* most requests started a second; 0: no limit */
	/*
	 * Told of retries and of the window's changes, for -vv; NULL: no
	 * one listens.  msg is valid during the call only.
	 */
	void (*trace)(void *arg, uint32_t id, const char *msg);
	void *trace_arg;
	long max_retry_after_s; /* cap on one Retry-After */
	long max_letter_ms;	/* a letter waits at most this long in all */
	int in_doubt_hold; /* a request that may have arrived is not resent */
};

enum outcome {
	OUTCOME_DELIVERED,     /* 200 "1" */
	OUTCOME_NOT_DELIVERED, /* 200 "0" */
	OUTCOME_REJECTED,      /* 400 */
	OUTCOME_ERROR,	       /* 200 with another body, or another 2xx */
	OUTCOME_DEFERRED,      /* attempts ran out, or never sent: release */
	OUTCOME_MISCONFIGURED, /* other 4xx, 3xx: the URL is wrong; deferred */
	OUTCOME_IN_DOUBT,      /* may have reached the API, no answer */
};

/* Longest detail kept of an answer or a transfer error, with its NUL. */
#define API_DETAIL_MAX 512

/* One letter whose outcome is known. */
struct api_done {
	uint32_t id;
	enum outcome outcome;
	time_t ts;	   /* when the API answered */
	unsigned attempts; /* POSTs made */
	long http_status;  /* of the last answer, 0 if none */
	/* the answer body or the transfer error, on one line */
	char detail[API_DETAIL_MAX];
	int in_doubt; /* deferred, but an attempt may have reached the API */
};

struct api;

/* NULL with err on failure.  The caller frees with api_free(). */
struct api *api_new(const struct api_opts *o, char *err, size_t errlen);
void api_free(struct api *a);

/* Whether a slot is free for api_add(). */
int api_has_room(const struct api *a);

/*
 * Hand a letter over: its body is copied into the slot's own buffer.
 * Returns 0, or -1 when no slot is free (api_has_room() was not asked)
 * or memory ran out: the letter is not the api's.
 */
int api_add(struct api *a, uint32_t id, const char *body, size_t len);

/*
 * Start what may start, move transfers on, and wait at most timeout_ms for
 * something to happen.  Returns -1 with err only on a libcurl failure.
 */
int api_run(struct api *a, long timeout_ms, char *err, size_t errlen);

/* Take one finished letter; returns 0 when there is none. */
int api_take(struct api *a, struct api_done *out);

/*
 * Send nothing more: letters waiting for a first or next attempt come out
 * of api_take() as deferred at once, transfers in flight finish.
 */
void api_stop(struct api *a);

/*
 * Give up on transfers in flight too: they come out as in doubt, since the
 * API may have received them.
 */
void api_abort(struct api *a);

/* Letters held (in flight or waiting), and in flight alone. */
unsigned api_held(const struct api *a);
unsigned api_in_flight(const struct api *a);

/*
 * Make a wait in api_run() return now.  The one call that is safe from
 * another thread (the store worker's, when a job comes back).
 */
void api_wakeup(struct api *a);

/*
 * The monotonic clock (clock_ms()) as read by the last api_run(), after
 * its wait: one reading a turn, for the caller's timers too.
 */
long api_now(const struct api *a);

/* POSTs started so far. */
unsigned long api_requests(const struct api *a);

#endif
