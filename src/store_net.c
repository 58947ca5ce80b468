#include "store_net.h"

#include "clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The first pause after a loss, and the longest, in seconds. */
#define PAUSE_FIRST 0.02
#define PAUSE_MAX   1.0

struct store_net *store_net_of(struct store *s)
{
	if (s && s->ops->net == NULL) {
		fprintf(stderr,
			"sender: internal error: store_net given a '%s' "
			"store, which is not a network store\n",
			s->ops->name);
		abort();
	}
	return (struct store_net *)s;
}

static const struct store_net_ops *net_ops(const struct store_net *n)
{
	return n->base.ops->net;
}

int store_net_retry(struct store_net *n,
		    int (*attempt)(struct store_net *n, void *ctx), void *ctx,
		    const char *what, char *err, size_t errlen)
{
	const struct store_net_ops *ops = net_ops(n);
	double deadline = -1, pause = PAUSE_FIRST, left;
	unsigned conflicts = 0;
	enum store_net_fault fault;

	for (;;) {
		if ((ops->connected(n) || ops->connect(n) == 0) &&
		    attempt(n, ctx) == 0) {
			n->gave_up = 0;
			return 0;
		}
		fault = ops->fault(n);
		if (fault == STORE_NET_CONFLICT &&
		    ++conflicts <= ops->conflict_retries) {
			n->conflicts++;
			continue;
		}
		if (fault != STORE_NET_LOST)
			break;
		ops->disconnect(n);
		if (deadline < 0)
			deadline = clock_s() +
				   (n->gave_up ? 0 : n->reconnect_timeout);
		left = deadline - clock_s();
		if (left <= 0) {
			n->gave_up = 1;
			snprintf(
				err, errlen,
				"lost the connection to %s at %s while "
				"trying to %s, and it did not come back within "
				"%g s ([%s] reconnect_timeout): %s",
				ops->product, n->where, what,
				n->reconnect_timeout, ops->section,
				ops->message(n));
			return -1;
		}
		clock_nap(pause < left ? pause : left);
		pause = pause * 2 < PAUSE_MAX ? pause * 2 : PAUSE_MAX;
	}
	snprintf(err, errlen, "%s at %s, %s: cannot %s: %s", ops->product,
		 n->where, n->object, what, ops->message(n));
	return -1;
}

/* ------------------------------------------------------------ batch */

static int slot_cmp(const void *a, const void *b)
{
	const struct store_net_slot *x = a, *y = b;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

int store_net_batch_init(struct store_net_batch *b, const uint32_t *ids,
			 size_t n)
{
	size_t i;

	memset(b, 0, sizeof(*b));
	b->slots = calloc(n ? n : 1, sizeof(*b->slots));
	b->ids = calloc(n ? n : 1, sizeof(*b->ids));
	b->marks = calloc(n ? n : 1, 1);
	if (b->slots == NULL || b->ids == NULL || b->marks == NULL)
		return -1;
	b->n = n;
	b->now = time(NULL);
	for (i = 0; i < n; i++) {
		b->slots[i].id = ids[i];
		b->slots[i].index = i;
	}
	/* ascending ids: concurrent runs take row locks in the same order */
	qsort(b->slots, n, sizeof(*b->slots), slot_cmp);
	for (i = 0; i < n; i++) {
		/* the first copy is claimed; the others are skipped as done */
		b->slots[i].dup = i > 0 && b->slots[i].id == b->slots[i - 1].id;
		b->slots[i].state = CLAIM_DONE;
		b->uniq += !b->slots[i].dup;
	}
	return 0;
}

void store_net_batch_release(struct store_net_batch *b)
{
	size_t i;

	for (i = 0; b->slots && i < b->n; i++)
		free(b->slots[i].held_by);
	free(b->slots);
	free(b->ids);
	free(b->marks);
	memset(b, 0, sizeof(*b));
}

struct store_net_slot *store_net_find(struct store_net_batch *b, int64_t id)
{
	size_t lo = 0, hi = b->n;

	if (id < 0 || id > UINT32_MAX)
		return NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (b->slots[mid].id < (uint32_t)id)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* the first of equal ids: the one that is claimed */
	return lo < b->n && b->slots[lo].id == (uint32_t)id ? &b->slots[lo]
							    : NULL;
}

void store_net_batch_out(const struct store_net_batch *b, enum claim *out)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		out[b->slots[i].index] = b->slots[i].state;
}

/* Whether a claimed id is not ours: the backend must look it up. */
static int unsettled(const struct store_net_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (!b->slots[i].dup && b->slots[i].state != CLAIM_OK)
			return 1;
	return 0;
}

/* ------------------------------------------------------------ the calls */

static int claim_attempt(struct store_net *n, void *ctx)
{
	return net_ops(n)->claim(n, ctx);
}

static int look_up_attempt(struct store_net *n, void *ctx)
{
	return net_ops(n)->look_up(n, ctx);
}

int store_net_claim(struct store *s, const uint32_t *ids, size_t n,
		    enum claim *out, char *err, size_t errlen)
{
	struct store_net *net = store_net_of(s);
	struct store_net_batch b;
	int rc = -1;

	if (store_net_batch_init(&b, ids, n) < 0) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}
	if (store_net_retry(net, claim_attempt, &b, "claim ids", err, errlen) <
	    0)
		goto done;
	if (net_ops(net)->look_up && unsettled(&b) &&
	    store_net_retry(net, look_up_attempt, &b,
			    "look up ids already there", err, errlen) < 0)
		goto done;
	store_net_batch_out(&b, out);
	rc = 0;
done:
	store_net_batch_release(&b);
	return rc;
}

static int finish_attempt(struct store_net *n, void *ctx)
{
	return net_ops(n)->finish(n, ctx);
}

int store_net_finish(struct store *s, const struct store_result *r, size_t n,
		     char *err, size_t errlen)
{
	struct store_net_results res = { r, n, 0 };

	return store_net_retry(store_net_of(s), finish_attempt, &res,
			       "record results", err, errlen);
}

static int hold_attempt(struct store_net *n, void *ctx)
{
	return net_ops(n)->hold(n, ctx);
}

int store_net_hold(struct store *s, const struct store_result *r, size_t n,
		   char *err, size_t errlen)
{
	struct store_net_results res = { r, n, 0 };

	if (net_ops(store_net_of(s))->hold == NULL)
		return 0;
	return store_net_retry(store_net_of(s), hold_attempt, &res,
			       "note letters in doubt", err, errlen);
}

struct id_list {
	const uint32_t *ids;
	size_t n;
};

static int release_attempt(struct store_net *n, void *ctx)
{
	const struct id_list *l = ctx;

	return net_ops(n)->release(n, l->ids, l->n);
}

int store_net_release(struct store *s, const uint32_t *ids, size_t n, char *err,
		      size_t errlen)
{
	struct id_list l = { ids, n };

	return store_net_retry(store_net_of(s), release_attempt, &l,
			       "release claims", err, errlen);
}

static int totals_attempt(struct store_net *n, void *ctx)
{
	return net_ops(n)->totals(n, ctx);
}

int store_net_totals(struct store *s, struct store_totals *out, char *err,
		     size_t errlen)
{
	return store_net_retry(store_net_of(s), totals_attempt, out,
			       "count records", err, errlen);
}
