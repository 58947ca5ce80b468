#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct report {
	int fd;
	int owned; /* close it at the end (not standard output) */
	char *path;
};

static const char *const names[] = {
	[REPORT_DELIVERED] = "delivered",
	[REPORT_NOT_DELIVERED] = "not_delivered",
	[REPORT_REJECTED] = "rejected",
	[REPORT_ERROR] = "error",
	[REPORT_SKIPPED] = "skipped",
	[REPORT_DEFERRED] = "deferred",
	[REPORT_IN_DOUBT] = "in_doubt",
	[REPORT_INVALID] = "invalid",
};

const char *report_outcome_name(enum report_outcome o)
{
	return names[o];
}

struct report *report_open(const char *path, char *err, size_t errlen)
{
	struct report *r = calloc(1, sizeof(*r));

	if (r == NULL || (r->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		report_close(r);
		return NULL;
	}
	if (strcmp(path, "-") == 0) {
		r->fd = STDOUT_FILENO;
		return r;
	}
	r->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC,
		     0644);
	if (r->fd < 0) {
		snprintf(err, errlen, "cannot write the report '%s': %s", path,
			 strerror(errno));
		report_close(r);
		return NULL;
	}
	r->owned = 1;
	return r;
}

/* Text from outside (an API body) may not be UTF-8: keep what JSON can. */
static json_t *text_value(const char *s)
{
	json_t *v = json_string(s);
	char *copy;
	size_t i;

	if (v)
		return v;
	copy = strdup(s);
	if (copy == NULL)
		return NULL;
	for (i = 0; copy[i]; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	v = json_string(copy);
	free(copy);
	return v;
}

static json_t *line_object(const struct report_line *l)
{
	char ts[24];
	struct tm tm;
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	gmtime_r(&l->ts, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%d %H:%M:%S", &tm);
	json_object_set_new(o, "id",
			    l->id < 0 ? json_null() : json_integer(l->id));
	json_object_set_new(o, "outcome", json_string(names[l->outcome]));
	json_object_set_new(o, "http_status",
			    l->http_status ? json_integer(l->http_status)
					   : json_null());
	json_object_set_new(o, "attempts", json_integer(l->attempts));
	json_object_set_new(o, "ts", json_string(ts));
	if (l->text)
		json_object_set_new(o, "text", text_value(l->text));
	if (l->reason)
		json_object_set_new(o, "reason", text_value(l->reason));
	return o;
}

int report_write(struct report *r, const struct report_line *l, char *err,
		 size_t errlen)
{
	json_t *o = line_object(l);
	char *text = NULL;
	size_t len, off = 0;
	int rc = -1;

	if (o)
		text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (text == NULL) {
		snprintf(err, errlen, "out of memory writing the report");
		goto out;
	}
	len = strlen(text);
	text[len++] = '\n'; /* over the NUL: the line is written whole */
	while (off < len) {
		ssize_t n = write(r->fd, text + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen,
				 "cannot write the report '%s': %s", r->path,
				 strerror(errno));
			goto out;
		}
		off += (size_t)n;
	}
	rc = 0;
out:
	free(text);
	json_decref(o);
	return rc;
}

void report_close(struct report *r)
{
	if (r == NULL)
		return;
	if (r->owned)
		close(r->fd);
	free(r->path);
	free(r);
}
