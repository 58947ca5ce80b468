/*
 * progress: the text of the line for given counts, and when it is drawn:
 * at most every 250 ms, at once after a clear, with a rate only once two
 * samples a second apart exist.
 */
#include "buf.h"
#include "harness.h"
#include "progress.h"

#include <fcntl.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

#define FORMATS_TO(s, rate, want) formats_to(s, rate, want, __LINE__)
static void formats_to(struct progress_state s, double rate, const char *want,
		       int from)
{
	struct buf b;

	buf_init(&b, PROGRESS_LINE_MAX);
	progress_format(&s, rate, &b);
	if (!CHECK_STR_EQ(buf_str(&b), want))
		printf("    (from line %d)\n", from);
	buf_release(&b);
}

static void test_format(void)
{
	struct progress_state s = { 10, 7, 2, 1, 0, -1, 0 };

	/* no rate yet, input of unknown size (standard input) */
	FORMATS_TO(s, -1, "10 read, 7 done, 2 in flight, 1 deferred");
	FORMATS_TO(s, 0, "10 read, 7 done, 2 in flight, 1 deferred, 0/s");
	FORMATS_TO(s, 123.4, "10 read, 7 done, 2 in flight, 1 deferred, 123/s");
	/* a share of the input, and the rest at the rate so far */
	s.done = 100;
	s.bytes_read = 250;
	s.bytes_total = 1000;
	FORMATS_TO(s, -1, "10 read, 100 done, 2 in flight, 1 deferred, 25%");
	FORMATS_TO(s, 10,
		   "10 read, 100 done, 2 in flight, 1 deferred, 10/s, 25%, "
		   "ETA 0:00:30");
	s.done = 12417; /* 12417 * 3 / 10 = 3725.1 s */
	FORMATS_TO(s, 10,
		   "10 read, 12417 done, 2 in flight, 1 deferred, 10/s, "
		   "25%, ETA 1:02:05");
	/* no ETA: no rate, nothing done, too early, or at the end */
	FORMATS_TO(s, 0,
		   "10 read, 12417 done, 2 in flight, 1 deferred, 0/s, 25%");
	s.done = 0;
	FORMATS_TO(s, 10,
		   "10 read, 0 done, 2 in flight, 1 deferred, 10/s, 25%");
	s.done = 5;
	s.bytes_read = 10;
	FORMATS_TO(s, 10, "10 read, 5 done, 2 in flight, 1 deferred, 10/s, 1%");
	s.bytes_read = 1000;
	FORMATS_TO(s, 10,
		   "10 read, 5 done, 2 in flight, 1 deferred, 10/s, "
		   "100%");
	/* an empty file: no share at all */
	s.bytes_read = s.bytes_total = 0;
	FORMATS_TO(s, 10, "10 read, 5 done, 2 in flight, 1 deferred, 10/s");
}

/* The line keeps to its buffer's cap, whatever the counts. */
static void test_format_cap(void)
{
	struct progress_state s = { (unsigned long)-1,
				    (unsigned long)-1,
				    (unsigned long)-1,
				    (unsigned long)-1,
				    1,
				    3,
				    0 };
	struct buf b;

	buf_init(&b, 40);
	progress_format(&s, 1e300, &b);
	CHECK_INT_EQ(b.len, 40);
	CHECK_INT_EQ(b.truncated, 1);
	CHECK_STR_EQ(buf_str(&b), "18446744073709551615 read, "
				  "1844674407370");
	buf_release(&b);
}

/* After a signal: what the drain waits for, no ETA that only grows. */
static void test_format_stopping(void)
{
	struct progress_state s = { 10, 7, 3, 0, 250, 1000, 1 };

	FORMATS_TO(s, 10, "stopping: 3 in flight, 7 done");
}

/* On a terminal of `cols` columns: what one draw writes, without "\r". */
static void draw_on_terminal(unsigned short cols,
			     const struct progress_state *s, char *out,
			     size_t outlen)
{
	struct winsize ws = { 24, cols, 0, 0 };
	int master = -1, slave = -1;
	struct progress p;
	FILE *fp = NULL;
	ssize_t n = 0;

	out[0] = '\0';
	if (!CHECK(openpty(&master, &slave, NULL, NULL, &ws) == 0))
		return;
	fp = fdopen(slave, "w");
	if (CHECK(fp != NULL)) {
		progress_init(&p, fp, 1);
		progress_update(&p, s);
		fflush(fp);
		fcntl(master, F_SETFL, O_NONBLOCK);
		n = read(master, out, outlen - 1);
		out[n > 0 ? n : 0] = '\0';
		fclose(fp);
	} else {
		close(slave);
	}
	close(master);
}

/* The line is cut to one column less than the terminal, never wraps. */
static void test_cut_to_the_terminal(void)
{
	struct progress_state s = { 11008, 10948, 14, 0, 270, 1000, 0 };
	static const unsigned short widths[] = { 120, 60, 40, 9, 1 };
	char out[512];
	size_t i;

	for (i = 0; i < sizeof(widths) / sizeof(widths[0]); i++) {
		const char *line;

		draw_on_terminal(widths[i], &s, out, sizeof(out));
		line = strrchr(out, 'K'); /* after "\r\033[K" */
		if (!CHECK(line != NULL))
			continue;
		line++;
		if (!CHECK(strlen(line) <= (size_t)widths[i] - 1))
			printf("    %u columns: '%s'\n", widths[i], line);
		if (widths[i] >= 40)
			CHECK(strncmp(line, "sender: 0:00:00 11008 read", 26) ==
			      0);
	}
	draw_on_terminal(120, &s, out, sizeof(out));
	CHECK_CONTAINS(out, "14 in flight, 0 deferred, 27%");
}

struct screen {
	FILE *fp;
	char *text;
	size_t len;
};

static int screen_open(struct screen *sc)
{
	memset(sc, 0, sizeof(*sc));
	sc->fp = open_memstream(&sc->text, &sc->len);
	return CHECK(sc->fp != NULL) ? 0 : -1;
}

/* What was written since the last call (the stream is flushed by us). */
static const char *written(struct screen *sc, size_t *from)
{
	const char *s;

	fflush(sc->fp);
	s = sc->text + *from;
	*from = sc->len;
	return s;
}

static void screen_close(struct screen *sc)
{
	if (sc->fp)
		fclose(sc->fp);
	free(sc->text);
}

static void test_disabled_draws_nothing(void)
{
	struct progress_state s = { 1, 1, 0, 0, 0, -1, 0 };
	struct progress p;
	struct screen sc;

	if (screen_open(&sc) < 0)
		return;
	progress_init(&p, sc.fp, 0);
	progress_update(&p, &s);
	progress_clear(&p);
	fflush(sc.fp);
	CHECK_INT_EQ(sc.len, 0);
	progress_clear(NULL); /* no progress at all: nothing to do */
	screen_close(&sc);
}

static void test_redraws_at_most_every_250_ms(void)
{
	struct progress_state s = { 1, 0, 1, 0, 0, -1, 0 };
	struct progress p;
	struct screen sc;
	size_t at = 0;

	if (screen_open(&sc) < 0)
		return;
	progress_init(&p, sc.fp, 1);
	progress_update(&p, &s);
	CHECK_STR_EQ(
		written(&sc, &at),
		"\r\033[Ksender: 0:00:00 1 read, 0 done, 1 in flight, 0 deferred");
	/* at once again: not drawn */
	s.done = 1;
	progress_update(&p, &s);
	progress_update(&p, &s);
	CHECK_STR_EQ(written(&sc, &at), "");
	/* a clear erases the line, and the next update draws at once */
	progress_clear(&p);
	CHECK_STR_EQ(written(&sc, &at), "\r\033[K");
	progress_clear(&p); /* nothing shown: nothing to erase */
	CHECK_STR_EQ(written(&sc, &at), "");
	progress_update(&p, &s);
	CHECK_STR_EQ(
		written(&sc, &at),
		"\r\033[Ksender: 0:00:00 1 read, 1 done, 1 in flight, 0 deferred");
	/* 250 ms later it is drawn again */
	sleep_ms(300);
	s.read = 2;
	progress_update(&p, &s);
	CHECK_STR_EQ(
		written(&sc, &at),
		"\r\033[Ksender: 0:00:00 2 read, 1 done, 1 in flight, 0 deferred");
	screen_close(&sc);
}

/* The rate needs two samples a second apart: letters done per second. */
static void test_rate_after_a_second(void)
{
	struct progress_state s = { 0, 0, 0, 0, 0, -1, 0 };
	struct progress p;
	struct screen sc;
	size_t at = 0;
	const char *line, *comma;
	long rate;

	if (screen_open(&sc) < 0)
		return;
	progress_init(&p, sc.fp, 1);
	progress_update(&p, &s);
	sleep_ms(500);
	s.done = s.read = 300;
	progress_update(&p, &s);
	line = written(&sc, &at);
	CHECK(strstr(line, "/s") == NULL); /* one sample only */
	sleep_ms(600);
	s.done = s.read = 1100;
	progress_update(&p, &s);
	line = written(&sc, &at);
	comma = strrchr(line, ',');
	if (!CHECK(comma != NULL && strstr(comma, "/s") != NULL)) {
		printf("    line: %s\n", line);
		goto out;
	}
	/* 1100 letters in a little more than 1.1 s */
	rate = strtol(comma + 1, NULL, 10);
	if (!CHECK(rate > 100 && rate <= 1000))
		printf("    rate %ld in: %s\n", rate, line);
out:
	screen_close(&sc);
}

static const struct h_test tests[] = {
	TEST(test_format),
	TEST(test_format_cap),
	TEST(test_format_stopping),
	TEST(test_cut_to_the_terminal),
	TEST(test_disabled_draws_nothing),
	TEST(test_redraws_at_most_every_250_ms),
	TEST(test_rate_after_a_second),
	{ NULL, NULL },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}
