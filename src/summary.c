#include "summary.h"

#include "run.h"
#include "text.h"

#include <jansson.h>
#include <string.h>

static double rate(const struct run_stats *st)
{
	return st->seconds > 0 ? (double)st->letters / st->seconds : 0;
}

void summary_line(const struct run_stats *st, char *out, size_t outlen)
{
	snprintf(out, outlen,
		 "%lu letters: %lu delivered, %lu not delivered, %lu rejected, "
		 "%lu skipped, %lu deferred, %lu invalid in %.1f s (%.0f/s)",
		 st->letters, st->delivered, st->not_delivered,
		 st->rejected + st->errors, st->skipped, st->deferred,
		 st->invalid, st->seconds, rate(st));
}

int summary_json(const struct run_stats *st, FILE *out)
{
	json_t *o = json_pack(
		"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f, s:I}",
		"letters", (json_int_t)st->letters, "delivered",
		(json_int_t)st->delivered, "not_delivered",
		(json_int_t)st->not_delivered, "rejected",
		(json_int_t)st->rejected, "errors", (json_int_t)st->errors,
		"skipped", (json_int_t)st->skipped, "deferred",
		(json_int_t)st->deferred, "invalid", (json_int_t)st->invalid,
		"requests", (json_int_t)st->requests, "seconds",
		(double)(long long)(st->seconds * 1000) / 1000,
		"done_elsewhere", (json_int_t)st->done_elsewhere);
	int rc = -1;

	if (o == NULL)
		return -1;
	/* SPEC section 8: keys added after SPEC 7's, in order of addition */
	json_object_set_new(o, "left", json_integer((json_int_t)st->left));
	/* in_doubt always; exit and error when the run stopped early */
	json_object_set_new(o, "in_doubt",
			    json_integer((json_int_t)st->in_doubt));
	if (st->error[0]) {
		char safe[4 * sizeof(st->error)];

		text_safe(safe, sizeof(safe), st->error, strlen(st->error));
		json_object_set_new(o, "exit", json_integer(st->exit_code));
		json_object_set_new(o, "error", json_string(safe));
	}
	if (json_dumpf(o, out, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9)) ==
		    0 &&
	    fputc('\n', out) != EOF)
		rc = 0;
	json_decref(o);
	return rc;
}
