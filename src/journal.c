#include "journal.h"

#include "store.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HEADER "# sender journal 1: apply with 'sender --replay FILE'"

struct journal_reader {
	FILE *fp;
	char *path;
	char *line; /* owned, from getline() */
	size_t alloc;
	long lineno;
};

static void write_escaped(FILE *fp, const char *s)
{
	for (; s && *s; s++) {
		if (*s == '\t')
			fputs("\\t", fp);
		else if (*s == '\n')
			fputs("\\n", fp);
		else if (*s == '\\')
			fputs("\\\\", fp);
		else
			fputc(*s, fp);
	}
}

int journal_append(const char *path, const struct store_result *r, size_t n,
		   char *err, size_t errlen)
{
	/* answers of the API are private: 0600, never through a symlink */
	int fd = open(path,
		      O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
		      0600);
	FILE *fp = fd >= 0 ? fdopen(fd, "a") : NULL;
	struct stat st;
	char ts[20];
	size_t i;

	if (fp == NULL) {
		if (fd >= 0)
			close(fd);
		snprintf(err, errlen, "cannot write journal '%s': %s", path,
			 strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == 0 && st.st_size == 0)
		fprintf(fp, "%s\n", HEADER);
	for (i = 0; i < n; i++) {
		store_format_ts(r[i].ts, ts);
		fprintf(fp, "%" PRIu32 "\t%s\t", r[i].id, ts);
		if (r[i].status < 0)
			fputc('-', fp);
		else
			fprintf(fp, "%d", r[i].status);
		fprintf(fp, "\t%u\t", r[i].attempts);
		write_escaped(fp, r[i].error);
		fputc('\n', fp);
	}
	if (fflush(fp) != 0 || fsync(fileno(fp)) != 0) {
		snprintf(err, errlen, "cannot write journal '%s': %s", path,
			 strerror(errno));
		fclose(fp);
		return -1;
	}
	if (fclose(fp) != 0) {
		snprintf(err, errlen, "cannot write journal '%s': %s", path,
			 strerror(errno));
		return -1;
	}
	return 0;
}

struct journal_reader *journal_open(const char *path, char *err, size_t errlen)
{
	struct journal_reader *j = calloc(1, sizeof(*j));

	if (j == NULL || (j->path = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		journal_close(j);
		return NULL;
	}
	j->fp = fopen(path, "r");
	if (j->fp == NULL) {
		snprintf(err, errlen, "cannot read journal '%s': %s", path,
			 strerror(errno));
		journal_close(j);
		return NULL;
	}
	return j;
}

void journal_close(struct journal_reader *j)
{
	if (j == NULL)
		return;
	if (j->fp)
		fclose(j->fp);
	free(j->line);
	free(j->path);
	free(j);
}

/* Undo write_escaped() in place. */
static void unescape(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (*s == '\\' && s[1]) {
			s++;
			*out++ = *s == 't' ? '\t' : *s == 'n' ? '\n' : *s;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* Split the line at tabs into exactly five fields. */
static int split(char *line, char *field[5])
{
	int n = 0;

	field[n++] = line;
	for (; *line; line++) {
		if (*line != '\t')
			continue;
		if (n == 5)
			return -1;
		*line = '\0';
		field[n++] = line + 1;
	}
	return n == 5 ? 0 : -1;
}

static int parse_line(struct journal_reader *j, struct store_result *out)
{
	char *f[5], why[160], *end;
	unsigned long attempts;

	if (split(j->line, f) < 0)
		return -1;
	memset(out, 0, sizeof(*out));
	if (text_parse_id(f[0], &out->id, why, sizeof(why)) < 0 ||
	    (out->ts = store_parse_ts(f[1])) < 0)
		return -1;
	if (strcmp(f[2], "-") == 0)
		out->status = -1;
	else if (strcmp(f[2], "0") == 0 || strcmp(f[2], "1") == 0)
		out->status = f[2][0] - '0';
	else
		return -1;
	errno = 0;
	attempts = strtoul(f[3], &end, 10);
	if (*f[3] == '\0' || *end || errno || attempts > 1000000)
		return -1;
	out->attempts = (unsigned)attempts;
	unescape(f[4]);
	out->error = f[4][0] ? f[4] : NULL;
	return 0;
}

int journal_next(struct journal_reader *j, struct store_result *out, char *err,
		 size_t errlen)
{
	ssize_t len;

	while ((len = getline(&j->line, &j->alloc, j->fp)) >= 0) {
		j->lineno++;
		if (len > 0 && j->line[len - 1] == '\n')
			j->line[--len] = '\0';
		if (len == 0 || j->line[0] == '#')
			continue;
		if (parse_line(j, out) == 0)
			return 1;
		snprintf(err, errlen, "%s:%ld: not a journal line", j->path,
			 j->lineno);
		return -1;
	}
	if (ferror(j->fp)) {
		snprintf(err, errlen, "cannot read journal '%s': %s", j->path,
			 strerror(errno));
		return -1;
	}
	return 0;
}

static void free_texts(char **texts, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(texts[i]);
		texts[i] = NULL;
	}
}

enum journal_replay journal_replay(struct journal_reader *j,
				   struct store *store, unsigned long *recorded,
				   char *err, size_t errlen)
{
	struct store_result batch[JOURNAL_REPLAY_BATCH];
	char *texts[JOURNAL_REPLAY_BATCH] = { NULL };
	size_t n = 0;
	int more = 1, rc;

	*recorded = 0;
	while (more) {
		more = journal_next(j, &batch[n], err, errlen);
		if (more < 0) {
			free_texts(texts, n);
			return JOURNAL_BAD;
		}
		if (more) {
			/* the reader reuses its line: keep the error text
			 * (without it if memory runs out: it may be dropped) */
			texts[n] = batch[n].error ? strdup(batch[n].error)
						  : NULL;
			batch[n].error = texts[n];
			n++;
		}
		if (n == JOURNAL_REPLAY_BATCH || (!more && n)) {
			rc = store_finish(store, batch, n, err, errlen);
			free_texts(texts, n);
			if (rc < 0)
				return JOURNAL_STORE_FAILED;
			*recorded += n;
			n = 0;
		}
	}
	return JOURNAL_REPLAYED;
}

int journal_pending(const char *path, char *err, size_t errlen)
{
	struct journal_reader *j;
	struct store_result r;
	int rc;

	if (access(path, F_OK) != 0 && errno == ENOENT)
		return 0;
	j = journal_open(path, err, errlen);
	if (j == NULL)
		return -1;
	rc = journal_next(j, &r, err, errlen);
	journal_close(j);
	return rc;
}
