#include "store_worker.h"

#include <pthread.h>
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

struct store_worker {
	struct store *store;
	void (*wake)(void *);
	void *wake_arg;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	/* under lock: jobs to do, jobs done, and the order to end */
	struct store_job *todo, **todo_tail;
	struct store_job *done, **done_tail;
	int stop;
	int running; /* the thread exists: stop joins it */
	/* the worker's own, unlocked */
	int failed;
	uint32_t *ids;
	enum claim *claims;
	struct store_result *results;
	size_t room;
};

/* Scratch room for n entries of a merged call; 0, or -1. */
static int grow(struct store_worker *w, size_t n)
{
	uint32_t *ids;
	enum claim *claims;
	struct store_result *results;

	if (n <= w->room)
		return 0;
	ids = realloc(w->ids, n * sizeof(*ids));
	if (ids)
		w->ids = ids;
	claims = realloc(w->claims, n * sizeof(*claims));
	if (claims)
		w->claims = claims;
	results = realloc(w->results, n * sizeof(*results));
	if (results)
		w->results = results;
	if (ids == NULL || claims == NULL || results == NULL)
		return -1;
	w->room = n;
	return 0;
}

static int call(struct store_worker *w, enum store_job_kind kind, uint32_t *ids,
		enum claim *claims, const struct store_result *results,
		size_t n, char *err, size_t errlen)
{
	switch (kind) {
	case STORE_JOB_CLAIM:
		return store_claim(w->store, ids, n, claims, err, errlen);
	case STORE_JOB_FINISH:
		return store_finish(w->store, results, n, err, errlen);
	case STORE_JOB_RELEASE:
		return store_release(w->store, ids, n, err, errlen);
	case STORE_JOB_HOLD:
		return store_hold(w->store, results, n, err, errlen);
	}
	return -1;
}

/* One job alone, on its own arrays. */
static void do_one(struct store_worker *w, struct store_job *j)
{
	j->tried = 1;
	j->rc = call(w, j->kind, j->ids, j->claims, j->results, j->n, j->err,
		     sizeof(j->err));
}

/* Jobs g[0..k) of one kind, holding total entries, in one store call. */
static void do_group(struct store_worker *w, struct store_job **g, size_t k,
		     size_t total)
{
	size_t i, at = 0;
	int rc;

	if (k == 1 || grow(w, total) < 0) {
		for (i = 0; i < k && !w->failed; i++) {
			do_one(w, g[i]);
			w->failed = g[i]->rc < 0;
		}
		for (; i < k; i++) {
			g[i]->tried = 0;
			g[i]->rc = -1;
			snprintf(g[i]->err, sizeof(g[i]->err),
				 "not tried: the store failed before");
		}
		return;
	}
	for (i = 0; i < k; i++) {
		if (g[i]->kind == STORE_JOB_FINISH ||
		    g[i]->kind == STORE_JOB_HOLD)
			memcpy(w->results + at, g[i]->results,
			       g[i]->n * sizeof(*w->results));
		else
			memcpy(w->ids + at, g[i]->ids,
			       g[i]->n * sizeof(*w->ids));
		at += g[i]->n;
	}
	rc = call(w, g[0]->kind, w->ids, w->claims, w->results, total,
		  g[0]->err, sizeof(g[0]->err));
	w->failed = rc < 0;
	for (i = 0, at = 0; i < k; i++) {
		g[i]->tried = 1;
		g[i]->rc = rc;
		if (i > 0)
			memcpy(g[i]->err, g[0]->err, sizeof(g[i]->err));
		if (rc == 0 && g[i]->kind == STORE_JOB_CLAIM)
			memcpy(g[i]->claims, w->claims + at,
			       g[i]->n * sizeof(*w->claims));
		at += g[i]->n;
	}
}

/* The jobs of list of one kind, in their order, grouped. */
static void do_kind(struct store_worker *w, struct store_job *list,
		    enum store_job_kind kind)
{
	struct store_job *g[GROUP_JOBS], *j;
	size_t k = 0, total = 0;

	for (j = list; j; j = j->next) {
		if (j->kind != kind)
			continue;
		/* a full group goes first: it may fail, and this job with it */
		if (k > 0 && (k == GROUP_JOBS || total + j->n > GROUP_MAX)) {
			do_group(w, g, k, total);
			k = 0;
			total = 0;
		}
		if (w->failed) {
			j->tried = 0;
			j->rc = -1;
			snprintf(j->err, sizeof(j->err),
				 "not tried: the store failed before");
			continue;
		}
		g[k++] = j;
		total += j->n;
	}
	if (k > 0)
		do_group(w, g, k, total);
}

static void *work(void *arg)
{
	struct store_worker *w = arg;
	struct store_job *list, **tail;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->todo == NULL && !w->stop)
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->todo == NULL)
			break;
		list = w->todo;
		tail = w->todo_tail;
		w->todo = NULL;
		w->todo_tail = &w->todo;
		pthread_mutex_unlock(&w->lock);

		do_kind(w, list, STORE_JOB_CLAIM);
		do_kind(w, list, STORE_JOB_FINISH);
		do_kind(w, list, STORE_JOB_RELEASE);
		do_kind(w, list, STORE_JOB_HOLD);

		pthread_mutex_lock(&w->lock);
		*w->done_tail = list;
		w->done_tail = tail;
		pthread_mutex_unlock(&w->lock);
		if (w->wake)
			w->wake(w->wake_arg);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

struct store_worker *store_worker_start(struct store *s, void (*wake)(void *),
					void *wake_arg, char *err,
					size_t errlen)
{
	struct store_worker *w = calloc(1, sizeof(*w));
	sigset_t all, old;
	int rc;

	if (w == NULL) {
		snprintf(err, errlen,
			 "out of memory starting the store worker");
		return NULL;
	}
	w->store = s;
	w->wake = wake;
	w->wake_arg = wake_arg;
	w->todo_tail = &w->todo;
	w->done_tail = &w->done;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	/*
	 * The thread blocks every signal it can: SIGINT, SIGTERM, SIGHUP go
	 * to the main thread as before (its loop watches them), and no store
	 * call is cut short by EINTR.
	 */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&w->thread, NULL, work, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(err, errlen,
			 "cannot start the store worker thread: %s",
			 strerror(rc));
		store_worker_free(w);
		return NULL;
	}
	w->running = 1;
	return w;
}

void store_worker_submit(struct store_worker *w, struct store_job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&w->lock);
	*w->todo_tail = j;
	w->todo_tail = &j->next;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

struct store_job *store_worker_take(struct store_worker *w)
{
	struct store_job *j;

	pthread_mutex_lock(&w->lock);
	j = w->done;
	if (j) {
		w->done = j->next;
		if (w->done == NULL)
			w->done_tail = &w->done;
		j->next = NULL;
	}
	pthread_mutex_unlock(&w->lock);
	return j;
}

void store_worker_stop(struct store_worker *w)
{
	if (w == NULL || !w->running)
		return;
	pthread_mutex_lock(&w->lock);
	w->stop = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	w->running = 0;
}

void store_worker_free(struct store_worker *w)
{
	if (w == NULL)
		return;
	store_worker_stop(w);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w->ids);
	free(w->claims);
	free(w->results);
	free(w);
}
