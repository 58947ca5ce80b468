/*
 * summary: the closing words of a run, as SPEC section 7 fixes them: the
 * line on stderr and the --json object on stdout.
 */
#ifndef SENDER_SUMMARY_H
#define SENDER_SUMMARY_H

#include <stddef.h>
#include <stdio.h>

struct run_stats;

/* "1000 letters: 812 delivered, ... in 12.3 s (81/s)", no prefix. */
void summary_line(const struct run_stats *st, char *out, size_t outlen);

/*
 * One JSON object and a newline; returns -1 if it could not be written.
 * With st->error set (the run stopped early), also "exit" and "error".
 */
int summary_json(const struct run_stats *st, FILE *out);

#endif
