#include "store_worker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Jobs done in one store call at most, and ids or outcomes in it: big
 * enough for a store far behind to catch up, small enough for one
 * statement of any backend.
 */
#define GROUP_JOBS 64
#define GROUP_MAX  8192

/*
 * One thread and the store connection it calls.  Lane 0 does every job;
 * with a second connection, lane 1 takes the outcomes (finish, release,
 * hold) and lane 0 only the claims.
 */
struct lane {
	struct store_worker *w;
	struct store *store;
	pthread_t thread;
	pthread_cond_t cond;
	int running; /* the thread exists: stop joins it */
	/* under w->lock: jobs to do */
	struct store_job *todo, **todo_tail;
	/* the lane's own, unlocked: scratch room for merged calls */
	uint32_t *ids;
	enum claim *claims;
	struct store_result *results;
	size_t room;
};

struct store_worker {
	void (*wake)(void *);
	void *wake_arg;
	pthread_mutex_t lock;
	/* under lock: jobs done, and the order to end */
	struct store_job *done, **done_tail;
	int stop;
	/*
	 * Whether done holds a job: set and cleared under lock, read without
	 * it by store_worker_take(), which the caller's loop calls every turn
	 * and which mostly finds nothing.
	 */
	atomic_int has_done;
	/* a store call failed, on either lane: call the store no more */
	atomic_int failed;
	struct lane lanes[2];
	unsigned nlanes;
};

/* Scratch room for n entries of a merged call; 0, or -1. */
static int grow(struct lane *l, size_t n)
{
	uint32_t *ids;
	enum claim *claims;
	struct store_result *results;

	if (n <= l->room)
		return 0;
	ids = realloc(l->ids, n * sizeof(*ids));
	if (ids)
		l->ids = ids;
	claims = realloc(l->claims, n * sizeof(*claims));
	if (claims)
		l->claims = claims;
	results = realloc(l->results, n * sizeof(*results));
	if (results)
		l->results = results;
	if (ids == NULL || claims == NULL || results == NULL)
		return -1;
	l->room = n;
	return 0;
}

static int call(struct lane *l, enum store_job_kind kind, uint32_t *ids,
		enum claim *claims, const struct store_result *results,
		size_t n, char *err, size_t errlen)
{
	int rc = -1;

	switch (kind) {
	case STORE_JOB_CLAIM:
		rc = store_claim(l->store, ids, n, claims, err, errlen);
		break;
	case STORE_JOB_FINISH:
		rc = store_finish(l->store, results, n, err, errlen);
		break;
	case STORE_JOB_RELEASE:
		rc = store_release(l->store, ids, n, err, errlen);
		break;
	case STORE_JOB_HOLD:
		rc = store_hold(l->store, results, n, err, errlen);
		break;
	}
	if (rc < 0)
		atomic_store(&l->w->failed, 1);
	return rc;
}

static void not_tried(struct store_job *j)
{
	j->tried = 0;
	j->rc = -1;
	snprintf(j->err, sizeof(j->err), "not tried: the store failed before");
}

/* Jobs g[0..k) of one kind, holding total entries, in one store call. */
static void do_group(struct lane *l, struct store_job **g, size_t k,
		     size_t total)
{
	size_t i, at = 0;
	int rc;

	if (k == 1 || grow(l, total) < 0) {
		/* one job at a time, on its own arrays */
		for (i = 0; i < k && !atomic_load(&l->w->failed); i++) {
			g[i]->tried = 1;
			g[i]->rc = call(l, g[i]->kind, g[i]->ids, g[i]->claims,
					g[i]->results, g[i]->n, g[i]->err,
					sizeof(g[i]->err));
		}
		for (; i < k; i++)
			not_tried(g[i]);
		return;
	}
	for (i = 0; i < k; i++) {
		if (g[i]->kind == STORE_JOB_FINISH ||
		    g[i]->kind == STORE_JOB_HOLD)
			memcpy(l->results + at, g[i]->results,
			       g[i]->n * sizeof(*l->results));
		else
			memcpy(l->ids + at, g[i]->ids,
			       g[i]->n * sizeof(*l->ids));
		at += g[i]->n;
	}
	rc = call(l, g[0]->kind, l->ids, l->claims, l->results, total,
		  g[0]->err, sizeof(g[0]->err));
	for (i = 0, at = 0; i < k; i++) {
		g[i]->tried = 1;
		g[i]->rc = rc;
		if (i > 0)
			memcpy(g[i]->err, g[0]->err, sizeof(g[i]->err));
		if (rc == 0 && g[i]->kind == STORE_JOB_CLAIM)
			memcpy(g[i]->claims, l->claims + at,
			       g[i]->n * sizeof(*l->claims));
		at += g[i]->n;
	}
}

/* The jobs of list of one kind, in their order, grouped. */
static void do_kind(struct lane *l, struct store_job *list,
		    enum store_job_kind kind)
{
	struct store_job *g[GROUP_JOBS], *j;
	size_t k = 0, total = 0;

	for (j = list; j; j = j->next) {
		if (j->kind != kind)
			continue;
		/* a full group goes first: it may fail, and this job with it */
		if (k > 0 && (k == GROUP_JOBS || total + j->n > GROUP_MAX)) {
			do_group(l, g, k, total);
			k = 0;
			total = 0;
		}
		if (atomic_load(&l->w->failed)) {
			not_tried(j);
			continue;
		}
		g[k++] = j;
		total += j->n;
	}
	if (k > 0)
		do_group(l, g, k, total);
}

static void *work(void *arg)
{
	struct lane *l = arg;
	struct store_worker *w = l->w;
	struct store_job *list, **tail;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (l->todo == NULL && !w->stop)
			pthread_cond_wait(&l->cond, &w->lock);
		if (l->todo == NULL)
			break;
		list = l->todo;
		tail = l->todo_tail;
		l->todo = NULL;
		l->todo_tail = &l->todo;
		pthread_mutex_unlock(&w->lock);

		do_kind(l, list, STORE_JOB_CLAIM);
		do_kind(l, list, STORE_JOB_FINISH);
		do_kind(l, list, STORE_JOB_RELEASE);
		do_kind(l, list, STORE_JOB_HOLD);

		pthread_mutex_lock(&w->lock);
		*w->done_tail = list;
		w->done_tail = tail;
		atomic_store(&w->has_done, 1);
		pthread_mutex_unlock(&w->lock);
		if (w->wake)
			w->wake(w->wake_arg);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct store_worker *store_worker_start(struct store *claims,
					struct store *outcomes,
					void (*wake)(void *), void *wake_arg,
					char *err, size_t errlen)
{
	struct store_worker *w = calloc(1, sizeof(*w));
	sigset_t all, old;
	unsigned i;
	int rc = 0;

	if (w == NULL) {
		snprintf(err, errlen,
			 "out of memory starting the store worker");
		return NULL;
	}
	w->wake = wake;
	w->wake_arg = wake_arg;
	w->done_tail = &w->done;
	atomic_init(&w->failed, 0);
	atomic_init(&w->has_done, 0);
	pthread_mutex_init(&w->lock, NULL);
	w->nlanes = outcomes ? 2 : 1;
	w->lanes[0].store = claims;
	w->lanes[1].store = outcomes;
	for (i = 0; i < 2; i++) {
		w->lanes[i].w = w;
		w->lanes[i].todo_tail = &w->lanes[i].todo;
		pthread_cond_init(&w->lanes[i].cond, NULL);
	}
	/*
	 * The threads block every signal they can: SIGINT, SIGTERM, SIGHUP
	 * go to the main thread as before (its loop watches them), and no
	 * store call is cut short by EINTR.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (i = 0; i < w->nlanes && rc == 0; i++) {
		rc = pthread_create(&w->lanes[i].thread, NULL, work,
				    &w->lanes[i]);
		w->lanes[i].running = rc == 0;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen,
			 "cannot start the store worker thread: %s",
			 strerror(rc));
		store_worker_free(w);
		return NULL;
	}
	return w;
}

void store_worker_submit(struct store_worker *w, struct store_job *j)
{
	struct lane *l = &w->lanes[0];

	if (w->nlanes == 2 && j->kind != STORE_JOB_CLAIM)
		l = &w->lanes[1];
	j->next = NULL;
	pthread_mutex_lock(&w->lock);
	*l->todo_tail = j;
	l->todo_tail = &j->next;
	pthread_cond_signal(&l->cond);
	pthread_mutex_unlock(&w->lock);
}

struct store_job *store_worker_take(struct store_worker *w)
{
	struct store_job *j;

	if (!atomic_load(&w->has_done))
		return NULL; /* a job done meanwhile is taken next turn */
	pthread_mutex_lock(&w->lock);
	j = w->done;
	if (j) {
		w->done = j->next;
		if (w->done == NULL) {
			w->done_tail = &w->done;
			atomic_store(&w->has_done, 0);
		}
		j->next = NULL;
	}
	pthread_mutex_unlock(&w->lock);
	return j;
}

void store_worker_stop(struct store_worker *w)
{
	unsigned i;

	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	for (i = 0; i < 2; i++)
		pthread_cond_signal(&w->lanes[i].cond);
	pthread_mutex_unlock(&w->lock);
	for (i = 0; i < 2; i++) {
		if (!w->lanes[i].running)
			continue;
		pthread_join(w->lanes[i].thread, NULL);
		w->lanes[i].running = 0;
	}
}

void store_worker_free(struct store_worker *w)
{
	unsigned i;

	if (w == NULL)
		return;
	store_worker_stop(w);
	pthread_mutex_destroy(&w->lock);
	for (i = 0; i < 2; i++) {
		pthread_cond_destroy(&w->lanes[i].cond);
		free(w->lanes[i].ids);
		free(w->lanes[i].claims);
		free(w->lanes[i].results);
	}
	free(w);
}
