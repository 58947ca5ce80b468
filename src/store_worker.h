/*
 * store_worker: the store's calls run on a thread of their own, so that a
 * slow claim batch, a slow commit, a reconnect or an fsync never keeps the
 * transfer loop from taking an answer or starting a request (issue 16).
 *
 * The store API stays synchronous; from store_worker_start() until
 * store_worker_stop() the store is called from the worker thread only.
 * The caller hands jobs in (store_worker_submit(), never blocks) and takes
 * them back done (store_worker_take()); wake(arg) is called from the
 * worker thread each time a job comes back, so that a loop sleeping in
 * poll() wakes up (run.c: curl_multi_wakeup()).
 *
 * Jobs are done in the order they came, but the worker may do the waiting
 * jobs of one kind in one store call (claims first, then finishes,
 * releases, holds): the caller never submits a finish or release of an id
 * before its claim came back, so no order between waiting jobs matters,
 * and a store that has fallen behind catches up in bigger batches.
 *
 * After a store call fails, the worker calls the store no more: every
 * later job comes back failed, untried (rc -1, tried 0), so that a dead
 * database costs one reconnect_timeout, not one per job.  The caller
 * tries once more itself after store_worker_stop(), as before the worker.
 *
 * Given a second connection to the same store, the worker runs a second
 * thread on it for the outcomes (finish, release, hold) while the first
 * does the claims: a database server then works on both at once, where
 * one connection is served one statement after the other (MySQL: a
 * claim batch and an outcome batch each take about as long as sending
 * them at -j 32).  No order is lost by it: an id's outcome or release is
 * only submitted after its claim came back.
 */
#ifndef SENDER_STORE_WORKER_H
#define SENDER_STORE_WORKER_H

#include "store.h"

#include <stddef.h>
#include <stdint.h>

enum store_job_kind {
	STORE_JOB_CLAIM,
	STORE_JOB_FINISH,
	STORE_JOB_RELEASE,
	STORE_JOB_HOLD, /* store_hold(): the reasons of letters in doubt */
};

/*
 * One batch for the store, owned by the caller but for the time between
 * submit and take, when the worker has it.  The caller may embed it first
 * in a struct of its own.
 */
struct store_job {
	enum store_job_kind kind;
	size_t n;		      /* > 0 */
	uint32_t *ids;		      /* claim, release: n ids */
	enum claim *claims;	      /* claim: n answers, filled in */
	struct store_result *results; /* finish, hold: n outcomes */
	int rc;			      /* 0, or -1 with err */
	int tried;		      /* 0: not tried, the store had failed */
	char err[1024];
	struct store_job *next; /* the worker's while it has the job */
};

struct store_worker;

/*
 * Start the thread that calls claims from now on for every job, or for
 * the claims alone when outcomes (a second connection to the same store,
 * or NULL) is given a thread of its own.  NULL with err on failure (then
 * the stores are still the caller's to call).
 */
struct store_worker *store_worker_start(struct store *claims,
					struct store *outcomes,
					void (*wake)(void *), void *wake_arg,
					char *err, size_t errlen);

/* Hand a job over; it comes back from store_worker_take(). */
void store_worker_submit(struct store_worker *w, struct store_job *j);

/* A job done, or NULL when none is back yet. */
struct store_job *store_worker_take(struct store_worker *w);

/*
 * Do every job submitted, then end the threads: the stores are the
 * caller's again.  Jobs not yet taken can still be taken.  NULL-safe.
 */
void store_worker_stop(struct store_worker *w);

/* After store_worker_stop() and taking every job: free w.  NULL-safe. */
void store_worker_free(struct store_worker *w);

#endif
