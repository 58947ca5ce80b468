#include "owner.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* The start in an owner is time(NULL), /proc's is in clock ticks since
 * boot, and the boot time is whole seconds: a few seconds of slack. */
#define START_SLACK 5

/* The field of /proc/PID/stat that holds starttime (proc(5)). */
#define STAT_STARTTIME 22

int owner_make(char *out, size_t len, char *err, size_t errlen)
{
	char host[256] = "localhost";
	uint64_t random = 0;
	ssize_t got;
	int n;

	do
		got = getrandom(&random, sizeof(random), 0);
	while (got < 0 && errno == EINTR);
	if (got != (ssize_t)sizeof(random)) {
		snprintf(err, errlen,
			 "cannot draw the random part of this run's owner: "
			 "getrandom: %s",
			 got < 0 ? strerror(errno) : "short read");
		return -1;
	}
	if (gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "localhost");
	n = snprintf(out, len, "%s:%ld:%lld:%016" PRIx64, host, (long)getpid(),
		     (long long)time(NULL), random);
	if (n < 0 || (size_t)n >= len) {
		snprintf(err, errlen, "this run's owner does not fit %zu bytes",
			 len);
		return -1;
	}
	return 0;
}

/* text is exactly 16 hex digits. */
static int is_random_part(const char *text)
{
	return strlen(text) == 16 &&
	       strspn(text, "0123456789abcdefABCDEF") == 16;
}

int owner_parse(const char *text, struct owner_id *out)
{
	int end = -1;

	memset(out, 0, sizeof(*out));
	if (text == NULL ||
	    sscanf(text, "%255[^:]:%ld:%lld%n", out->host, &out->pid,
		   &out->start, &end) != 3 ||
	    end < 0)
		return -1;
	if (text[end] == '\0')
		return 0;
	if (text[end] != ':' || !is_random_part(text + end + 1))
		return -1;
	out->has_random = 1;
	snprintf(out->random, sizeof(out->random), "%s", text + end + 1);
	return 0;
}

/* The boot time in seconds since the epoch ("btime" of /proc/stat). */
static long long boot_time(void)
{
	unsigned long long boot = 0;
	char line[256];
	FILE *fp = fopen("/proc/stat", "r");

	if (fp == NULL)
		return -1;
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "btime %llu", &boot) == 1)
			break;
	fclose(fp);
	return boot ? (long long)boot : -1;
}

long long owner_process_start(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ticks;
	long long boot;
	int field;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	fp = fopen(path, "r");
	if (fp == NULL)
		return -1;
	p = fgets(buf, sizeof(buf), fp);
	fclose(fp);
	/*
	 * Field 2, the command name in parentheses, may hold spaces and
	 * ')': the fields count from its last ')'.  Each step moves p to
	 * the space before the next field, from field 3 (the state) on.
	 */
	p = p ? strrchr(buf, ')') : NULL;
	if (p == NULL || p[1] != ' ' || p[2] == '\0' || p[2] == 'Z')
		return -1; /* a zombie is gone too */
	for (field = 2; p && field < STAT_STARTTIME; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p, " %llu", &ticks) != 1)
		return -1;
	boot = boot_time();
	if (boot < 0)
		return -1;
	return boot +
	       (long long)(ticks / (unsigned long long)sysconf(_SC_CLK_TCK));
}

int owner_gone_here(const struct owner_id *o)
{
	long long started = owner_process_start(o->pid);

	return started < 0 || started > o->start + START_SLACK ||
	       started < o->start - START_SLACK;
}
