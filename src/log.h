/*
 * log: every line sender writes to stderr goes through here, so that the
 * verbosity and the format are decided in one place.  Lines start with
 * "sender: "; with format json each event is one JSON object instead.
 */
#ifndef SENDER_LOG_H
#define SENDER_LOG_H

#include <stdio.h>

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

struct progress;

struct log {
	enum log_level level; /* lines above it are dropped */
	int json;	      /* one JSON object per line */
	FILE *out;
	struct progress *progress; /* cleared before a line, or NULL */
};

void log_init(struct log *l, enum log_level level, int json, FILE *out);

/* Print one line (no newline in fmt) if level is within l->level. */
void log_msg(const struct log *l, enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(l, ...) log_msg((l), LOG_ERROR, __VA_ARGS__)
#define log_warn(l, ...) log_msg((l), LOG_WARN, __VA_ARGS__)
#define log_info(l, ...) log_msg((l), LOG_INFO, __VA_ARGS__)

#endif
