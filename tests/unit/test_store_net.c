/*
 * store_net: the claim batch (sorted, duplicates marked, slots found by
 * id, answers back in the caller's order), the reconnect-and-wait loop
 * against a fake backend whose "reconnect" succeeds after k tries or
 * never, and the checked downcasts.
 */
#include "clock.h"
#include "harness.h"
#include "store_net.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char err[512];

/* ------------------------------------------------------------ batch */

static void test_batch_sorted_with_duplicates(void)
{
	static const uint32_t ids[] = { 5, 3, 5, 1, 3, 3 };
	static const uint32_t sorted[] = { 1, 3, 3, 3, 5, 5 };
	static const size_t index[] = { 3, 1, 4, 5, 0, 2 };
	static const int dup[] = { 0, 0, 1, 1, 0, 1 };
	struct store_net_batch b;
	size_t i;

	if (!CHECK_INT_EQ(store_net_batch_init(&b, ids, 6), 0))
		return;
	CHECK_INT_EQ(b.n, 6);
	CHECK_INT_EQ(b.uniq, 3);
	for (i = 0; i < 6; i++) {
		CHECK_INT_EQ(b.slots[i].id, sorted[i]);
		CHECK_INT_EQ(b.slots[i].index, index[i]);
		CHECK_INT_EQ(b.slots[i].dup, dup[i]);
		CHECK_INT_EQ(b.slots[i].state, CLAIM_DONE);
	}
	store_net_batch_release(&b);
	CHECK(b.slots == NULL);
}

static void test_find_slot(void)
{
	static const uint32_t ids[] = { 7, 4294967295u, 2, 7, 0, 9 };
	struct store_net_batch b;
	struct store_net_slot *sl;

	if (!CHECK_INT_EQ(store_net_batch_init(&b, ids, 6), 0))
		return;
	sl = store_net_find(&b, 7);
	/* the first copy, the one that is claimed */
	if (CHECK(sl != NULL)) {
		CHECK_INT_EQ(sl->index, 0);
		CHECK_INT_EQ(sl->dup, 0);
	}
	CHECK(store_net_find(&b, 0) == &b.slots[0]);
	CHECK(store_net_find(&b, 4294967295LL) == &b.slots[5]);
	CHECK(store_net_find(&b, 8) == NULL);
	CHECK(store_net_find(&b, 1) == NULL);
	CHECK(store_net_find(&b, 10) == NULL);
	CHECK(store_net_find(&b, -1) == NULL);
	CHECK(store_net_find(&b, 4294967296LL) == NULL);
	store_net_batch_release(&b);
}

static void test_batch_out_in_callers_order(void)
{
	static const uint32_t ids[] = { 30, 10, 30, 20 };
	enum claim out[4];
	struct store_net_batch b;

	if (!CHECK_INT_EQ(store_net_batch_init(&b, ids, 4), 0))
		return;
	store_net_find(&b, 30)->state = CLAIM_OK;
	store_net_find(&b, 10)->state = CLAIM_HELD;
	store_net_find(&b, 20)->state = CLAIM_OK;
	store_net_batch_out(&b, out);
	CHECK_INT_EQ(out[0], CLAIM_OK);
	CHECK_INT_EQ(out[1], CLAIM_HELD);
	CHECK_INT_EQ(out[2], CLAIM_DONE); /* the second 30: skipped */
	CHECK_INT_EQ(out[3], CLAIM_OK);
	store_net_batch_release(&b);
}

/* ------------------------------------------------------------ a fake */

struct fake {
	struct store_net net;
	int up;		/* a session is open */
	int connects;	/* reconnects tried */
	int attempts;	/* attempts run */
	int back_after; /* the connect that succeeds, 0: never */
	int fail_with;	/* attempts fail with this fault first ... */
	int fails;	/* ... this many times */
	enum store_net_fault fault;
	char msg[64];
	char held[8]; /* the ids the fake's claim finds taken */
};

static struct fake *fake_of(struct store_net *n)
{
	return (struct fake *)n;
}

static int fake_connected(struct store_net *n)
{
	return fake_of(n)->up;
}

static int fake_connect(struct store_net *n)
{
	struct fake *f = fake_of(n);

	f->connects++;
	if (f->back_after && f->connects >= f->back_after) {
		f->up = 1;
		return 0;
	}
	f->fault = STORE_NET_LOST;
	snprintf(f->msg, sizeof(f->msg), "connection refused");
	return -1;
}

static void fake_disconnect(struct store_net *n)
{
	fake_of(n)->up = 0;
}

static enum store_net_fault fake_fault(struct store_net *n)
{
	return fake_of(n)->fault;
}

static const char *fake_message(struct store_net *n)
{
	return fake_of(n)->msg;
}

static int attempt(struct store_net *n, void *ctx)
{
	struct fake *f = fake_of(n);

	(void)ctx;
	f->attempts++;
	if (f->fails > 0) {
		f->fails--;
		f->fault = (enum store_net_fault)f->fail_with;
		snprintf(f->msg, sizeof(f->msg), "failure %d", f->attempts);
		return -1;
	}
	return 0;
}

/* Claims every id but those in held; look_up marks those CLAIM_HELD. */
static int fake_claim(struct store_net *n, struct store_net_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (!b->slots[i].dup)
			b->slots[i].state = strchr(fake_of(n)->held,
						   (int)b->slots[i].id)
						    ? CLAIM_DONE
						    : CLAIM_OK;
	return attempt(n, NULL);
}

static int fake_look_up(struct store_net *n, struct store_net_batch *b)
{
	size_t i;

	for (i = 0; i < b->n; i++)
		if (!b->slots[i].dup && b->slots[i].state != CLAIM_OK)
			b->slots[i].state = CLAIM_HELD;
	return attempt(n, NULL);
}

static const struct store_net_ops fake_net_ops = {
	.product = "Fake",
	.section = "fake",
	.conflict_retries = 3,
	.connected = fake_connected,
	.connect = fake_connect,
	.disconnect = fake_disconnect,
	.fault = fake_fault,
	.message = fake_message,
	.claim = fake_claim,
	.look_up = fake_look_up,
};

static const struct store_ops fake_ops = {
	.name = "fake",
	.claim = store_net_claim,
	.net = &fake_net_ops,
};

static void fake_init(struct fake *f, double timeout, int back_after)
{
	memset(f, 0, sizeof(*f));
	f->net.base.ops = &fake_ops;
	f->net.reconnect_timeout = timeout;
	snprintf(f->net.where, sizeof(f->net.where), "'db:1'");
	snprintf(f->net.object, sizeof(f->net.object), "table 't'");
	f->back_after = back_after;
}

static int retry(struct fake *f)
{
	err[0] = '\0';
	return store_net_retry(&f->net, attempt, NULL, "claim ids", err,
			       sizeof(err));
}

/* Back at the 4th reconnect: pauses of 20, 40, 80 ms between. */
static void test_retry_back_after_k(void)
{
	struct fake f;
	double t0 = clock_s(), took;

	fake_init(&f, 5, 4);
	CHECK_INT_EQ(retry(&f), 0);
	took = clock_s() - t0;
	CHECK_INT_EQ(f.connects, 4);
	CHECK_INT_EQ(f.attempts, 1);
	CHECK_INT_EQ(f.net.gave_up, 0);
	CHECK(took >= 0.139);
	CHECK(took < 2);
}

/* Never back: gives up after reconnect_timeout, not before, not long after. */
static void test_retry_gives_up(void)
{
	struct fake f;
	double t0 = clock_s(), took;

	fake_init(&f, 0.3, 0);
	CHECK_INT_EQ(retry(&f), -1);
	took = clock_s() - t0;
	CHECK(took >= 0.299);
	CHECK(took < 1.3);
	CHECK_INT_EQ(f.attempts, 0);
	CHECK(f.connects >= 4); /* 20 + 40 + 80 + 160 ms fit in 0.3 s */
	CHECK(f.connects <= 6);
	CHECK_STR_EQ(err, "lost the connection to Fake at 'db:1' while trying "
			  "to claim ids, and it did not come back within 0.3 s "
			  "([fake] reconnect_timeout): connection refused");
	CHECK_INT_EQ(f.net.gave_up, 1);
	/* once given up, the next call tries once and does not wait again */
	t0 = clock_s();
	f.connects = 0;
	CHECK_INT_EQ(retry(&f), -1);
	CHECK_INT_EQ(f.connects, 1);
	CHECK(clock_s() - t0 < 0.1);
	/* and once the server is back, calls wait again after a loss */
	f.back_after = 1;
	CHECK_INT_EQ(retry(&f), 0);
	CHECK_INT_EQ(f.net.gave_up, 0);
}

/* A connection lost during an attempt: reconnect, run it again. */
static void test_retry_lost_in_attempt(void)
{
	struct fake f;

	fake_init(&f, 5, 1);
	f.fail_with = STORE_NET_LOST;
	f.fails = 2;
	CHECK_INT_EQ(retry(&f), 0);
	CHECK_INT_EQ(f.attempts, 3);
	CHECK_INT_EQ(f.connects, 3);
}

static void test_retry_conflicts_then_error(void)
{
	struct fake f;

	fake_init(&f, 5, 1);
	f.fail_with = STORE_NET_CONFLICT;
	f.fails = 3;
	CHECK_INT_EQ(retry(&f), 0);
	CHECK_INT_EQ(f.attempts, 4);
	CHECK_INT_EQ(f.connects, 1);
	/* each conflict run again is counted, for -v */
	CHECK_INT_EQ(f.net.conflicts, 3);
	CHECK_INT_EQ(store_conflicts(&f.net.base), 3);
	/* conflict_retries (3) more, then it is an error */
	f.fails = 100;
	f.attempts = 0;
	CHECK_INT_EQ(retry(&f), -1);
	CHECK_INT_EQ(f.attempts, 4);
	CHECK_INT_EQ(f.net.conflicts, 6);
	CHECK_STR_EQ(err,
		     "Fake at 'db:1', table 't': cannot claim ids: failure 4");
}

static void test_retry_other_error_at_once(void)
{
	struct fake f;

	fake_init(&f, 5, 1);
	f.fail_with = STORE_NET_OTHER;
	f.fails = 1;
	CHECK_INT_EQ(retry(&f), -1);
	CHECK_INT_EQ(f.attempts, 1);
	CHECK_STR_EQ(err,
		     "Fake at 'db:1', table 't': cannot claim ids: failure 1");
}

/* store_net_claim: claim, look up what is not ours, answers in order. */
static void test_claim_through_ops(void)
{
	static const uint32_t ids[] = { 'c', 'a', 'b', 'a' };
	enum claim out[4];
	struct fake f;

	fake_init(&f, 5, 1);
	snprintf(f.held, sizeof(f.held), "b");
	CHECK_INT_EQ(store_claim(&f.net.base, ids, 4, out, err, sizeof(err)),
		     0);
	CHECK_INT_EQ(out[0], CLAIM_OK);
	CHECK_INT_EQ(out[1], CLAIM_OK);
	CHECK_INT_EQ(out[2], CLAIM_HELD);
	CHECK_INT_EQ(out[3], CLAIM_DONE);
	CHECK_INT_EQ(f.attempts, 2); /* the claim and one look-up */
	/* all ours: no look-up */
	f.held[0] = '\0';
	f.attempts = 0;
	CHECK_INT_EQ(store_claim(&f.net.base, ids, 4, out, err, sizeof(err)),
		     0);
	CHECK_INT_EQ(f.attempts, 1);
}

/* ------------------------------------------------------------ downcasts */

/* Run fn in a child with stderr in a file: it must abort saying want. */
static void expect_abort(void (*fn)(void), const char *want)
{
	char text[512] = "";
	const char *path = h_tmp("stderr");
	FILE *fp;
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		/* reopened on a file, stderr would be fully buffered */
		if (freopen(path, "w", stderr) == NULL)
			_exit(2);
		setvbuf(stderr, NULL, _IONBF, 0);
		fn();
		_exit(0);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
	fp = fopen(path, "r");
	if (CHECK(fp != NULL)) {
		if (fgets(text, sizeof(text), fp) == NULL)
			text[0] = '\0';
		fclose(fp);
	}
	CHECK_CONTAINS(text, want);
}

static void not_a_network_store(void)
{
	struct store s = { store_find("sqlite") };

	store_net_of(&s);
}

static void a_fake_as_sqlite(void)
{
	struct fake f;

	fake_init(&f, 1, 1);
	store_checked(&f.net.base, store_find("sqlite"), "store_sqlite");
}

static void test_checked_downcasts(void)
{
	struct fake f;

	fake_init(&f, 1, 1);
	CHECK(store_net_of(&f.net.base) == &f.net);
	CHECK(store_checked(&f.net.base, &fake_ops, "fake") == &f.net.base);
	CHECK(store_checked(NULL, &fake_ops, "fake") == NULL);
	CHECK_STR_EQ(store_name(&f.net.base), "fake");
	expect_abort(not_a_network_store,
		     "sender: internal error: store_net given a 'sqlite' "
		     "store");
	expect_abort(a_fake_as_sqlite,
		     "sender: internal error: store_sqlite given a 'fake' "
		     "store");
}

static const struct h_test tests[] = {
	TEST(test_batch_sorted_with_duplicates),
	TEST(test_find_slot),
	TEST(test_batch_out_in_callers_order),
	TEST(test_retry_back_after_k),
	TEST(test_retry_gives_up),
	TEST(test_retry_lost_in_attempt),
	TEST(test_retry_conflicts_then_error),
	TEST(test_retry_other_error_at_once),
	TEST(test_claim_through_ops),
	TEST(test_checked_downcasts),
	{ 0 },
};

int main(int argc, char **argv)
{
	return h_main(argc, argv, tests);
}
