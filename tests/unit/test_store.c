/*
 * store: the rule by which --reclaim takes over a claim, and the
 * timestamps every backend stores.
 */
#include "harness.h"
#include "owner.h"
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LEASE 3600

/* "host:pid:start" of this host, in the old form or with a random part. */
static void here(char *out, size_t len, long pid, long long start, int old)
{
	char host[256] = "";

	gethostname(host, sizeof(host) - 1);
	if (old)
		snprintf(out, len, "%s:%ld:%lld", host, pid, start);
	else
		snprintf(out, len, "%s:%ld:%lld:0123456789abcdef", host, pid,
			 start);
}

/* A live run on this host is never abandoned, however old its claim. */
static void test_live_run_here(void)
{
	char owner[OWNER_MAX], err[256];
	time_t now = time(NULL);
	long long start = owner_process_start(getpid());

	CHECK_INT_EQ(owner_make(owner, sizeof(owner), err, sizeof(err)), 0);
	CHECK_INT_EQ(store_claim_abandoned(owner, now, LEASE), 0);
	CHECK_INT_EQ(store_claim_abandoned(owner, now - 10 * LEASE, LEASE), 0);
	/* the same process named in the old 3-field form */
	here(owner, sizeof(owner), (long)getpid(), (long long)now, 1);
	CHECK_INT_EQ(store_claim_abandoned(owner, now - 10 * LEASE, LEASE), 0);
	/* pid 1 is alive: named with its real start, it is not gone */
	start = owner_process_start(1);
	if (CHECK(start > 0)) {
		here(owner, sizeof(owner), 1, start, 0);
		CHECK_INT_EQ(store_claim_abandoned(owner, now, LEASE), 0);
	}
}

/* A run on this host whose process is gone: abandoned at once. */
static void test_gone_run_here(void)
{
	char owner[OWNER_MAX];
	time_t now = time(NULL);

	here(owner, sizeof(owner), 2147483647L, (long long)now, 0);
	CHECK_INT_EQ(store_claim_abandoned(owner, now, LEASE), 1);
	here(owner, sizeof(owner), 2147483647L, (long long)now, 1);
	CHECK_INT_EQ(store_claim_abandoned(owner, now, LEASE), 1);
}

/* Our pid, but a start long before ours: a run gone, its pid reused. */
static void test_reused_pid_here(void)
{
	char owner[OWNER_MAX];
	time_t now = time(NULL);

	here(owner, sizeof(owner), (long)getpid(), (long long)now - 1000, 0);
	CHECK_INT_EQ(store_claim_abandoned(owner, now, LEASE), 1);
	here(owner, sizeof(owner), (long)getpid(), (long long)now - 1000, 1);
	CHECK_INT_EQ(store_claim_abandoned(owner, now, LEASE), 1);
}

/* Another host: only the lease tells. */
static void test_other_host_by_lease(void)
{
	const char *owner = "no-such-host.invalid:1:1700000000:"
			    "0123456789abcdef";
	const char *old = "no-such-host.invalid:1:1700000000";
	time_t now = time(NULL);

	CHECK_INT_EQ(store_claim_abandoned(owner, now, LEASE), 0);
	CHECK_INT_EQ(store_claim_abandoned(owner, now - LEASE + 60, LEASE), 0);
	CHECK_INT_EQ(store_claim_abandoned(owner, now - LEASE, LEASE), 1);
	CHECK_INT_EQ(store_claim_abandoned(old, now - 2 * LEASE, LEASE), 1);
	CHECK_INT_EQ(store_claim_abandoned(old, now, LEASE), 0);
	/* no claim time known: never */
	CHECK_INT_EQ(store_claim_abandoned(owner, -1, LEASE), 0);
}

/* No owner, or one that does not parse: by the lease too. */
static void test_unknown_owner_by_lease(void)
{
	char owner[OWNER_MAX + 8], host[256] = "";
	time_t now = time(NULL);

	/* this host, but not an owner: the pid is not looked at */
	gethostname(host, sizeof(host) - 1);
	snprintf(owner, sizeof(owner), "%s:2147483647:%lld:0123456789abcdefzz",
		 host, (long long)now);
	CHECK_INT_EQ(store_claim_abandoned(owner, now, LEASE), 0);
	CHECK_INT_EQ(store_claim_abandoned(owner, now - LEASE, LEASE), 1);
	CHECK_INT_EQ(store_claim_abandoned(NULL, now, LEASE), 0);
	CHECK_INT_EQ(store_claim_abandoned(NULL, now - LEASE, LEASE), 1);
	CHECK_INT_EQ(store_claim_abandoned("garbage", now, LEASE), 0);
	CHECK_INT_EQ(store_claim_abandoned("garbage", now - LEASE, LEASE), 1);
	CHECK_INT_EQ(store_claim_abandoned("", -1, LEASE), 0);
}

/* store_format_ts() writes what strftime("%Y-%m-%d %H:%M:%S") would. */
static void test_format_ts_as_strftime(void)
{
	static const long long edges[] = {
		0,
		1,
		59,
		60,
		86399,
		86400,
		951782400,
		951868799,
		1709251199,
		1700000000,
		2147483647,
		2147483648LL,
		4102444800LL,
		253402300799LL,
		-1,
		-86400,
		-62135596800LL,
		-30610224000LL,
		-30610224001LL,
		-2208988800LL,
		-2203891200LL,
		-5364662400LL,
		-1LL - 86400 * 365,
	};
	unsigned long long state = 0x1234abcdULL;
	size_t i, bad = 0;

	for (i = 0; i < sizeof(edges) / sizeof(edges[0]) + 100000; i++) {
		time_t t;
		struct tm tm;
		char got[20], want[20];

		if (i < sizeof(edges) / sizeof(edges[0])) {
			t = (time_t)edges[i];
		} else {
			state = state * 6364136223846793005ULL +
				1442695040888963407ULL;
			/* 1000-01-01 to 9999-12-31 */
			t = (time_t)((long long)((state >> 20) %
						 284012524800ULL) -
				     30610224000LL);
		}
		gmtime_r(&t, &tm);
		strftime(want, sizeof(want), "%Y-%m-%d %H:%M:%S", &tm);
		store_format_ts(t, got);
		if (strcmp(got, want) != 0 && bad++ < 5)
			printf("    %lld: %s, not %s\n", (long long)t, got,
			       want);
	}
	CHECK_INT_EQ(bad, 0);
}

static void test_parse_ts_valid(void)
{
	CHECK_INT_EQ(store_parse_ts("2023-11-14 22:13:20"), 1700000000);
	CHECK_INT_EQ(store_parse_ts("1970-01-01 00:00:00"), 0);
	CHECK_INT_EQ(store_parse_ts("2024-02-29 23:59:59"), 1709251199);
	CHECK_INT_EQ(store_parse_ts("2038-01-19 03:14:08"), 2147483648LL);
}

static void test_parse_ts_out_of_range(void)
{
	static const char *const bad[] = {
		"2023-13-01 00:00:00", "2023-00-10 00:00:00",
		"2023-11-31 00:00:00", "2023-02-29 00:00:00",
		"2023-11-14 24:00:00", "2023-11-14 22:60:00",
		"2023-11-14 22:13:61", "2023-11-00 22:13:20",
	};
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!CHECK_INT_EQ(store_parse_ts(bad[i]), -1))
			printf("    accepted: '%s'\n", bad[i]);
}

static void test_parse_ts_garbage(void)
{
	static const char *const bad[] = {
		"",
		"garbage",
		"2023-11-14",
		"2023-11-14 22:13",
		"2023-11-14T22:13:20",
		"2023-11-14 22:13:20Z",
		"2023-11-14 22:13:20 ",
		" 2023-11-14 22:13:20x",
		"2023/11/14 22:13:20",
	};
	size_t i;

	CHECK_INT_EQ(store_parse_ts(NULL), -1);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (!CHECK_INT_EQ(store_parse_ts(bad[i]), -1))
			printf("    accepted: '%s'\n", bad[i]);
}

static void test_format_ts(void)
{
	char out[20];

	store_format_ts(1700000000, out);
	CHECK_STR_EQ(out, "2023-11-14 22:13:20");
	store_format_ts(0, out);
	CHECK_STR_EQ(out, "1970-01-01 00:00:00");
}

/* Whatever the process's zone: UTC both ways, every second of a span. */
static void test_ts_round_trip(void)
{
	char out[20];
	time_t t;
	int bad = 0;

	setenv("TZ", "America/New_York", 1);
	tzset();
	for (t = 1699990000; t < 1700090000; t += 7) {
		store_format_ts(t, out);
		bad += store_parse_ts(out) != t;
	}
	store_format_ts(time(NULL), out);
	bad += store_parse_ts(out) < 0;
	CHECK_INT_EQ(bad, 0);
}

static const struct h_test tests[] = {
	TEST(test_live_run_here),	   TEST(test_gone_run_here),
	TEST(test_reused_pid_here),	   TEST(test_other_host_by_lease),
	TEST(test_unknown_owner_by_lease), TEST(test_format_ts_as_strftime),
	TEST(test_parse_ts_valid),	   TEST(test_parse_ts_out_of_range),
	TEST(test_parse_ts_garbage),	   TEST(test_format_ts),
	TEST(test_ts_round_trip),	   { 0 },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}
