/*
 * store: where the outcome of every letter is recorded, and where runs
 * claim ids so that each id is sent by one run only (SPEC sections 5, 6).
 *
 * Callers use the store_*() wrappers below, never the ops directly.
 * Every call takes whole batches: one round trip (one transaction) per
 * batch, not per letter.
 *
 * Adding a backend, say PostgreSQL over libpq, is:
 *
 *  - one new file, src/store_pgsql.c, whose only non-static name is
 *    `const struct store_ops store_pgsql_ops` (designated initialisers);
 *  - in the Makefile, "pgsql" added to STORES and a line
 *    `PKG_pgsql = libpq` (its pkg-config package).  The Makefile builds
 *    the file, links the package and passes the list to store.c, whose
 *    table (store_backends(), --version) is made from it: nothing else
 *    changes, in store.c or anywhere.
 *
 * What the file provides:
 *
 *  - a state struct that embeds struct store first (struct store_net
 *    first for a network backend, see below), handed out by open and
 *    got back by one checked downcast, store_checked(s, &store_pgsql_ops,
 *    "store_pgsql");
 *  - the store_ops below: name, keys, open, claim, finish, release and
 *    close are required; check and totals are optional (NULL);
 *  - the contract of each op, as written at each one below.  All of them
 *    take a caller-owned error buffer, never print and never exit; err
 *    names the server, table and key at fault and says what to do.  The
 *    backend sets s->ops itself at open, before its first downcast.
 *  - the claim rule: an atomic insert on the unique key decides; a claim
 *    names its run (owner->name, see owner.h) where the schema has room,
 *    and with owner->reclaim a claim without an outcome is taken over
 *    only if store_claim_abandoned() says its run is gone, by an update
 *    that matches that same claim (owner and no outcome) and no other.
 *
 * A network backend (a server that may go away and come back) gets from
 * store_net.h, for free: the reconnect-and-wait loop ([NAME]
 * reconnect_timeout, doubling pauses, the messages), the claim batch
 * sorted and deduplicated with its slots found by id, and the claim,
 * finish, release and totals ops themselves.  It points those four ops
 * at store_net_claim/finish/release/totals and .net at a struct
 * store_net_ops giving only what differs: connected/connect/disconnect,
 * fault ("is this a lost connection", a conflict, or an error), message,
 * and one attempt of each statement, safe to run again after any failure.
 */
#ifndef SENDER_STORE_H
#define SENDER_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct cfg;
struct cfg_key;
struct store_net_ops;

/* What claiming one id found. */
enum claim {
	CLAIM_OK,   /* the id is ours to send */
	CLAIM_DONE, /* a finished record exists: skip */
	CLAIM_HELD, /* another run holds a claim on it: skip, run again later */
	/*
	 * A claim whose run is gone (store_claim_abandoned()) and that was
	 * not taken over because --reclaim was not given.  Optional: a
	 * backend that cannot tell says CLAIM_HELD.
	 */
	CLAIM_STALE,
};

/* The outcome of one sent letter. */
struct store_result {
	uint32_t id;
	time_t ts;	   /* when the API answered */
	int status;	   /* delivery_status: 1, 0, or -1 for NULL */
	unsigned attempts; /* POSTs made for this letter */
	const char *error; /* rejected/error text, or NULL; may be dropped */
};

/* Who is claiming: written into the record where the backend can. */
struct store_owner {
	const char *name; /* "host:pid:start", unique per run */
	/*
	 * --reclaim: a claim found without an outcome (ts NULL) is taken
	 * over and comes back CLAIM_OK instead of CLAIM_HELD, if the run
	 * that holds it is gone (see store_claim_abandoned()).  2
	 * (--reclaim=all): also a claim whose owner is unknown, made before
	 * the backend recorded owners (MySQL's claims without a row in its
	 * claims table).
	 */
	int reclaim;
	long claim_lease; /* seconds: [store] claim_lease */
	/*
	 * --status: open what is there and create nothing (no file, schema,
	 * table, index or collection); only totals and close follow.  A
	 * store not there yet is no error: totals says so in `absent`.
	 */
	int read_only;
	/*
	 * A second connection of a run whose first one has made or checked
	 * the schema already: a backend may skip that step.
	 */
	int schema_ready;
};

/* What `sender --status` shows; -1 where a backend cannot tell. */
struct store_totals {
	long long records, delivered, not_delivered, failed, claimed;
	long long oldest_claim_age; /* seconds */
	/* of claimed: claims whose owner is unknown (--reclaim=all) */
	long long unowned;
	/* read-only: what is not there ("no file '/x/sender.db'"), or "" */
	char absent[300];
};

/* One fact of where a store's data lives, for --status. */
#define STORE_WHERE_MAX 6
struct store_where {
	const char *name; /* "path", "host", "database", ... (static) */
	char value[512];  /* never a secret: no password, no credentials */
};

struct store {
	const struct store_ops *ops;
};

struct store_ops {
	/* Required: [store] backend = name; also its config section. */
	const char *name;
	/*
	 * Required: the keys of the backend's own config section [name],
	 * ending with a { NULL } entry (a network backend has its
	 * reconnect_timeout among them).
	 */
	const struct cfg_key *keys;

	/*
	 * Optional: check the backend's settings without connecting, so
	 * that a bad value is a configuration error (exit 2), named with
	 * its file and line.  0, or -1 and err.
	 */
	int (*check)(const struct cfg *cfg, char *err, size_t errlen);
	/*
	 * Required: connect, create the schema if missing (check it if
	 * present), keep what it needs of owner.  NULL and err on failure;
	 * no retry here: a server that is not there at the start is an
	 * error.  The store returned is owned by the caller (close).
	 */
	struct store *(*open)(const struct cfg *cfg,
			      const struct store_owner *owner, char *err,
			      size_t errlen);
	/*
	 * Required: claim n ids (n > 0; an id may come twice: the second is
	 * CLAIM_DONE) by an atomic insert on the unique key; out[i] tells
	 * what the insert found for ids[i].  All or nothing: on -1 no claim
	 * of this batch may be relied on (nothing of it is sent).
	 */
	int (*claim)(struct store *s, const uint32_t *ids, size_t n,
		     enum claim *out, char *err, size_t errlen);
	/*
	 * Required: record n outcomes (n > 0) of ids claimed by this run,
	 * each claim becoming a finished record.  Idempotent: the
	 * same outcomes recorded again (sender --replay) change nothing, and
	 * a record that is missing is created.
	 */
	int (*finish)(struct store *s, const struct store_result *r, size_t n,
		      char *err, size_t errlen);
	/*
	 * Required: delete this run's claims on n ids (n > 0) that were not
	 * sent; a record with an outcome is never deleted, nor another
	 * run's claim where the schema can tell.
	 */
	int (*release)(struct store *s, const uint32_t *ids, size_t n,
		       char *err, size_t errlen);
	/*
	 * Optional (NULL: --status says the backend cannot count): count the
	 * records by state; oldest_claim_age -1 when claims have no time.
	 */
	int (*totals)(struct store *s, struct store_totals *out, char *err,
		      size_t errlen);
	/* Required: disconnect and free s; s may be half-opened. */
	void (*close)(struct store *s);
	/*
	 * Optional: where the data lives by the configuration (a file's
	 * absolute path; a server, database and table), without connecting:
	 * at most max facts into out, returns how many.  Credentials never
	 * appear.
	 */
	size_t (*where)(const struct cfg *cfg, struct store_where *out,
			size_t max);
	/* Network backends only: see store_net.h.  NULL for the others. */
	const struct store_net_ops *net;
	/*
	 * Optional ([retry] in_doubt = hold): keep the claims of n letters
	 * that may have reached the API, noting r[i].error (the reason) and
	 * r[i].attempts in the record where the backend has room for it.
	 * The records stay claimed: only --reclaim sends them again.
	 */
	int (*hold)(struct store *s, const struct store_result *r, size_t n,
		    char *err, size_t errlen);
	/*
	 * Optional (0: no): a run records its outcomes through a second
	 * connection opened with open(), while claims go on through the
	 * first (store_worker.h).  For a server that works on two
	 * connections at once; SQLite has one writer at a time, and a
	 * second connection there would only wait for the first.
	 */
	int second_connection;
};

/* The backend called name, or NULL. */
const struct store_ops *store_find(const char *name);

/* The compiled-in backends, NULL-terminated. */
const struct store_ops *const *store_backends(void);

/* "sqlite, mysql, mongodb": the names, for messages and --version. */
const char *store_names(void);

int store_check(const struct store_ops *ops, const struct cfg *cfg, char *err,
		size_t errlen);
struct store *store_open(const struct store_ops *ops, const struct cfg *cfg,
			 const struct store_owner *owner, char *err,
			 size_t errlen);
int store_claim(struct store *s, const uint32_t *ids, size_t n, enum claim *out,
		char *err, size_t errlen);
int store_finish(struct store *s, const struct store_result *r, size_t n,
		 char *err, size_t errlen);
int store_release(struct store *s, const uint32_t *ids, size_t n, char *err,
		  size_t errlen);
int store_totals(struct store *s, struct store_totals *out, char *err,
		 size_t errlen);
void store_close(struct store *s);
/* Note why n claims are kept; nothing to do for a backend without room. */
int store_hold(struct store *s, const struct store_result *r, size_t n,
	       char *err, size_t errlen);

/* ops->where, or nothing (0) for a backend that does not say. */
size_t store_where(const struct store_ops *ops, const struct cfg *cfg,
		   struct store_where *out, size_t max);

/* The name of s's backend ("sqlite"), for messages. */
const char *store_name(const struct store *s);

/* Whether a run should record outcomes through a second connection. */
int store_second_connection(const struct store *s);

/*
 * How many times a call of s was run again because the server rolled it
 * back for another client: a deadlock, or in a Galera cluster a batch
 * that failed certification (another node committed an overlapping one
 * first).  0 for a store that never retries; NULL gives 0.
 */
unsigned long store_conflicts(const struct store *s);

/*
 * s, checked to be a store of ops, for a backend's own downcast (module
 * names it, e.g. "store_mysql").  A store of another backend is a bug:
 * it aborts with a message naming both.  NULL stays NULL.
 */
struct store *store_checked(struct store *s, const struct store_ops *ops,
			    const char *module);

/*
 * Whether --reclaim may take over a claim held by owner (see owner.h:
 * "host:pid:start:random", or the older "host:pid:start") since
 * claimed_at (-1: unknown): on this host, when that process is gone (a
 * reused pid does not count: its start time differs); on another host,
 * or with an owner that does not parse, when the claim is older than
 * lease_s seconds.
 */
int store_claim_abandoned(const char *owner, time_t claimed_at, long lease_s);

/* Parse "YYYY-MM-DD HH:MM:SS" (UTC); -1 if it is not that. */
time_t store_parse_ts(const char *text);

/* "YYYY-MM-DD HH:MM:SS" in UTC, the form every backend stores. */
void store_format_ts(time_t ts, char out[20]);

#endif
