#include "owner.h"
#include "store.h"
#include "store_net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * The compiled-in backends: the Makefile passes SENDER_BACKENDS, made from
 * its STORES list, as "STORE(sqlite) STORE(mysql) ...", and each STORE(x)
 * names the store_x_ops of src/store_x.c.  Built without it (the config
 * fuzzer), only SQLite is there.
 */
#ifndef SENDER_BACKENDS
#define SENDER_BACKENDS STORE(sqlite)
#endif

#define STORE(name) extern const struct store_ops store_##name##_ops;
SENDER_BACKENDS
#undef STORE

#define STORE(name) &store_##name##_ops,
static const struct store_ops *const backends[] = { SENDER_BACKENDS NULL };
#undef STORE

const struct store_ops *const *store_backends(void)
{
	return backends;
}

const struct store_ops *store_find(const char *name)
{
	size_t i;

	for (i = 0; backends[i]; i++)
		if (strcmp(backends[i]->name, name) == 0)
			return backends[i];
	return NULL;
}

const char *store_names(void)
{
	static char names[256];
	size_t i, used = 0;

	if (names[0])
		return names;
	for (i = 0; backends[i] && used < sizeof(names); i++)
		used += (size_t)snprintf(names + used, sizeof(names) - used,
					 "%s%s", i ? ", " : "",
					 backends[i]->name);
	return names;
}

int store_check(const struct store_ops *ops, const struct cfg *cfg, char *err,
		size_t errlen)
{
	return ops->check ? ops->check(cfg, err, errlen) : 0;
}

struct store *store_open(const struct store_ops *ops, const struct cfg *cfg,
			 const struct store_owner *owner, char *err,
			 size_t errlen)
{
	struct store *s = ops->open(cfg, owner, err, errlen);

	if (s)
		s->ops = ops;
	return s;
}

int store_claim(struct store *s, const uint32_t *ids, size_t n, enum claim *out,
		char *err, size_t errlen)
{
	return n ? s->ops->claim(s, ids, n, out, err, errlen) : 0;
}

int store_finish(struct store *s, const struct store_result *r, size_t n,
		 char *err, size_t errlen)
{
	return n ? s->ops->finish(s, r, n, err, errlen) : 0;
}

int store_release(struct store *s, const uint32_t *ids, size_t n, char *err,
		  size_t errlen)
{
	return n ? s->ops->release(s, ids, n, err, errlen) : 0;
}

int store_totals(struct store *s, struct store_totals *out, char *err,
		 size_t errlen)
{
	if (s->ops->totals == NULL) {
		snprintf(err, errlen, "the %s backend cannot count its records",
			 s->ops->name);
		return -1;
	}
	out->unowned = -1; /* for the backends that cannot tell */
	return s->ops->totals(s, out, err, errlen);
}

size_t store_where(const struct store_ops *ops, const struct cfg *cfg,
		   struct store_where *out, size_t max)
{
	return ops && ops->where ? ops->where(cfg, out, max) : 0;
}

void store_close(struct store *s)
{
	if (s)
		s->ops->close(s);
}

const char *store_name(const struct store *s)
{
	return s->ops->name;
}

int store_second_connection(const struct store *s)
{
	return s->ops->second_connection;
}

unsigned long store_conflicts(const struct store *s)
{
	/* a network store embeds struct store_net first */
	return s && s->ops->net ? ((const struct store_net *)s)->conflicts : 0;
}

struct store *store_checked(struct store *s, const struct store_ops *ops,
			    const char *module)
{
	if (s && s->ops != ops) {
		fprintf(stderr,
			"sender: internal error: %s given a '%s' store\n",
			module, s->ops ? s->ops->name : "(unopened)");
		abort();
	}
	return s;
}

/* n as two digits at p; n is 0..99 */
static void two_digits(char *p, int n)
{
	p[0] = (char)('0' + n / 10);
	p[1] = (char)('0' + n % 10);
}

/*
 * Days since 1970-01-01 as a proleptic Gregorian date: Howard Hinnant's
 * days_from_civil inverted (era of 400 years, March-based year), integer
 * arithmetic only.
 */
static void civil_from_days(long long days, long long *year, int *month,
			    int *day)
{
	long long z = days + 719468;
	long long era = (z >= 0 ? z : z - 146096) / 146097;
	long long doe = z - era * 146097; /* 0..146096 */
	long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* 0..365 */
	long long mp = (5 * doy + 2) / 153;			 /* 0..11 */

	*day = (int)(doy - (153 * mp + 2) / 5 + 1);
	*month = (int)(mp < 10 ? mp + 3 : mp - 9);
	*year = yoe + era * 400 + (*month <= 2);
}

/*
 * Written digit by digit, the date by arithmetic: it runs for every
 * outcome, and strftime(), then gmtime_r() (which takes glibc's time zone
 * lock even for UTC), were a tenth of the store's work per letter
 * (callgrind).  Years outside 1000..9999 (never a clock's) go through
 * gmtime_r() and strftime().
 */
void store_format_ts(time_t ts, char out[20])
{
	long long t = (long long)ts;
	long long days = t / 86400, secs = t % 86400, year;
	int month, day;
	struct tm tm;

	if (secs < 0) { /* before 1970: floor, not truncation */
		secs += 86400;
		days--;
	}
	civil_from_days(days, &year, &month, &day);
	if (year < 1000 || year > 9999) {
		gmtime_r(&ts, &tm);
		strftime(out, 20, "%Y-%m-%d %H:%M:%S", &tm);
		return;
	}
	two_digits(out, (int)(year / 100));
	two_digits(out + 2, (int)(year % 100));
	out[4] = '-';
	two_digits(out + 5, month);
	out[7] = '-';
	two_digits(out + 8, day);
	out[10] = ' ';
	two_digits(out + 11, (int)(secs / 3600));
	out[13] = ':';
	two_digits(out + 14, (int)(secs / 60 % 60));
	out[16] = ':';
	two_digits(out + 17, (int)(secs % 60));
	out[19] = '\0';
}

/*
 * strptime() takes fields it would have to normalise (November 31st,
 * second 61) and numbers without their leading zeros: the text is taken
 * only if it is exactly what store_format_ts() makes of its value.
 */
time_t store_parse_ts(const char *text)
{
	struct tm tm;
	const char *end;
	char again[20];
	time_t t;

	memset(&tm, 0, sizeof(tm));
	end = text ? strptime(text, "%Y-%m-%d %H:%M:%S", &tm) : NULL;
	if (end == NULL || *end)
		return -1;
	t = timegm(&tm);
	store_format_ts(t, again);
	return strcmp(again, text) == 0 ? t : -1;
}

int store_claim_abandoned(const char *owner, time_t claimed_at, long lease_s)
{
	struct owner_id o;
	char me[256] = "";

	if (owner_parse(owner, &o) == 0 &&
	    gethostname(me, sizeof(me) - 1) == 0 && strcmp(o.host, me) == 0)
		return owner_gone_here(&o);
	return claimed_at >= 0 && time(NULL) - claimed_at >= lease_s;
}

int store_hold(struct store *s, const struct store_result *r, size_t n,
	       char *err, size_t errlen)
{
	return n && s->ops->hold ? s->ops->hold(s, r, n, err, errlen) : 0;
}
