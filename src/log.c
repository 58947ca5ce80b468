#include "log.h"

#include "progress.h"
#include "text.h"

#include <jansson.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

static const char *const level_names[] = { "error", "warning", "info",
					   "debug" };
static const char *const event_names[EV_COUNT] = {
	[EV_NOTE] = "note",	      [EV_INVALID] = "invalid",
	[EV_DUPLICATE] = "duplicate", [EV_REJECTED] = "rejected",
	[EV_ERROR] = "error",	      [EV_DEFERRED] = "deferred",
	[EV_HELD] = "held",	      [EV_INPUT] = "input",
	[EV_STORAGE] = "storage",     [EV_API] = "api",
	[EV_SIGNAL] = "signal",	      [EV_SUMMARY] = "summary",
	[EV_IN_DOUBT] = "in_doubt",
};

void log_init(struct log *l, enum log_level level, int json, FILE *out)
{
	memset(l, 0, sizeof(*l));
	l->level = level;
	l->json = json;
	l->all = json || level >= LOG_INFO;
	l->out = out;
}

static void log_format(char *out, size_t len, const char *fmt, va_list ap)
{
	/* analyzer false positive: ap comes from va_start in log_event() */
	// NOLINTBEGIN(clang-analyzer-valist.Uninitialized)
	if (vsnprintf(out, len, fmt, ap) < 0)
		snprintf(out, len, "(message lost: bad format)");
	// NOLINTEND(clang-analyzer-valist.Uninitialized)
}

static void print_json(struct log *l, enum log_level level, enum log_event ev,
		       long long id, const char *line)
{
	char ts[32];
	struct tm tm;
	time_t now = time(NULL);
	json_t *o;

	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	o = json_pack("{s:s, s:s, s:s, s:s%}", "ts", ts, "level",
		      level_names[level], "event", event_names[ev], "message",
		      line, strlen(line));
	if (o && id >= 0)
		json_object_set_new(o, "id", json_integer(id));
	if (o == NULL) { /* not UTF-8 after all: say so rather than lose it */
		fprintf(l->out,
			"{\"level\": \"%s\", \"message\": \"(not UTF-8)\"}\n",
			level_names[level]);
		return;
	}
	json_dumpf(o, l->out, JSON_COMPACT | JSON_PRESERVE_ORDER);
	fputc('\n', l->out);
	json_decref(o);
}

void log_event(struct log *l, enum log_level level, enum log_event ev,
	       long long id, const char *fmt, ...)
{
	char raw[2048], line[4 * sizeof(raw)];
	va_list ap;

	if (level > l->level)
		return;
	if (ev != EV_NOTE && !l->all && l->shown[ev] >= LOG_REPEAT_MAX) {
		l->hidden[ev]++;
		return;
	}
	l->shown[ev]++;
	va_start(ap, fmt);
	log_format(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	text_safe(line, sizeof(line), raw, strlen(raw));
	progress_clear(l->progress);
	if (l->json)
		print_json(l, level, ev, id, line);
	else
		fprintf(l->out, "sender: %s\n", line);
}

void log_finish(struct log *l)
{
	int ev;

	for (ev = 0; ev < EV_COUNT; ev++)
		if (l->hidden[ev])
			log_event(l, LOG_WARN, EV_NOTE, -1,
				  "%lu more '%s' messages not shown (-v shows "
				  "all)",
				  l->hidden[ev], event_names[ev]);
}
