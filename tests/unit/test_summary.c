/*
 * summary: the closing line and the --json object of SPEC section 7.
 */
#include "harness.h"
#include "run.h"
#include "summary.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static struct run_stats example(void)
{
	struct run_stats st;

	memset(&st, 0, sizeof(st));
	st.letters = 1000;
	st.delivered = 812;
	st.not_delivered = 171;
	st.rejected = 2;
	st.errors = 1;
	st.skipped = 10;
	st.deferred = 4;
	st.invalid = 0;
	st.requests = 1013;
	st.seconds = 12.3;
	st.done_elsewhere = 3; /* of the skipped */
	return st;
}

static void test_line(void)
{
	struct run_stats st = example();
	char line[512];

	summary_line(&st, line, sizeof(line));
	/* SPEC's own example; errors count with the rejected */
	CHECK_STR_EQ(line, "1000 letters: 812 delivered, 171 not delivered, "
			   "3 rejected, 10 skipped, 4 deferred, 0 invalid in "
			   "12.3 s (81/s)");
	memset(&st, 0, sizeof(st));
	summary_line(&st, line, sizeof(line));
	CHECK_STR_EQ(line, "0 letters: 0 delivered, 0 not delivered, "
			   "0 rejected, 0 skipped, 0 deferred, 0 invalid in "
			   "0.0 s (0/s)");
	/* a short buffer is cut, not overrun */
	summary_line(&st, line, 8);
	CHECK_STR_EQ(line, "0 lette");
}

static void test_json(void)
{
	static const char *const keys[] = {
		"letters",  "delivered", "not_delivered",  "rejected",
		"errors",   "skipped",	 "deferred",	   "invalid",
		"requests", "seconds",	 "done_elsewhere", "left",
		"in_doubt", NULL,
	};
	static const long want[] = { 1000, 812, 171, 2, 1, 10, 4, 0, 1013 };
	struct run_stats st = example();
	char text[1024] = "";
	FILE *f = fopen(h_tmp("summary.json"), "w+");
	json_error_t jerr;
	json_t *o = NULL, *v;
	const char *key;
	size_t n = 0, i = 0;

	if (!CHECK(f != NULL))
		return;
	CHECK_INT_EQ(summary_json(&st, f), 0);
	rewind(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	/* one line: one object and a newline */
	CHECK(n > 0 && strchr(text, '\n') == text + n - 1);
	o = json_loads(text, 0, &jerr);
	if (!CHECK(json_is_object(o))) {
		printf("    '%s': %s\n", text, jerr.text);
		return;
	}
	CHECK_INT_EQ(json_object_size(o), 13);
	json_object_foreach(o, key, v)
	{
		if (i < 13)
			CHECK_STR_EQ(key, keys[i]); /* SPEC's order */
		if (i < 9)
			CHECK(json_is_integer(v) &&
			      json_integer_value(v) == want[i]);
		i++;
	}
	v = json_object_get(o, "seconds");
	CHECK(json_is_number(v) && json_number_value(v) > 12.29 &&
	      json_number_value(v) < 12.31);
	v = json_object_get(o, "done_elsewhere");
	CHECK(json_is_integer(v) && json_integer_value(v) == 3);
	CHECK(json_object_get(o, "exit") == NULL);
	json_decref(o);
}

/* SPEC 8: a run that stops early adds exit and error, made safe. */
static void test_json_early_stop(void)
{
	struct run_stats st = example();
	char text[2048] = "";
	FILE *f = fopen(h_tmp("early.json"), "w+");
	json_t *o;
	size_t n;

	if (!CHECK(f != NULL))
		return;
	st.exit_code = 4;
	snprintf(st.error, sizeof(st.error), "store gone \x1b[2J\xff");
	CHECK_INT_EQ(summary_json(&st, f), 0);
	rewind(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = '\0';
	o = json_loads(text, 0, NULL);
	if (!CHECK(json_is_object(o)))
		return;
	CHECK_INT_EQ(json_integer_value(json_object_get(o, "exit")), 4);
	CHECK_STR_EQ(json_string_value(json_object_get(o, "error")),
		     "store gone \\x1b[2J\\xff");
	json_decref(o);
}

static const struct h_test tests[] = {
	TEST(test_line),
	TEST(test_json),
	TEST(test_json_early_stop),
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}
