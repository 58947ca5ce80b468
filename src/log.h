/*
 * log: every line sender writes to stderr goes through here, so that the
 * verbosity and the format are decided in one place.  Lines start with
 * "sender: "; with format json each event is one JSON object instead, with
 * the keys ts, level, event, message and, for a letter, id.  Every line
 * is made safe first (text.h): ids, XML text and the API's answers come
 * from outside and may hold escape sequences or invalid UTF-8.
 *
 * A letter-level event that repeats (a million duplicate ids) is printed
 * LOG_REPEAT_MAX times, then counted; log_finish() tells how many were
 * not shown.  -v and the json format show them all.
 */
#ifndef SENDER_LOG_H
#define SENDER_LOG_H

#include <stdio.h>

#define LOG_REPEAT_MAX 100

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

enum log_event {
	EV_NOTE,      /* anything else */
	EV_INVALID,   /* a letter not sent: bad id, missing field */
	EV_DUPLICATE, /* an id again in the same run */
	EV_REJECTED,  /* 400 */
	EV_ERROR,     /* an unexpected answer */
	EV_DEFERRED,  /* attempts ran out */
	EV_HELD,      /* claimed by another run */
	EV_INPUT,     /* a file missing or not well formed */
	EV_STORAGE,   /* the store failed or is retried */
	EV_API,	      /* the API misconfigured or down */
	EV_SIGNAL,
	EV_SUMMARY,  /* the closing line */
	EV_IN_DOUBT, /* a request may have reached the API, no answer */
	EV_COUNT
};

struct progress;

struct log {
	enum log_level level; /* lines above it are dropped */
	int json;	      /* one JSON object per line */
	int all;	      /* never hold back repeated events */
	FILE *out;
	struct progress *progress; /* cleared before a line, or NULL */
	unsigned long shown[EV_COUNT], hidden[EV_COUNT];
};

void log_init(struct log *l, enum log_level level, int json, FILE *out);

/* One event; id < 0 when it is not about one letter. */
void log_event(struct log *l, enum log_level level, enum log_event ev,
	       long long id, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

/* Say how many repeated events were not shown. */
void log_finish(struct log *l);

#define log_error(l, ...) log_event((l), LOG_ERROR, EV_NOTE, -1, __VA_ARGS__)
#define log_warn(l, ...)  log_event((l), LOG_WARN, EV_NOTE, -1, __VA_ARGS__)
#define log_info(l, ...)  log_event((l), LOG_INFO, EV_NOTE, -1, __VA_ARGS__)

#endif
