#include "log.h"

#include "progress.h"

#include <jansson.h>
#include <stdarg.h>

void log_init(struct log *l, enum log_level level, int json, FILE *out)
{
	l->level = level;
	l->json = json;
	l->out = out;
	l->progress = NULL;
}

static void log_format(char *out, size_t len, const char *fmt, va_list ap)
{
	/* analyzer false positive: ap comes from va_start in log_msg() */
	if (vsnprintf(out, len, fmt, ap) < 0) // NOLINT(clang-analyzer-valist.Uninitialized)
		snprintf(out, len, "(message lost: bad format)");
}

void log_msg(const struct log *l, enum log_level level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info",
					     "debug" };
	char line[2048];
	va_list ap;

	if (level > l->level)
		return;
	va_start(ap, fmt);
	log_format(line, sizeof(line), fmt, ap);
	va_end(ap);
	progress_clear(l->progress);
	if (l->json) {
		json_t *o = json_pack("{s:s, s:s}", "level", names[level],
				      "message", line);

		if (o) {
			json_dumpf(o, l->out, JSON_COMPACT);
			fputc('\n', l->out);
			json_decref(o);
		}
		return;
	}
	fprintf(l->out, "sender: %s\n", line);
}
