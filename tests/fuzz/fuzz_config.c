/*
 * fuzz_config: libFuzzer target for src/cfg.c (typed INI over inih).
 *
 * The keys are sender's own: the core table of src/core_keys.c ([api],
 * [retry], [store]) and the sqlite backend's table, taken from the store
 * registry.  Each input is written to a memfd and loaded with
 * cfg_load_file() through its /proc/self/fd path.  Then (abort() otherwise):
 *
 *  - on failure the message is one line, starts with "PATH:LINE:" and LINE
 *    is a line of the file;
 *  - on success every value passes its type's rule, checked here on its
 *    own: CFG_UINT is digits only, within [min, max]; CFG_SECONDS is a
 *    positive decimal number (digits, at most one point, no sign, no hex,
 *    no exponent) at most max, and at least one millisecond, since every
 *    user turns it into milliseconds; the getters give the same numbers;
 *  - on success the values and their origins are those that a plain
 *    reading of the file gives: indentation is not significant, a line is
 *    blank, a comment (';' or '#'), a [section] or a key = value (or
 *    key: value) with an optional " ; comment", the last setting of a key
 *    wins and its origin is "PATH:LINE" of that line.
 */
#include "cfg.h"
#include "core_keys.h"
#include "store.h"
#include "url.h"

#include <ctype.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static const struct cfg_key *tables[3];
static int memfd = -1;
static char path[64];

/* The UTF-8 byte order mark. */
#define BOM "\xef\xbb\xbf"

#define FAIL(...)                                                   \
	do {                                                        \
		fprintf(stderr, "fuzz_config: invariant broken: "); \
		fprintf(stderr, __VA_ARGS__);                       \
		fputc('\n', stderr);                                \
		abort();                                            \
	} while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const struct store_ops *sqlite = store_find("sqlite");

	(void)argc;
	(void)argv;
	tables[0] = core_keys;
	tables[1] = sqlite ? sqlite->keys : NULL;
	tables[2] = NULL;
	memfd = memfd_create("fuzz_config", MFD_CLOEXEC);
	if (memfd < 0) {
		perror("fuzz_config: memfd_create");
		exit(1);
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
	return 0;
}

static int put_input(const uint8_t *data, size_t size)
{
	size_t done = 0;

	if (ftruncate(memfd, 0) < 0)
		return -1;
	while (done < size) {
		ssize_t n = pwrite(memfd, data + done, size - done,
				   (off_t)done);

		if (n <= 0)
			return -1;
		done += (size_t)n;
	}
	return 0;
}

/* Lines of the file as fgets() sees them: '\n' ends one. */
static long count_lines(const uint8_t *data, size_t size)
{
	long n = 0;

	for (size_t i = 0; i < size; i++)
		if (data[i] == '\n')
			n++;
	if (size > 0 && data[size - 1] != '\n')
		n++;
	return n;
}

/* "PATH:N" or "PATH:N:..." with 1 <= N <= lines; returns N or -1. */
static long line_of(const char *s, long lines)
{
	size_t n = strlen(path);
	const char *p;
	long v = 0;

	if (strncmp(s, path, n) != 0 || s[n] != ':')
		return -1;
	for (p = s + n + 1; *p >= '0' && *p <= '9' && v <= lines; p++)
		v = v * 10 + (*p - '0');
	if (p == s + n + 1 || (*p != ':' && *p != '\0') || v < 1 || v > lines)
		return -1;
	return v;
}

/* ------------------------------------------------- the type rules */

static void check_uint(const struct cfg *c, const struct cfg_entry *e)
{
	const char *v = e->value;
	unsigned long long n = 0;
	size_t i;

	for (i = 0; v[i]; i++) {
		if (v[i] < '0' || v[i] > '9')
			FAIL("[%s] %s = '%s' is not a whole number",
			     e->key->section, e->key->name, v);
		if (n <= e->key->max)
			n = n * 10 + (unsigned)(v[i] - '0');
	}
	if (i == 0 || n < e->key->min || n > e->key->max)
		FAIL("[%s] %s = '%s' is outside %lu..%lu", e->key->section,
		     e->key->name, v, e->key->min, e->key->max);
	if (cfg_uint(c, e->key->section, e->key->name) != n)
		FAIL("cfg_uint([%s] %s) is %lu, not %llu", e->key->section,
		     e->key->name, cfg_uint(c, e->key->section, e->key->name),
		     n);
}

static void check_seconds(const struct cfg *c, const struct cfg_entry *e)
{
	const char *v = e->value;
	size_t digits = strspn(v, "0123456789.");
	const char *point = strchr(v, '.');
	double d;

	if (v[digits] != '\0' || digits == 0 || strcmp(v, ".") == 0 ||
	    (point && strchr(point + 1, '.')))
		FAIL("[%s] %s = '%s' is not a plain decimal number",
		     e->key->section, e->key->name, v);
	d = strtod(v, NULL);
	if (!(d * 1000 >= 1) || d > (double)e->key->max)
		FAIL("[%s] %s = '%s' is not from 0.001 to %lu seconds",
		     e->key->section, e->key->name, v, e->key->max);
	if (cfg_seconds(c, e->key->section, e->key->name) != d)
		FAIL("cfg_seconds([%s] %s) is %g, not %g", e->key->section,
		     e->key->name,
		     cfg_seconds(c, e->key->section, e->key->name), d);
}

/* --------------------------------------- a plain reading of the file */

struct setting {
	char section[256], name[256], value[256];
	long line;
};

struct model {
	struct setting *v;
	size_t n, alloc;
	int bad; /* a line that is no INI line */
};

static int space(int c)
{
	return isspace((unsigned char)c);
}

/* Up to the first of chars, or a ';' that follows whitespace. */
static char *until(char *s, const char *chars)
{
	int was_space = 0;

	while (*s && !(chars && strchr(chars, *s)) &&
	       !(was_space && *s == ';')) {
		was_space = space(*s);
		s++;
	}
	return s;
}

static char *strip(char *s)
{
	size_t n = strlen(s);

	while (n > 0 && space(s[n - 1]))
		s[--n] = '\0';
	while (space(*s))
		s++;
	return s;
}

static void model_set(struct model *m, const char *section, const char *name,
		      const char *value, long line)
{
	struct setting *s = NULL;

	for (size_t i = 0; i < m->n; i++)
		if (strcmp(m->v[i].section, section) == 0 &&
		    strcmp(m->v[i].name, name) == 0)
			s = &m->v[i];
	if (s == NULL) {
		if (m->n == m->alloc) {
			m->alloc = m->alloc ? 2 * m->alloc : 16;
			m->v = realloc(m->v, m->alloc * sizeof(*m->v));
			if (m->v == NULL)
				abort();
		}
		s = &m->v[m->n++];
		snprintf(s->section, sizeof(s->section), "%s", section);
		snprintf(s->name, sizeof(s->name), "%s", name);
	}
	snprintf(s->value, sizeof(s->value), "%s", value);
	s->line = line;
}

/* Only for files with no NUL and no line past 198 characters. */
static void model_read(const uint8_t *data, size_t size, struct model *m)
{
	char line[256], section[256] = "";
	size_t at = 0;
	long lineno = 0;

	while (at < size) {
		const uint8_t *nl = memchr(data + at, '\n', size - at);
		size_t len = nl ? (size_t)(nl - (data + at)) : size - at;
		char *s, *end;

		memcpy(line, data + at, len);
		line[len] = '\0';
		at += len + 1;
		lineno++;
		s = strip(line);
		/* a BOM, even after indentation (cfg.c strips that first) */
		if (lineno == 1 && strncmp(s, BOM, sizeof(BOM) - 1) == 0)
			s = strip(s + sizeof(BOM) - 1);
		if (*s == '\0' || *s == ';' || *s == '#')
			continue;
		if (*s == '[') {
			end = until(s + 1, "]");
			if (*end != ']') {
				m->bad = 1;
				continue;
			}
			*end = '\0';
			snprintf(section, sizeof(section), "%s", s + 1);
			continue;
		}
		end = until(s, "=:");
		if (*end != '=' && *end != ':') {
			m->bad = 1;
			continue;
		}
		*end = '\0';
		{
			char *name = strip(s), *value = end + 1;

			/* a comment is looked for before the value's
			 * leading spaces go: "k = ; c" is empty */
			*until(value, NULL) = '\0';
			value = strip(value);
			model_set(m, section, name, value, lineno);
		}
	}
}

static int plain(const uint8_t *data, size_t size)
{
	size_t run = 0;

	if (memchr(data, '\0', size) != NULL)
		return 0;
	for (size_t i = 0; i < size; i++) {
		run = data[i] == '\n' ? 0 : run + 1;
		if (run > 190)
			return 0;
	}
	return 1;
}

/*
 * What the line's value becomes: a relative file name (CFG_PATH) is taken
 * beside the config file, here the directory of its /proc/self/fd path,
 * unless that does not fit a path; every other value is kept as written.
 */
static const char *expected_value(const struct cfg_entry *e,
				  const struct setting *s, char *buf,
				  size_t buflen)
{
	const char *slash = strrchr(path, '/');
	int n;

	if (e->key->type != CFG_PATH || s->value[0] == '\0' ||
	    s->value[0] == '/')
		return s->value;
	n = snprintf(buf, buflen, "%.*s/%s", (int)(slash - path), path,
		     s->value);
	return n > 0 && (size_t)n < buflen ? buf : s->value;
}

static void compare(const struct cfg *c, const struct model *m)
{
	char want[PATH_MAX];

	if (m->bad)
		FAIL("loaded a file with a line that is no INI line");
	for (size_t i = 0; i < m->n; i++) {
		const struct setting *s = &m->v[i];
		const struct cfg_entry *e = cfg_find(c, s->section, s->name);

		if (e == NULL)
			FAIL("loaded a file that sets unknown [%s] %s",
			     s->section, s->name);
		if (strcmp(e->value,
			   expected_value(e, s, want, sizeof(want))) != 0)
			FAIL("[%s] %s is '%s', but line %ld sets '%s'",
			     s->section, s->name, e->value, s->line, s->value);
		snprintf(want, sizeof(want), "%s:%ld", path, s->line);
		if (strcmp(e->origin, want) != 0)
			FAIL("[%s] %s comes from '%s', not '%s'", s->section,
			     s->name, e->origin, want);
	}
	for (size_t i = 0; i < c->n; i++) {
		const struct cfg_entry *e = &c->entries[i];
		int set = 0;

		for (size_t j = 0; j < m->n; j++)
			if (strcmp(m->v[j].section, e->key->section) == 0 &&
			    strcmp(m->v[j].name, e->key->name) == 0)
				set = 1;
		if (!set && strcmp(e->origin, "default") != 0)
			FAIL("[%s] %s comes from '%s', but no line sets it",
			     e->key->section, e->key->name, e->origin);
	}
}

/*
 * The API URL as sender shows it: the masked form keeps nothing after
 * '?' or '#' but "***", nothing of the userinfo, and masking it again
 * changes nothing.  url_check() only has to return.
 */
static void check_url(const char *url)
{
	char masked[4200], again[sizeof(masked)], why[256];
	const char *q, *at, *auth;

	(void)url_check(url, why, sizeof(why));
	url_mask(url, masked, sizeof(masked));
	q = masked + strcspn(masked, "?#");
	if (*q && strcmp(q + 1, "***") != 0)
		FAIL("url_mask('%s') keeps a query: '%s'", url, masked);
	auth = strstr(masked, "://");
	auth = auth ? auth + 3 : masked;
	at = memchr(auth, '@', strcspn(auth, "/?#"));
	if (at && (at - auth != 3 || memcmp(auth, "***", 3) != 0))
		FAIL("url_mask('%s') keeps userinfo: '%s'", url, masked);
	url_mask(masked, again, sizeof(again));
	if (strcmp(again, masked) != 0)
		FAIL("url_mask not stable: '%s' then '%s'", masked, again);
}

/* [sqlite] path: a URI or a query is refused, with the key named. */
static void check_sqlite_path(const struct cfg *c)
{
	const struct store_ops *sqlite = store_find("sqlite");
	const char *p = cfg_str(c, "sqlite", "path");
	char err[1024] = "";
	int uri = p[0] == '\0' || strncmp(p, "file:", 5) == 0 ||
		  strchr(p, '?') != NULL || strcmp(p, ":memory:") == 0;

	if (sqlite == NULL)
		return;
	if ((store_check(sqlite, c, err, sizeof(err)) < 0) != uri)
		FAIL("store_check of [sqlite] path '%s': %s", p,
		     err[0] ? err : "accepted");
	if (uri && strstr(err, "[sqlite]") == NULL)
		FAIL("store_check message names no key: '%s'", err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[1024];
	struct cfg c;
	struct model m = { 0 };
	long lines = count_lines(data, size);

	if (put_input(data, size) < 0)
		abort();
	if (cfg_init(&c, tables, err, sizeof(err)) < 0)
		FAIL("cfg_init: %s", err);
	err[0] = '\0';
	if (cfg_load_file(&c, path, err, sizeof(err)) < 0) {
		if (err[0] == '\0')
			FAIL("cfg_load_file failed with no message");
		if (strchr(err, '\n') != NULL)
			FAIL("message of more than one line: '%s'", err);
		if (line_of(err, lines) < 0)
			FAIL("message does not start with '%s:LINE:' of one "
			     "of its %ld lines: '%s'",
			     path, lines, err);
		cfg_release(&c);
		return 0;
	}
	for (size_t i = 0; i < c.n; i++) {
		const struct cfg_entry *e = &c.entries[i];

		if (e->key->type == CFG_UINT)
			check_uint(&c, e);
		else if (e->key->type == CFG_SECONDS)
			check_seconds(&c, e);
		if (strcmp(e->origin, "default") != 0 &&
		    line_of(e->origin, lines) < 0)
			FAIL("[%s] %s has origin '%s'", e->key->section,
			     e->key->name, e->origin);
	}
	if (plain(data, size)) {
		model_read(data, size, &m);
		compare(&c, &m);
	}
	check_url(cfg_str(&c, "api", "url"));
	check_sqlite_path(&c);
	free(m.v);
	cfg_release(&c);
	return 0;
}
