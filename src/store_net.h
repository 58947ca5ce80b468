/*
 * store_net: the half that the network backends (store_mysql.c,
 * store_mongo.c) share, kept beside the interface as curl keeps the
 * common half of its TLS backends in vtls.c:
 *
 *  - waiting out a lost server: reconnect and run the call again, with a
 *    doubling pause, for at most reconnect_timeout seconds from the first
 *    loss (store_net_retry());
 *  - the claim batch: the ids sorted (so that concurrent runs lock rows in
 *    the same order) with their duplicates marked, each id's slot found
 *    by id, the answers put back in the caller's order;
 *  - the store_ops claim, finish, release and totals themselves: each is
 *    store_net_retry() around the backend's one attempt.
 *
 * A network backend's state struct embeds struct store_net first, its
 * store_ops points .net at its struct store_net_ops and .claim, .finish,
 * .release, .totals at the store_net_* functions below.  Its own file
 * then holds only what differs: "is this a lost connection", "reconnect"
 * and its statements.
 */
#ifndef SENDER_STORE_NET_H
#define SENDER_STORE_NET_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* One id of a batch being claimed. */
struct store_net_slot {
	uint32_t id;
	size_t index;  /* in the caller's arrays */
	int dup;       /* the same id again in this batch: skipped as done */
	int taken;     /* the insert found the id there already */
	int abandoned; /* --reclaim: held by a run that is gone */
	char *held_by; /* owned by the batch: that run's owner, or NULL */
	enum claim state;
};

/* A batch being claimed; every array holds n. */
struct store_net_batch {
	struct store_net_slot *slots; /* sorted by id, then by index */
	size_t n;
	size_t uniq;	      /* slots that are not dup */
	uint32_t *ids;	      /* scratch for the backend: id lists */
	unsigned char *marks; /* scratch for the backend: one flag an id */
	time_t now;	      /* when the claim began: claimed_at */
};

/* Results being recorded, across the attempts of one call. */
struct store_net_results {
	const struct store_result *r;
	size_t n;
	size_t done; /* recorded by earlier attempts, for a backend that
			commits piece by piece and resumes (0 at first) */
};

/* What the last failed attempt or connect found. */
enum store_net_fault {
	STORE_NET_OTHER,    /* an error: the call fails at once */
	STORE_NET_LOST,	    /* the server is gone or not back yet: wait */
	STORE_NET_CONFLICT, /* rolled back for another client: run again */
};

struct store_net;

/*
 * What a network backend provides.  Every function but the optional ones
 * is required.  Each attempt must be safe to run again after any failure
 * (on a new session): it either succeeds whole, or leaves its error noted
 * for fault() and message().
 */
struct store_net_ops {
	const char *product; /* "MySQL": messages say "... MySQL at ..." */
	const char *section; /* "mysql": [section] reconnect_timeout */
	/* Conflicts retried at once per call, without a pause (0: none). */
	unsigned conflict_retries;

	/* Whether a session is open; open a new one (0, or -1 noted). */
	int (*connected)(struct store_net *n);
	int (*connect)(struct store_net *n);
	void (*disconnect)(struct store_net *n);
	/* The kind and the text of the error noted last. */
	enum store_net_fault (*fault)(struct store_net *n);
	const char *(*message)(struct store_net *n);

	/*
	 * Claim the ids of the non-dup slots: set each one's state (the
	 * slots come in CLAIM_DONE; dup slots stay so).
	 */
	int (*claim)(struct store_net *n, struct store_net_batch *b);
	/*
	 * Optional: run after claim when a non-dup slot is not CLAIM_OK,
	 * to tell the finished records from claims held by other runs.
	 */
	int (*look_up)(struct store_net *n, struct store_net_batch *b);
	int (*finish)(struct store_net *n, struct store_net_results *res);
	/* Optional ([retry] in_doubt = hold): note why the claims stay. */
	int (*hold)(struct store_net *n, struct store_net_results *res);
	int (*release)(struct store_net *n, const uint32_t *ids, size_t count);
	int (*totals)(struct store_net *n, struct store_totals *t);
};

/* The common state; a backend fills it at open. */
struct store_net {
	struct store base; /* first */
	double reconnect_timeout;
	int gave_up; /* the last call waited reconnect_timeout in vain */
	unsigned long conflicts; /* attempts run again after a conflict */
	char where[300];  /* "'host:3306'", "socket '/x.sock'": messages */
	char object[300]; /* "table 'results'": messages */
};

/* s as a network store; a store of another kind aborts (a bug). */
struct store_net *store_net_of(struct store *s);

/*
 * Run attempt until it succeeds.  While the server is away (fault()
 * says STORE_NET_LOST), disconnect, pause (20 ms, doubling up to 1 s),
 * connect and run it again, for at most reconnect_timeout seconds from
 * the first loss (plus the timeout of the attempt under way); a conflict
 * is retried at once, conflict_retries times.  0, or -1 and err naming
 * the server, what was being done ("claim ids") and the last error.
 */
int store_net_retry(struct store_net *n,
		    int (*attempt)(struct store_net *n, void *ctx), void *ctx,
		    const char *what, char *err, size_t errlen);

/*
 * The batch of the n ids: sorted, duplicates marked (the first copy is
 * claimed, the others are dup), every state CLAIM_DONE.  0, or -1 when
 * out of memory.  store_net_batch_release() frees it either way.
 */
int store_net_batch_init(struct store_net_batch *b, const uint32_t *ids,
			 size_t n);
void store_net_batch_release(struct store_net_batch *b);

/* The slot of id (the first of its copies), or NULL if not in b. */
struct store_net_slot *store_net_find(struct store_net_batch *b, int64_t id);

/* The states back in the caller's order: out[i] for ids[i]. */
void store_net_batch_out(const struct store_net_batch *b, enum claim *out);

/* The store_ops of every network backend. */
int store_net_claim(struct store *s, const uint32_t *ids, size_t n,
		    enum claim *out, char *err, size_t errlen);
int store_net_finish(struct store *s, const struct store_result *r, size_t n,
		     char *err, size_t errlen);
int store_net_hold(struct store *s, const struct store_result *r, size_t n,
		   char *err, size_t errlen);
int store_net_release(struct store *s, const uint32_t *ids, size_t n, char *err,
		      size_t errlen);
int store_net_totals(struct store *s, struct store_totals *out, char *err,
		     size_t errlen);

#endif
