/*
 * owner: every owner a run makes is new (its random part), parses back to
 * what made it, the old 3-field form still parses, and the start of a
 * live process is read from the right field of /proc/PID/stat.
 */
#include "harness.h"
#include "owner.h"

#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

static char err[256];

static void test_made_owners_differ(void)
{
	char a[OWNER_MAX], b[OWNER_MAX];

	CHECK_INT_EQ(owner_make(a, sizeof(a), err, sizeof(err)), 0);
	CHECK_INT_EQ(owner_make(b, sizeof(b), err, sizeof(err)), 0);
	/* same host, pid and (very likely) second: only the random part */
	CHECK(strcmp(a, b) != 0);
}

static void test_parse_round_trip(void)
{
	char text[OWNER_MAX], again[OWNER_MAX], host[256] = "";
	struct owner_id o;
	time_t now = time(NULL);

	CHECK_INT_EQ(owner_make(text, sizeof(text), err, sizeof(err)), 0);
	CHECK_INT_EQ(owner_parse(text, &o), 0);
	gethostname(host, sizeof(host) - 1);
	CHECK_STR_EQ(o.host, host);
	CHECK_INT_EQ(o.pid, getpid());
	CHECK(o.start >= now - 1 && o.start <= now + 1);
	CHECK_INT_EQ(o.has_random, 1);
	CHECK_INT_EQ(strlen(o.random), 16);
	snprintf(again, sizeof(again), "%s:%ld:%lld:%s", o.host, o.pid, o.start,
		 o.random);
	CHECK_STR_EQ(again, text);
}

/* Records written before the random part: "host:pid:start". */
static void test_parse_old_form(void)
{
	struct owner_id o;

	CHECK_INT_EQ(owner_parse("web-1:4242:1700000000", &o), 0);
	CHECK_STR_EQ(o.host, "web-1");
	CHECK_INT_EQ(o.pid, 4242);
	CHECK_INT_EQ(o.start, 1700000000);
	CHECK_INT_EQ(o.has_random, 0);
	CHECK_STR_EQ(o.random, "");
	CHECK_INT_EQ(owner_parse("web-1:4242:1700000000:1f3a9c2e5b7d4e60", &o),
		     0);
	CHECK_STR_EQ(o.random, "1f3a9c2e5b7d4e60");
}

static void test_parse_refuses_garbage(void)
{
	static const char *const bad[] = {
		"",
		"status",
		"replay",
		"web-1:4242",
		"web-1:x:1700000000",
		"web-1:4242:1700000000:",
		"web-1:4242:1700000000x",
		"web-1:4242:1700000000:1f3a9c2e5b7d4e6",
		"web-1:4242:1700000000:1f3a9c2e5b7d4e600",
		"web-1:4242:1700000000:1f3a9c2e5b7d4e6g",
		"web-1:4242:1700000000:1f3a9c2e5b7d4e60:9",
		":4242:1700000000",
	};
	struct owner_id o;
	size_t i;

	CHECK_INT_EQ(owner_parse(NULL, &o), -1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!CHECK_INT_EQ(owner_parse(bad[i], &o), -1))
			printf("    parsed: '%s'\n", bad[i]);
}

static void test_make_too_small(void)
{
	char small[8];

	err[0] = '\0';
	CHECK_INT_EQ(owner_make(small, sizeof(small), err, sizeof(err)), -1);
	CHECK_CONTAINS(err, "does not fit");
}

/*
 * This test's own process started within a second or two: the start read
 * from /proc must say so (field 22; field 21 is always 0 and gave the boot
 * time).  The command name is set to one with spaces and ')' first.
 */
static void test_process_start_of_self(void)
{
	time_t now = time(NULL);
	long long start;

	prctl(PR_SET_NAME, "a) b) (c", 0, 0, 0);
	start = owner_process_start(getpid());
	CHECK(start >= now - 5 && start <= now + 1);
	if (start < now - 5 || start > now + 1)
		printf("    start %lld, now %lld\n", start, (long long)now);
}

static void test_process_start_of_nothing(void)
{
	CHECK_INT_EQ(owner_process_start(2147483647L), -1);
	CHECK_INT_EQ(owner_process_start(-1), -1);
}

static void test_gone_here(void)
{
	struct owner_id o;
	char text[OWNER_MAX];

	CHECK_INT_EQ(owner_make(text, sizeof(text), err, sizeof(err)), 0);
	CHECK_INT_EQ(owner_parse(text, &o), 0);
	CHECK_INT_EQ(owner_gone_here(&o), 0);
	o.start -= 1000; /* the pid of a run long gone, reused by us */
	CHECK_INT_EQ(owner_gone_here(&o), 1);
	o.pid = 2147483647L;
	CHECK_INT_EQ(owner_gone_here(&o), 1);
}

static const struct h_test tests[] = {
	TEST(test_made_owners_differ),
	TEST(test_parse_round_trip),
	TEST(test_parse_old_form),
	TEST(test_parse_refuses_garbage),
	TEST(test_make_too_small),
	TEST(test_process_start_of_self),
	TEST(test_process_start_of_nothing),
	TEST(test_gone_here),
	{ 0 },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}
