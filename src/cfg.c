#include "cfg.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static struct cfg_entry *find(const struct cfg *c, const char *section,
			      const char *name)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->entries[i].key->section, section) == 0 &&
		    strcmp(c->entries[i].key->name, name) == 0)
			return &c->entries[i];
	return NULL;
}

static int section_known(const struct cfg *c, const char *section)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		if (strcmp(c->entries[i].key->section, section) == 0)
			return 1;
	return 0;
}

const struct cfg_entry *cfg_find(const struct cfg *c, const char *section,
				 const char *name)
{
	return find(c, section, name);
}

int cfg_init(struct cfg *c, const struct cfg_key *const *tables, char *err,
	     size_t errlen)
{
	const struct cfg_key *const *t;
	const struct cfg_key *k;
	size_t n = 0;

	memset(c, 0, sizeof(*c));
	for (t = tables; *t; t++)
		for (k = *t; k->name; k++)
			n++;
	c->entries = calloc(n ? n : 1, sizeof(*c->entries));
	if (c->entries == NULL)
		goto nomem;
	for (t = tables; *t; t++) {
		for (k = *t; k->name; k++) {
			struct cfg_entry *e = &c->entries[c->n++];

			e->key = k;
			e->value = strdup(k->def ? k->def : "");
			e->origin = strdup("default");
			if (e->value == NULL || e->origin == NULL)
				goto nomem;
		}
	}
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	cfg_release(c);
	return -1;
}

void cfg_release(struct cfg *c)
{
	size_t i;

	for (i = 0; c->entries && i < c->n; i++) {
		free(c->entries[i].value);
		free(c->entries[i].origin);
	}
	free(c->entries);
	memset(c, 0, sizeof(*c));
}

/* 1 or 0 for the spellings of a boolean, -1 for anything else. */
static int bool_value(const char *v)
{
	static const char *const yes[] = { "true", "yes", "on", "1" };
	static const char *const no[] = { "false", "no", "off", "0" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return 1;
		if (strcasecmp(v, no[i]) == 0)
			return 0;
	}
	return -1;
}

/* Check a value against its key's type; why gets the reason. */
static int check_value(const struct cfg_key *k, const char *v, char *why,
		       size_t whylen)
{
	unsigned long long n = 0;
	const char *p;
	char *end;
	double d;

	switch (k->type) {
	case CFG_STRING:
	case CFG_PATH:
	case CFG_SECRET: return 0;
	case CFG_UINT:
		for (p = v; *p; p++) {
			if (*p < '0' || *p > '9' || p - v > 18) {
				snprintf(why, whylen,
					 "'%s' is not a whole number", v);
				return -1;
			}
			n = n * 10 + (unsigned)(*p - '0');
		}
		if (p == v || n < k->min || n > k->max) {
			snprintf(why, whylen,
				 "'%s' is not a whole number from %lu to %lu",
				 v, k->min, k->max);
			return -1;
		}
		return 0;
	case CFG_SECONDS:
		/*
		 * Plain decimal only (strtod would take "0x1e", "1e3", "+5"),
		 * and at least a millisecond: callers use milliseconds, where
		 * 0 means "no timeout" to curl and sqlite.
		 */
		errno = 0;
		d = strtod(v, &end);
		if (end == v || *end || errno ||
		    v[strspn(v, "0123456789.")] != '\0' || !(d * 1000 >= 1) ||
		    d > (double)k->max) {
			snprintf(
				why, whylen,
				"'%s' is not a number of seconds from 0.001 to %lu",
				v, k->max);
			return -1;
		}
		return 0;
	case CFG_BOOL:
		if (bool_value(v) < 0) {
			snprintf(why, whylen,
				 "'%s' is not true or false (yes/no, on/off, "
				 "1/0)",
				 v);
			return -1;
		}
		return 0;
	}
	return 0;
}

int cfg_set(struct cfg *c, const char *section, const char *name,
	    const char *value, const char *origin, char *err, size_t errlen)
{
	struct cfg_entry *e = find(c, section, name);
	char why[200];
	char *v, *o;

	if (e == NULL) {
		if (!section_known(c, section))
			snprintf(err, errlen,
				 "%s: unknown section [%s] (key '%s')", origin,
				 section, name);
		else
			snprintf(err, errlen,
				 "%s: unknown key '%s' in section [%s]", origin,
				 name, section);
		return -1;
	}
	if (check_value(e->key, value, why, sizeof(why)) < 0) {
		snprintf(err, errlen, "%s: key '%s' in section [%s]: %s",
			 origin, name, section, why);
		return -1;
	}
	v = strdup(value);
	o = strdup(origin);
	if (v == NULL || o == NULL) {
		free(v);
		free(o);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	free(e->value);
	free(e->origin);
	e->value = v;
	e->origin = o;
	return 0;
}

/* State of one file's parse: inih gives no line numbers, we count them. */
struct file_parse {
	struct cfg *cfg;
	FILE *fp;
	char *buf; /* owned: the physical line, from getline() */
	size_t alloc;
	const char *path;
	int line;
	char *err;
	size_t errlen;
	int failed;
};

static int section_line(struct file_parse *p, const char *line)
{
	const char *s = line, *end;
	char name[64];

	while (*s == ' ' || *s == '\t')
		s++;
	if (*s != '[')
		return 0;
	end = strchr(s, ']');
	if (end == NULL) {
		snprintf(p->err, p->errlen,
			 "%s:%d: '[' without ']' (expected "
			 "[section])",
			 p->path, p->line);
		p->failed = 1;
		return -1;
	}
	if ((size_t)(end - s - 1) >= sizeof(name))
		return 0; /* its keys are reported as unknown */
	memcpy(name, s + 1, (size_t)(end - s - 1));
	name[end - s - 1] = '\0';
	if (section_known(p->cfg, name))
		return 0;
	snprintf(p->err, p->errlen, "%s:%d: unknown section [%s]", p->path,
		 p->line, name);
	p->failed = 1;
	return -1;
}

/*
 * Hand inih one physical line, read whole: a NUL byte would have fgets()
 * split it in two and shift the line numbers.
 */
static char *read_line(char *str, int num, void *stream)
{
	struct file_parse *p = stream;
	ssize_t len;
	size_t n, indent;

	if (p->failed || (len = getline(&p->buf, &p->alloc, p->fp)) < 0)
		return NULL;
	p->line++;
	n = (size_t)len;
	if (memchr(p->buf, '\0', n) != NULL) {
		snprintf(p->err, p->errlen, "%s:%d: NUL byte in the line",
			 p->path, p->line);
		p->failed = 1;
		return NULL;
	}
	/*
	 * inih takes an indented line for more of the value above it (after
	 * any of its isspace() characters): an indented key would silently
	 * become part of the previous value.
	 */
	indent = strspn(p->buf, " \t\v\f\r");
	if (n - indent - (n > indent && p->buf[n - 1] == '\n') >
	    (size_t)num - 2) {
		snprintf(p->err, p->errlen,
			 "%s:%d: line longer than %d characters", p->path,
			 p->line, num - 2);
		p->failed = 1;
		return NULL;
	}
	memcpy(str, p->buf + indent, n - indent + 1);
	if (section_line(p, str) < 0)
		return NULL;
	return str;
}

/*
 * A relative file name in a config file means a file next to it, not one
 * in whatever directory sender happens to be started from (cron: $HOME).
 * Returns value itself, or the joined name in buf.
 */
static const char *beside(const struct file_parse *p, const char *section,
			  const char *name, const char *value, char *buf,
			  size_t buflen)
{
	const struct cfg_entry *e = find(p->cfg, section, name);
	const char *slash = strrchr(p->path, '/');
	int n;

	if (e == NULL || e->key->type != CFG_PATH || value[0] == '\0' ||
	    value[0] == '/' || slash == NULL)
		return value;
	n = snprintf(buf, buflen, "%.*s/%s", (int)(slash - p->path), p->path,
		     value);
	return n > 0 && (size_t)n < buflen ? buf : value;
}

static int on_key(void *user, const char *section, const char *name,
		  const char *value)
{
	struct file_parse *p = user;
	char origin[512], path[4096];

	if (p->failed)
		return 0;
	snprintf(origin, sizeof(origin), "%s:%d", p->path, p->line);
	if (section[0] == '\0') {
		snprintf(p->err, p->errlen,
			 "%s: key '%s' is outside any section", origin, name);
		p->failed = 1;
		return 0;
	}
	value = beside(p, section, name, value, path, sizeof(path));
	if (cfg_set(p->cfg, section, name, value, origin, p->err, p->errlen) <
	    0) {
		p->failed = 1;
		return 0;
	}
	return 1;
}

int cfg_load_file(struct cfg *c, const char *path, char *err, size_t errlen)
{
	struct file_parse p = { c, NULL, NULL, 0, path, 0, err, errlen, 0 };
	int rc;

	p.fp = fopen(path, "r");
	if (p.fp == NULL) {
		snprintf(err, errlen, "cannot read config '%s': %s", path,
			 strerror(errno));
		return -1;
	}
	rc = ini_parse_stream(read_line, &p, on_key, &p);
	/*
	 * A read error ends the lines like the end of the file does: without
	 * this check a directory (fopen() takes it, reads fail with EISDIR)
	 * or an I/O error would leave the defaults in force without a word.
	 */
	if (!p.failed && ferror(p.fp)) {
		snprintf(err, errlen, "cannot read config '%s': %s", path,
			 strerror(errno));
		p.failed = 1;
	}
	fclose(p.fp);
	free(p.buf);
	if (p.failed)
		return -1;
	if (rc != 0) {
		snprintf(
			err, errlen,
			"%s:%d: not an INI line (expected [section] or key = value)",
			path, rc);
		return -1;
	}
	return 0;
}

/* SENDER_<SECTION>_<NAME> in capitals, unless the key names another. */
static void env_name(const struct cfg_key *k, char *out, size_t outlen)
{
	size_t i;

	if (k->env) {
		snprintf(out, outlen, "%s", k->env);
		return;
	}
	snprintf(out, outlen, "SENDER_%s_%s", k->section, k->name);
	for (i = 0; out[i]; i++)
		if (out[i] >= 'a' && out[i] <= 'z')
			out[i] = (char)(out[i] - 'a' + 'A');
}

void cfg_env_name(const struct cfg_key *k, char *out, size_t outlen)
{
	env_name(k, out, outlen);
}

/* Whether the NAME of a NAME=value entry is a key's variable. */
static int env_known(const struct cfg *c, const char *entry, size_t len)
{
	char name[128];
	size_t i;

	if (len == strlen("SENDER_CONFIG") &&
	    memcmp(entry, "SENDER_CONFIG", len) == 0)
		return 1;
	for (i = 0; i < c->n; i++) {
		env_name(c->entries[i].key, name, sizeof(name));
		if (strlen(name) == len && memcmp(name, entry, len) == 0)
			return 1;
	}
	return 0;
}

size_t cfg_unknown_env(const struct cfg *c, char *const *env, char *out,
		       size_t outlen)
{
	size_t count = 0, used = 0;

	if (outlen)
		out[0] = '\0';
	for (; env && *env; env++) {
		const char *eq = strchr(*env, '=');
		size_t len = eq ? (size_t)(eq - *env) : strlen(*env);
		int n;

		if (strncmp(*env, "SENDER_", 7) != 0 || env_known(c, *env, len))
			continue;
		n = snprintf(out + used, outlen > used ? outlen - used : 0,
			     "%s%.*s", count ? ", " : "", (int)len, *env);
		if (n > 0 && used + (size_t)n < outlen)
			used += (size_t)n;
		count++;
	}
	return count;
}

int cfg_load_env(struct cfg *c, char *err, size_t errlen)
{
	size_t i;

	for (i = 0; i < c->n; i++) {
		const struct cfg_key *k = c->entries[i].key;
		char name[128], origin[140];
		const char *v;

		env_name(k, name, sizeof(name));
		v = getenv(name);
		if (v == NULL)
			continue;
		snprintf(origin, sizeof(origin), "$%s", name);
		if (cfg_set(c, k->section, k->name, v, origin, err, errlen) < 0)
			return -1;
	}
	return 0;
}

static const struct cfg_entry *must_find(const struct cfg *c,
					 const char *section, const char *name)
{
	const struct cfg_entry *e = find(c, section, name);

	if (e == NULL) {
		fprintf(stderr,
			"sender: internal error: undeclared key %s.%s\n",
			section, name);
		abort();
	}
	return e;
}

const char *cfg_str(const struct cfg *c, const char *section, const char *name)
{
	return must_find(c, section, name)->value;
}

unsigned long cfg_uint(const struct cfg *c, const char *section,
		       const char *name)
{
	return strtoul(must_find(c, section, name)->value, NULL, 10);
}

double cfg_seconds(const struct cfg *c, const char *section, const char *name)
{
	return strtod(must_find(c, section, name)->value, NULL);
}

int cfg_bool(const struct cfg *c, const char *section, const char *name)
{
	return bool_value(must_find(c, section, name)->value) == 1;
}
