/*
 * cfg: the effective configuration, as a table of typed keys.
 *
 * Every key is declared once (section, name, type, default, help) by the
 * module that uses it: the core declares [api], [retry] and [store], each
 * storage backend declares its own section.  Values are checked when they
 * are set, so the getters never fail.  Precedence, lowest first: defaults,
 * the INI file, the environment, the command line.
 */
#ifndef SENDER_CFG_H
#define SENDER_CFG_H

#include <stddef.h>

enum cfg_type {
	CFG_STRING,
	CFG_SECRET,  /* a string never printed */
	CFG_UINT,    /* whole number in [min, max] */
	CFG_SECONDS, /* positive decimal number of seconds, at most max */
	CFG_BOOL,    /* true/false, yes/no, on/off, 1/0 */
	CFG_PATH,    /* a file name: relative in a file, relative to that
			file's directory */
};

struct cfg_key {
	const char *section;
	const char *name;
	enum cfg_type type;
	const char *def; /* default, as text */
	unsigned long min, max;
	/* environment variable that overrides it; NULL: SENDER_SECTION_NAME */
	const char *env;
	const char *help;
};

struct cfg_entry {
	const struct cfg_key *key;
	char *value;  /* owned */
	char *origin; /* owned: "default", "FILE:LINE", "$VAR", "command line" */
};

struct cfg {
	struct cfg_entry *entries; /* owned */
	size_t n;
};

/*
 * Fill c with the keys of the NULL-terminated list of tables (each ends
 * with an entry whose name is NULL), set to their defaults.
 */
int cfg_init(struct cfg *c, const struct cfg_key *const *tables, char *err,
	     size_t errlen);

/* Read an INI file; errors name the file, the line and the key. */
int cfg_load_file(struct cfg *c, const char *path, char *err, size_t errlen);

/* Apply the environment: SENDER_<SECTION>_<NAME>, or the key's own name. */
int cfg_load_env(struct cfg *c, char *err, size_t errlen);

/*
 * Names of SENDER_* variables of env (a NULL-terminated environ) that name
 * no key, nor SENDER_CONFIG, written to out separated by ", ".  Returns
 * how many there are: typos that would otherwise be ignored in silence.
 */
size_t cfg_unknown_env(const struct cfg *c, char *const *env, char *out,
		       size_t outlen);

/* The environment variable of a key. */
void cfg_env_name(const struct cfg_key *k, char *out, size_t outlen);

/* Set one key; origin says where the value came from, for messages. */
int cfg_set(struct cfg *c, const char *section, const char *name,
	    const char *value, const char *origin, char *err, size_t errlen);

/* The entry of a declared key, or NULL. */
const struct cfg_entry *cfg_find(const struct cfg *c, const char *section,
				 const char *name);

/* Getters for declared keys (the program aborts on an undeclared one). */
const char *cfg_str(const struct cfg *c, const char *section, const char *name);
unsigned long cfg_uint(const struct cfg *c, const char *section,
		       const char *name);
double cfg_seconds(const struct cfg *c, const char *section, const char *name);
int cfg_bool(const struct cfg *c, const char *section, const char *name);

void cfg_release(struct cfg *c);

#endif
