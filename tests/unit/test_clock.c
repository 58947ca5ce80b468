/*
 * clock: the monotonic readings never go back and agree with each other,
 * and a nap lasts at least its length, even when signals keep breaking
 * into it.
 */
#include "clock.h"
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static volatile sig_atomic_t interruptions;

static void on_signal(int sig)
{
	(void)sig;
	interruptions++;
}

static void test_never_goes_back(void)
{
	long ms = clock_ms(), prev_ms;
	double s = clock_s(), prev_s;
	int i, back = 0;

	for (i = 0; i < 100000; i++) {
		prev_ms = ms;
		prev_s = s;
		ms = clock_ms();
		s = clock_s();
		back += ms < prev_ms || s < prev_s;
	}
	CHECK_INT_EQ(back, 0);
}

/* Both units read the same clock: seconds fall between two millisecond
 * readings taken around them (a millisecond of slack for the rounding). */
static void test_units_agree(void)
{
	long before = clock_ms();
	double s = clock_s();
	long after = clock_ms();

	CHECK(s * 1000 >= (double)(before - 1));
	CHECK(s * 1000 <= (double)(after + 1));
}

static void test_nap_lasts_its_length(void)
{
	long t0 = clock_ms();
	double s0 = clock_s();
	long ms;

	clock_nap(0.02);
	ms = clock_ms() - t0;
	CHECK(ms >= 19);
	CHECK(clock_s() - s0 >= 0.0199);
	/* a fraction of a second, not seconds (a unit mixed up) */
	CHECK(ms < 2000);
	if (ms < 19 || ms >= 2000)
		printf("    (clock_nap(0.02) took %ld ms)\n", ms);
}

static void test_nap_of_nothing_returns(void)
{
	long t0 = clock_ms();

	clock_nap(0);
	clock_nap(-1);
	clock_nap(-0.5);
	CHECK(clock_ms() - t0 < 1000);
}

/* A signal every 2 ms: without the EINTR loop the nap would end early. */
static void test_nap_through_signals(void)
{
	struct sigaction sa;
	struct sigevent sev;
	struct itimerspec every = { { 0, 2000000 }, { 0, 2000000 } };
	timer_t timer;
	long t0, ms;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART */
	sigemptyset(&sa.sa_mask);
	CHECK_INT_EQ(sigaction(SIGUSR1, &sa, NULL), 0);
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGUSR1;
	if (!CHECK_INT_EQ(timer_create(CLOCK_MONOTONIC, &sev, &timer), 0))
		return;
	CHECK_INT_EQ(timer_settime(timer, 0, &every, NULL), 0);
	t0 = clock_ms();
	clock_nap(0.05);
	ms = clock_ms() - t0;
	timer_delete(timer);
	CHECK(interruptions > 0);
	CHECK(ms >= 49);
	if (ms < 49)
		printf("    (clock_nap(0.05) took %ld ms, %d signals)\n", ms,
		       (int)interruptions);
}

static const struct h_test tests[] = {
	TEST(test_never_goes_back),	 TEST(test_units_agree),
	TEST(test_nap_lasts_its_length), TEST(test_nap_of_nothing_returns),
	TEST(test_nap_through_signals),	 { NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}
