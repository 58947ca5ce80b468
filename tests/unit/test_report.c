/*
 * report: one JSON line per letter, written whole; null where nothing
 * is known; text that is not UTF-8 still makes valid JSON.
 */
#include "harness.h"
#include "report.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static char text[4096];

static void read_back(const char *path)
{
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;

	text[n] = '\0';
	if (f)
		fclose(f);
}

static void test_lines(void)
{
	const char *path = h_tmp("report.jsonl");
	struct report_line a = { 7,	      REPORT_REJECTED, 400, 1,
				 86400 * 365, "no such box",   NULL };
	struct report_line b = { -1,   REPORT_INVALID,	     0, 0, 0,
				 NULL, "a.xml:3: id missing" };
	char err[256];
	struct report *r = report_open(path, err, sizeof(err));
	json_t *o;
	char *nl;

	if (!CHECK(r != NULL))
		return;
	CHECK_INT_EQ(report_write(r, &a, err, sizeof(err)), 0);
	CHECK_INT_EQ(report_write(r, &b, err, sizeof(err)), 0);
	report_close(r);
	read_back(path);
	nl = strchr(text, '\n');
	if (!CHECK(nl != NULL))
		return;
	CHECK_MEM_EQ(text, (size_t)(nl - text),
		     "{\"id\":7,\"outcome\":\"rejected\",\"http_status\":400,"
		     "\"attempts\":1,\"ts\":\"1971-01-01 00:00:00\","
		     "\"text\":\"no such box\"}",
		     (size_t)-1);
	o = json_loads(nl + 1, JSON_DISABLE_EOF_CHECK, NULL);
	CHECK(json_is_null(json_object_get(o, "id")));
	CHECK(json_is_null(json_object_get(o, "http_status")));
	CHECK_STR_EQ(json_string_value(json_object_get(o, "outcome")),
		     "invalid");
	CHECK_STR_EQ(json_string_value(json_object_get(o, "reason")),
		     "a.xml:3: id missing");
	json_decref(o);
	/* a second report of the same name starts afresh */
	r = report_open(path, err, sizeof(err));
	report_close(r);
	read_back(path);
	CHECK_STR_EQ(text, "");
}

static void test_not_utf8(void)
{
	const char *path = h_tmp("bytes.jsonl");
	struct report_line l = { 1, REPORT_ERROR, 200, 1, 0, "caf\xe9!", NULL };
	char err[256];
	struct report *r = report_open(path, err, sizeof(err));
	json_t *o;

	if (!CHECK(r != NULL))
		return;
	CHECK_INT_EQ(report_write(r, &l, err, sizeof(err)), 0);
	report_close(r);
	read_back(path);
	o = json_loads(text, 0, NULL);
	CHECK(o != NULL);
	CHECK_STR_EQ(json_string_value(json_object_get(o, "text")), "caf?!");
	json_decref(o);
}

static void test_cannot_open(void)
{
	char err[256] = "";

	CHECK(report_open("/nonexistent-dir/r.jsonl", err, sizeof(err)) ==
	      NULL);
	CHECK_CONTAINS(err, "/nonexistent-dir/r.jsonl");
}

static const struct h_test tests[] = {
	TEST(test_lines),
	TEST(test_not_utf8),
	TEST(test_cannot_open),
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}
