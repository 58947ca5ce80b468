/*
 * store_mongo: the MongoDB backend, over mongo-c-driver (libmongoc).
 *
 * One document per letter in [mongodb] collection:
 *
 *   { _id: "42", id: <int64> 42, ts: <date|null>, delivery_status:
 *     <int32|null>, owner: <run|null>, claimed_at: <date>, attempts:
 *     <int32>, error: <string|null> }
 *
 * with a unique index on id, created if missing: that index alone decides
 * who claims an id.  _id is the id in decimal, so that a record is also
 * found by _id, the one key every server looks up fast (see FerretDB
 * below).  Every call is a few commands, whatever the size of the batch:
 *
 *   claim    one unordered bulk insert; the ids whose insert failed with
 *            a duplicate key (11000, told by the server's writeErrors) are
 *            then looked up with one find, after the write, to tell a
 *            finished record from a claim; with --reclaim the abandoned
 *            claims (store_claim_abandoned()) are taken over by updates
 *            that match only the claim that was judged abandoned
 *   finish   bulks of updateOne(upsert) keyed by _id: idempotent, and a
 *            missing record is created
 *   release  one deleteMany of this run's claims
 *
 * A claim names its run (owner, "host:pid:start", unique per run), so a
 * claim found by our own insert is recognised as ours: that is what makes
 * a claim batch safe to run again after the connection was lost in the
 * middle of it, and why such a run leaves no claim behind.
 *
 * A lost server (killed, restarted, unreachable) is not an error at once:
 * the call is run again on a new client, for at most [mongodb]
 * reconnect_timeout seconds from the loss; then the core journals.  At
 * open there is no such wait: a server that is not there at the start is
 * an error, reported within the URI's serverSelectionTimeoutMS and
 * connectTimeoutMS (5 s unless the URI says otherwise).  Writes wait for
 * the server's journal unless the URI sets w or journal, so that a claim
 * survives a crash of the server.
 *
 * The URI may carry a password: it is never printed.  Messages name the
 * servers as host:port only, the driver's own log is silenced (it goes to
 * stderr by default), and the password is blanked out of any text that
 * comes back from the driver.
 *
 * FerretDB 1.24.2 with its SQLite handler (what the tests run on) differs
 * from MongoDB in ways that shape this file:
 *  - a filter is pushed down to SQLite only when it is exactly {_id:
 *    <string>}; any other filter ({id: ...}, $in) decodes every document
 *    of the collection in Go.  Hence the string _id, and finish keyed by
 *    it.  Even so every update and delete scans the whole table in SQLite
 *    (its SQL, ->'$._id', does not match the _id index, ->"_id"): on
 *    FerretDB recording one letter costs time in proportion to the size
 *    of the collection (about 90 ms at 10,000 records).  No design keeps
 *    SPEC's one record per id, claimed then done, without an update in
 *    place; MongoDB does it through the index.
 *  - an update command keeps one of the server's 100 pooled SQLite
 *    connections per statement that matched a document until the whole
 *    command ends: a command of 100 such statements (or several clients'
 *    commands adding up to 100) hangs the server for good.  Hence at most
 *    UPDATES_PER_COMMAND statements per command.
 *  - an update is a read then a write, not atomic: harmless here, since a
 *    record is finished by the run that holds its claim and taken over
 *    only under --reclaim, which SPEC section 6 allows only when no other
 *    run is active.
 *  - createIndexes answers "all indexes already exist" when an index of
 *    the same name exists without unique: the index is checked afterwards.
 *  - no $cond or $min in $group: --status counts state by state.
 *  - inserts (ordered: false) report duplicates in writeErrors with their
 *    index and code 11000, createIndexes makes a real unique SQLite index,
 *    dates, null and int64 are kept as such: claims work as on MongoDB.
 */
#include "cfg.h"
#include "clock.h"
#include "store.h"
#include "store_net.h"

#include <bson/bson.h>
#include <inttypes.h>
#include <mongoc/mongoc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Upserts per update command: FerretDB hangs at 100 (see above). */
#define UPDATES_PER_COMMAND 8
/* Defaults for URI options the user did not set, in milliseconds. */
#define CONNECT_TIMEOUT_MS   5000
#define SELECTION_TIMEOUT_MS 5000
#define SOCKET_TIMEOUT_MS    90000
/* The duplicate key error of inserts and upserts. */
#define DUPLICATE_KEY 11000

struct store_mongo {
	struct store_net net;	     /* first: the common part */
	mongoc_uri_t *uri;	     /* owned; holds the credentials */
	mongoc_client_t *client;     /* NULL while disconnected */
	mongoc_collection_t *coll;   /* of client */
	char *database, *collection; /* owned */
	char *owner;		     /* owned: this run, written into claims */
	int reclaim;		     /* --reclaim: take over abandoned claims */
	long lease;		     /* [store] claim_lease, for --reclaim */
	/* the last error: the server went away (retry) or anything else */
	int lost;
	uint32_t domain; /* the driver's error domain, 0 for our own */
	char msg[512];
	char absent[300]; /* read-only: the collection that is not there */
};

static const struct cfg_key mongo_keys[] = {
	{ "mongodb", "uri", CFG_SECRET, "mongodb://localhost:27017", 0, 0,
	  "SENDER_MONGODB_URI",
	  "connection string; it may hold a password (never printed)" },
	{ "mongodb", "database", CFG_STRING, "sender", 0, 0, NULL,
	  "database that holds the collection" },
	{ "mongodb", "collection", CFG_STRING, "results", 0, 0, NULL,
	  "the results collection, with a unique index on id made if missing" },
	{ "mongodb", "reconnect_timeout", CFG_SECONDS, "30", 0, 3600, NULL,
	  "seconds to wait for a lost server to come back before giving up" },
	{ NULL, NULL, CFG_STRING, NULL, 0, 0, NULL, NULL },
};

extern const struct store_ops store_mongo_ops;

static struct store_mongo *downcast(struct store *s)
{
	return (struct store_mongo *)store_checked(s, &store_mongo_ops,
						   "store_mongo");
}

static struct store_mongo *of_net(struct store_net *n)
{
	return downcast(&n->base);
}

/* ------------------------------------------------------------ errors */

/* Replace every copy of the len bytes of piece in text with stars. */
static void blank(char *text, const char *piece, size_t len)
{
	char *p = text;

	if (len == 0)
		return;
	while ((p = memmem(p, strlen(p), piece, len)) != NULL)
		memset(p, '*', len);
}

/* Blank the URI's password out of text that came from the driver. */
static void redact(const struct store_mongo *m, char *text)
{
	const char *pw = m->uri ? mongoc_uri_get_password(m->uri) : NULL;

	if (pw)
		blank(text, pw, strlen(pw));
}

/*
 * The same for a URI the driver could not parse, from its raw text: the
 * user and password, the password alone, and the value of every option
 * (some carry secrets, e.g. authMechanismProperties).
 */
static void redact_raw(const char *uri, char *text)
{
	const char *p = strstr(uri, "://"), *at, *colon, *q;
	size_t len;

	if (p == NULL)
		return;
	p += 3;
	at = strrchr(p, '@');
	if (at) {
		colon = memchr(p, ':', (size_t)(at - p));
		if (colon)
			blank(text, colon + 1, (size_t)(at - colon - 1));
		blank(text, p, (size_t)(at - p));
		p = at + 1;
	}
	q = strchr(p, '?');
	while (q && *(q += strcspn(q, "=")) == '=') {
		len = strcspn(++q, "&;"); /* the value after '=' */
		blank(text, q, len);
		q += len;
	}
}

/*
 * Errors that mean the server is gone, going, or not reachable yet: the
 * driver's stream and server selection errors, and the server's own
 * "shutting down" and "not primary" codes.
 */
static int is_lost(const bson_error_t *e)
{
	if (e->domain == MONGOC_ERROR_STREAM ||
	    e->domain == MONGOC_ERROR_SERVER_SELECTION)
		return 1;
	if (e->domain != MONGOC_ERROR_SERVER &&
	    e->domain != MONGOC_ERROR_WRITE_CONCERN_ERROR)
		return 0;
	switch (e->code) {
	case 6:	    /* HostUnreachable */
	case 7:	    /* HostNotFound */
	case 89:    /* NetworkTimeout */
	case 91:    /* ShutdownInProgress */
	case 189:   /* PrimarySteppedDown */
	case 9001:  /* SocketException */
	case 10107: /* NotWritablePrimary */
	case 11600: /* InterruptedAtShutdown */
	case 11602: /* InterruptedDueToReplStateChange */
	case 13435: /* NotPrimaryNoSecondaryOk */
	case 13436: /* NotPrimaryOrSecondary */ return 1;
	}
	return 0;
}

static int note(struct store_mongo *m, const bson_error_t *e)
{
	m->lost = is_lost(e);
	m->domain = e->domain;
	snprintf(m->msg, sizeof(m->msg), "%s", e->message);
	redact(m, m->msg);
	return -1;
}

static int note_own(struct store_mongo *m, const char *what)
{
	m->lost = 0;
	m->domain = 0;
	snprintf(m->msg, sizeof(m->msg), "%s", what);
	return -1;
}

/* ------------------------------------------------------------ connection */

static void disconnect(struct store_net *n)
{
	struct store_mongo *m = of_net(n);

	if (m->coll)
		mongoc_collection_destroy(m->coll);
	if (m->client)
		mongoc_client_destroy(m->client);
	m->coll = NULL;
	m->client = NULL;
}

/*
 * A new client: no network yet, the first command connects.  A new one
 * after each loss rather than the old one reconnecting: a single-threaded
 * client would not try a failed server again for 5 s.
 */
static int connect_client(struct store_net *n)
{
	struct store_mongo *m = of_net(n);
	bson_error_t e;

	disconnect(n);
	m->client = mongoc_client_new_from_uri_with_error(m->uri, &e);
	if (m->client == NULL)
		return note(m, &e);
	mongoc_client_set_error_api(m->client, MONGOC_ERROR_API_VERSION_2);
	m->coll = mongoc_client_get_collection(m->client, m->database,
					       m->collection);
	if (m->coll == NULL) {
		disconnect(n);
		return note_own(m, "out of memory");
	}
	return 0;
}

/* ------------------------------------------------------------ store_net */

static int net_connected(struct store_net *n)
{
	return of_net(n)->client != NULL;
}

static enum store_net_fault net_fault(struct store_net *n)
{
	return of_net(n)->lost ? STORE_NET_LOST : STORE_NET_OTHER;
}

static const char *net_message(struct store_net *n)
{
	return of_net(n)->msg;
}

/* ------------------------------------------------------------ documents */

/* {_id: "42"}: the key of the record of id 42. */
static void append_key(bson_t *doc, uint32_t id)
{
	char text[16];

	snprintf(text, sizeof(text), "%" PRIu32, id);
	BSON_APPEND_UTF8(doc, "_id", text);
}

/* {field: {$in: [ids...]}} */
static void append_in(bson_t *doc, const char *field, const uint32_t *ids,
		      size_t n)
{
	bson_t cond, list;
	char key[16];
	const char *k;
	size_t i;

	bson_append_document_begin(doc, field, -1, &cond);
	bson_append_array_begin(&cond, "$in", -1, &list);
	for (i = 0; i < n; i++) {
		bson_uint32_to_string((uint32_t)i, &k, key, sizeof(key));
		bson_append_int64(&list, k, -1, ids[i]);
	}
	bson_append_array_end(&cond, &list);
	bson_append_document_end(doc, &cond);
}

/*
 * The API's error text as a BSON string: servers refuse invalid UTF-8,
 * and the text comes from outside.  Text that is not valid UTF-8 (or was
 * cut inside a character) keeps its ASCII, the other bytes become '?'.
 */
static void append_text(bson_t *doc, const char *key, const char *text)
{
	char clean[1024];
	size_t i, len;

	if (text == NULL) {
		bson_append_null(doc, key, -1);
		return;
	}
	len = strlen(text);
	if (len >= sizeof(clean))
		len = sizeof(clean) - 1;
	memcpy(clean, text, len);
	clean[len] = '\0';
	if (!bson_utf8_validate(clean, len, false))
		for (i = 0; i < len; i++)
			if ((unsigned char)clean[i] >= 0x80)
				clean[i] = '?';
	bson_append_utf8(doc, key, -1, clean, (int)len);
}

/*
 * Read the writeErrors of a bulk's reply: dup[index] = 1 for each
 * duplicate key.  Returns how many errors there are, or -1 with the first
 * one that is not a duplicate key noted.
 */
static int write_errors(struct store_mongo *m, const bson_t *reply,
			unsigned char *dup, size_t n)
{
	bson_iter_t it, list, e;
	int64_t index, code;
	const char *text;
	int count = 0;

	if (bson_iter_init_find(&it, reply, "writeConcernErrors") &&
	    BSON_ITER_HOLDS_ARRAY(&it) && bson_iter_recurse(&it, &list) &&
	    bson_iter_next(&list))
		return note_own(m,
				"the server could not meet the write concern");
	if (!bson_iter_init_find(&it, reply, "writeErrors") ||
	    !BSON_ITER_HOLDS_ARRAY(&it) || !bson_iter_recurse(&it, &list))
		return 0;
	while (bson_iter_next(&list)) {
		index = code = -1;
		text = "no message";
		if (!BSON_ITER_HOLDS_DOCUMENT(&list) ||
		    !bson_iter_recurse(&list, &e))
			return note_own(
				m, "the server sent a malformed writeErrors");
		while (bson_iter_next(&e)) {
			if (strcmp(bson_iter_key(&e), "index") == 0)
				index = bson_iter_as_int64(&e);
			else if (strcmp(bson_iter_key(&e), "code") == 0)
				code = bson_iter_as_int64(&e);
			else if (strcmp(bson_iter_key(&e), "errmsg") == 0 &&
				 BSON_ITER_HOLDS_UTF8(&e))
				text = bson_iter_utf8(&e, NULL);
		}
		if (code != DUPLICATE_KEY) {
			m->lost = 0;
			m->domain = 0;
			snprintf(m->msg, sizeof(m->msg),
				 "error %" PRId64 ": %s", code, text);
			redact(m, m->msg);
			return -1;
		}
		if (index < 0 || (uint64_t)index >= n)
			return note_own(m,
					"the server reported a write error of "
					"a document it was not sent");
		dup[index] = 1;
		count++;
	}
	return count;
}

/*
 * Run a bulk; dup[i] tells which of its n operations failed with a
 * duplicate key, any other failure is an error.  The bulk is freed.
 */
static int run_bulk(struct store_mongo *m, mongoc_bulk_operation_t *bulk,
		    unsigned char *dup, size_t n)
{
	bson_error_t e;
	bson_t reply;
	int rc = 0;

	memset(dup, 0, n);
	if (mongoc_bulk_operation_execute(bulk, &reply, &e) != 0)
		rc = write_errors(m, &reply, dup, n);
	else if (is_lost(&e) || (rc = write_errors(m, &reply, dup, n)) == 0)
		rc = note(m, &e); /* failed, but not on a document */
	bson_destroy(&reply);
	mongoc_bulk_operation_destroy(bulk);
	return rc < 0 ? -1 : 0;
}

static mongoc_bulk_operation_t *unordered_bulk(struct store_mongo *m)
{
	bson_t opts = BSON_INITIALIZER;
	mongoc_bulk_operation_t *bulk;

	BSON_APPEND_BOOL(&opts, "ordered", false);
	bulk = mongoc_collection_create_bulk_operation_with_opts(m->coll,
								 &opts);
	bson_destroy(&opts);
	return bulk;
}

/* ------------------------------------------------------------ claim */

static void claim_doc(struct store_mongo *m, const struct store_net_batch *cb,
		      uint32_t id, bson_t *doc)
{
	append_key(doc, id);
	BSON_APPEND_INT64(doc, "id", id);
	BSON_APPEND_NULL(doc, "ts");
	BSON_APPEND_NULL(doc, "delivery_status");
	BSON_APPEND_UTF8(doc, "owner", m->owner);
	BSON_APPEND_DATE_TIME(doc, "claimed_at", (int64_t)cb->now * 1000);
	BSON_APPEND_INT32(doc, "attempts", 0);
	BSON_APPEND_NULL(doc, "error");
}

/* Insert a claim for every id of the batch; mark those already there. */
static int insert_claims(struct store_mongo *m, struct store_net_batch *cb)
{
	mongoc_bulk_operation_t *bulk = unordered_bulk(m);
	bson_error_t e;
	size_t i, k = 0;
	bson_t doc;
	int ok = 1;

	for (i = 0; i < cb->n && ok; i++) {
		if (cb->slots[i].dup)
			continue;
		bson_init(&doc);
		claim_doc(m, cb, cb->slots[i].id, &doc);
		ok = mongoc_bulk_operation_insert_with_opts(bulk, &doc, NULL,
							    &e);
		bson_destroy(&doc);
		k++;
	}
	if (!ok) {
		mongoc_bulk_operation_destroy(bulk);
		return note(m, &e);
	}
	if (run_bulk(m, bulk, cb->marks, k) < 0)
		return -1;
	for (i = 0, k = 0; i < cb->n; i++) {
		if (cb->slots[i].dup)
			continue;
		cb->slots[i].taken = cb->marks[k++];
		cb->slots[i].state = cb->slots[i].taken ? CLAIM_HELD : CLAIM_OK;
	}
	return 0;
}

/* The ids the insert found there (only the abandoned ones), in cb->ids. */
static size_t taken_ids(struct store_net_batch *cb, int abandoned)
{
	size_t i, k = 0;

	for (i = 0; i < cb->n; i++)
		if (!cb->slots[i].dup && cb->slots[i].taken &&
		    (!abandoned || cb->slots[i].abandoned))
			cb->ids[k++] = cb->slots[i].id;
	return k;
}

static const char *utf8_field(const bson_t *doc, const char *key)
{
	bson_iter_t it;

	if (bson_iter_init_find(&it, doc, key) && BSON_ITER_HOLDS_UTF8(&it))
		return bson_iter_utf8(&it, NULL);
	return NULL;
}

/* A date field in seconds since the epoch, -1 if there is none. */
static time_t date_field(const bson_t *doc, const char *key)
{
	bson_iter_t it;

	if (bson_iter_init_find(&it, doc, key) &&
	    BSON_ITER_HOLDS_DATE_TIME(&it))
		return (time_t)(bson_iter_date_time(&it) / 1000);
	return -1;
}

/* What one record found by look_up() says about its id. */
static int classify(struct store_mongo *m, struct store_net_batch *cb,
		    const bson_t *doc)
{
	const char *owner = utf8_field(doc, "owner");
	bson_iter_t it;
	struct store_net_slot *sl;

	if (!bson_iter_init_find(&it, doc, "id") ||
	    (sl = store_net_find(cb, bson_iter_as_int64(&it))) == NULL ||
	    !sl->taken)
		return 0;
	free(sl->held_by);
	sl->held_by = NULL;
	sl->abandoned = 0;
	if (bson_iter_init_find(&it, doc, "ts") && !BSON_ITER_HOLDS_NULL(&it)) {
		sl->state = CLAIM_DONE;
		return 0;
	}
	if (owner && strcmp(owner, m->owner) == 0) {
		sl->state = CLAIM_OK; /* our own insert of a lost attempt */
		return 0;
	}
	sl->state = CLAIM_HELD;
	if (!store_claim_abandoned(owner, date_field(doc, "claimed_at"),
				   m->lease))
		return 0;
	if (!m->reclaim) {
		sl->state = CLAIM_STALE; /* its run is gone: --wait stops */
		return 0;
	}
	sl->abandoned = 1;
	if (owner && (sl->held_by = strdup(owner)) == NULL)
		return note_own(m, "out of memory");
	return 0;
}

/*
 * Look up the n records of cb->ids and classify them.  A record that is
 * gone was released by its run in between: the letter is not done, so it
 * stays CLAIM_HELD (run again later).
 */
static int look_up(struct store_mongo *m, struct store_net_batch *cb, size_t n)
{
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
	mongoc_cursor_t *cursor;
	const bson_t *doc;
	bson_error_t e;
	int rc = 0;

	append_in(&filter, "id", cb->ids, n);
	bson_append_document_begin(&opts, "projection", -1, &proj);
	BSON_APPEND_INT32(&proj, "_id", 0);
	BSON_APPEND_INT32(&proj, "id", 1);
	BSON_APPEND_INT32(&proj, "ts", 1);
	BSON_APPEND_INT32(&proj, "owner", 1);
	BSON_APPEND_INT32(&proj, "claimed_at", 1);
	bson_append_document_end(&opts, &proj);
	BSON_APPEND_INT64(&opts, "batchSize", (int64_t)n);
	cursor = mongoc_collection_find_with_opts(m->coll, &filter, &opts,
						  NULL);
	while (rc == 0 && mongoc_cursor_next(cursor, &doc))
		rc = classify(m, cb, doc);
	if (rc == 0 && mongoc_cursor_error(cursor, &e))
		rc = note(m, &e);
	mongoc_cursor_destroy(cursor);
	bson_destroy(&filter);
	bson_destroy(&opts);
	return rc;
}

/*
 * --reclaim: take over the abandoned claims, each only if it is still the
 * claim that was judged abandoned (same owner, no outcome); a look-up then
 * tells which ones we now hold.  On MongoDB each update is atomic, so of
 * two runs reclaiming at once one wins; FerretDB reads then writes, which
 * is one more reason for SPEC's "--reclaim when no other run is active".
 */
static int take_over(struct store_mongo *m, struct store_net_batch *cb,
		     size_t n)
{
	mongoc_bulk_operation_t *bulk = NULL;
	bson_t filter, update, set;
	unsigned char dup[UPDATES_PER_COMMAND];
	size_t i, k = 0;
	bson_error_t e;
	int ok = 1;

	for (i = 0; i < cb->n && ok; i++) {
		const struct store_net_slot *sl = &cb->slots[i];

		if (sl->dup || !sl->taken || !sl->abandoned)
			continue;
		if (bulk == NULL)
			bulk = unordered_bulk(m);
		bson_init(&filter);
		bson_init(&update);
		BSON_APPEND_INT64(&filter, "id", sl->id);
		BSON_APPEND_NULL(&filter, "ts");
		if (sl->held_by)
			BSON_APPEND_UTF8(&filter, "owner", sl->held_by);
		else
			BSON_APPEND_NULL(&filter, "owner");
		bson_append_document_begin(&update, "$set", -1, &set);
		BSON_APPEND_UTF8(&set, "owner", m->owner);
		BSON_APPEND_DATE_TIME(&set, "claimed_at",
				      (int64_t)cb->now * 1000);
		bson_append_document_end(&update, &set);
		ok = mongoc_bulk_operation_update_one_with_opts(
			bulk, &filter, &update, NULL, &e);
		bson_destroy(&filter);
		bson_destroy(&update);
		if (ok && ++k == UPDATES_PER_COMMAND) {
			if (run_bulk(m, bulk, dup, k) < 0)
				return -1;
			bulk = NULL;
			k = 0;
		}
	}
	if (!ok) {
		mongoc_bulk_operation_destroy(bulk);
		return note(m, &e);
	}
	if (bulk && run_bulk(m, bulk, dup, k) < 0)
		return -1;
	return look_up(m, cb, n);
}

/*
 * Insert, look up the ids found there, take over with --reclaim.  Safe to
 * run again after a lost connection: an id that a lost insert did claim
 * comes back as a duplicate whose owner is this run, and is ours.  The
 * look-up comes after the insert and reads what the insert found, never
 * instead of it: no run can slip in between.
 */
static int claim_attempt(struct store_net *net, struct store_net_batch *cb)
{
	struct store_mongo *m = of_net(net);
	size_t n;

	if (insert_claims(m, cb) < 0)
		return -1;
	n = taken_ids(cb, 0);
	if (n && look_up(m, cb, n) < 0)
		return -1;
	n = m->reclaim ? taken_ids(cb, 1) : 0;
	if (n && take_over(m, cb, n) < 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------ finish */

/* {$set: {id, ts, delivery_status, attempts, error, owner: null}} */
static void result_update(const struct store_result *r, bson_t *update)
{
	bson_t set;

	bson_append_document_begin(update, "$set", -1, &set);
	BSON_APPEND_INT64(&set, "id", r->id);
	BSON_APPEND_DATE_TIME(&set, "ts", (int64_t)r->ts * 1000);
	if (r->status < 0)
		BSON_APPEND_NULL(&set, "delivery_status");
	else
		BSON_APPEND_INT32(&set, "delivery_status", r->status);
	BSON_APPEND_INT32(&set, "attempts", (int32_t)r->attempts);
	append_text(&set, "error", r->error);
	BSON_APPEND_NULL(&set, "owner");
	bson_append_document_end(update, &set);
}

/*
 * Upsert the n results r, keyed by _id, or with by_id by the id field:
 * dup[i] tells which ones met a duplicate key.
 */
static int upsert(struct store_mongo *m, const struct store_result *r, size_t n,
		  int by_id, unsigned char *dup)
{
	mongoc_bulk_operation_t *bulk = unordered_bulk(m);
	bson_t opts = BSON_INITIALIZER, filter, update;
	bson_error_t e;
	size_t i;
	int ok = 1;

	BSON_APPEND_BOOL(&opts, "upsert", true);
	for (i = 0; i < n && ok; i++) {
		bson_init(&filter);
		bson_init(&update);
		if (by_id)
			BSON_APPEND_INT64(&filter, "id", r[i].id);
		else
			append_key(&filter, r[i].id);
		result_update(&r[i], &update);
		ok = mongoc_bulk_operation_update_one_with_opts(
			bulk, &filter, &update, &opts, &e);
		bson_destroy(&filter);
		bson_destroy(&update);
	}
	bson_destroy(&opts);
	if (!ok) {
		mongoc_bulk_operation_destroy(bulk);
		return note(m, &e);
	}
	return run_bulk(m, bulk, dup, n);
}

/*
 * Record the results in bulks of UPDATES_PER_COMMAND.  An upsert by _id
 * meets a duplicate key when a record of the id exists under another _id
 * (made by hand, or by another program): that one is done again by id.
 * Running this again writes the same values, so a lost connection is
 * simply retried from the bulk it interrupted.
 */
static int finish_attempt(struct store_net *net, struct store_net_results *fb)
{
	struct store_mongo *m = of_net(net);
	struct store_result again[UPDATES_PER_COMMAND];
	unsigned char dup[UPDATES_PER_COMMAND];
	size_t i, k, n;

	while (fb->done < fb->n) {
		n = fb->n - fb->done;
		if (n > UPDATES_PER_COMMAND)
			n = UPDATES_PER_COMMAND;
		if (upsert(m, fb->r + fb->done, n, 0, dup) < 0)
			return -1;
		for (i = 0, k = 0; i < n; i++)
			if (dup[i])
				again[k++] = fb->r[fb->done + i];
		if (k && upsert(m, again, k, 1, dup) < 0)
			return -1;
		for (i = 0; i < k; i++)
			if (dup[i])
				return note_own(m,
						"a duplicate key on 'id' "
						"where the record was updated");
		fb->done += n;
	}
	return 0;
}

/* ------------------------------------------------------------ release */

/* Only this run's claims go: a record that got its ts is never deleted. */
static int release_attempt(struct store_net *net, const uint32_t *ids,
			   size_t count)
{
	struct store_mongo *m = of_net(net);
	bson_t filter = BSON_INITIALIZER;
	bson_error_t e;
	int rc = 0;

	append_in(&filter, "id", ids, count);
	BSON_APPEND_NULL(&filter, "ts");
	BSON_APPEND_UTF8(&filter, "owner", m->owner);
	if (!mongoc_collection_delete_many(m->coll, &filter, NULL, NULL, &e))
		rc = note(m, &e);
	bson_destroy(&filter);
	return rc;
}

/* ------------------------------------------------------------ hold */

/*
 * [retry] in_doubt = hold: the claim stays (ts null, owner kept); only
 * the reason and the attempts are noted.  Setting the same values again
 * changes nothing, so a lost connection retries from the letter it cut.
 */
static int hold_attempt(struct store_net *net, struct store_net_results *res)
{
	struct store_mongo *m = of_net(net);
	bson_t filter, update, set;
	bson_error_t e;
	int ok = 1;

	for (; res->done < res->n && ok; res->done += ok) {
		const struct store_result *r = &res->r[res->done];

		bson_init(&filter);
		bson_init(&update);
		BSON_APPEND_INT64(&filter, "id", r->id);
		BSON_APPEND_NULL(&filter, "ts");
		bson_append_document_begin(&update, "$set", -1, &set);
		append_text(&set, "error", r->error);
		BSON_APPEND_INT32(&set, "attempts", (int32_t)r->attempts);
		bson_append_document_end(&update, &set);
		ok = mongoc_collection_update_one(m->coll, &filter, &update,
						  NULL, NULL, &e);
		bson_destroy(&filter);
		bson_destroy(&update);
	}
	return ok ? 0 : note(m, &e);
}

/* ------------------------------------------------------------ totals */

/* {ts: null} and such, for counts. */
struct count {
	long long *out;
	const char *field;   /* NULL: every record */
	int value;	     /* -1: null */
	const char *and_not; /* and this field not null */
};

static int count_one(struct store_mongo *m, const struct count *c)
{
	bson_t filter = BSON_INITIALIZER, ne;
	bson_error_t e;
	int64_t n;

	if (c->field && c->value < 0)
		BSON_APPEND_NULL(&filter, c->field);
	else if (c->field)
		BSON_APPEND_INT32(&filter, c->field, c->value);
	if (c->and_not) {
		bson_append_document_begin(&filter, c->and_not, -1, &ne);
		BSON_APPEND_NULL(&ne, "$ne");
		bson_append_document_end(&filter, &ne);
	}
	n = mongoc_collection_count_documents(m->coll, &filter, NULL, NULL,
					      NULL, &e);
	bson_destroy(&filter);
	if (n < 0)
		return note(m, &e);
	*c->out = n;
	return 0;
}

/* The age of the oldest claim, -1 when none has a claimed_at. */
static int oldest_claim(struct store_mongo *m, long long *age)
{
	bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sub;
	mongoc_cursor_t *cursor;
	const bson_t *doc;
	bson_error_t e;
	time_t t = -1;
	int rc = 0;

	BSON_APPEND_NULL(&filter, "ts");
	bson_append_document_begin(&filter, "claimed_at", -1, &sub);
	BSON_APPEND_NULL(&sub, "$ne");
	bson_append_document_end(&filter, &sub);
	bson_append_document_begin(&opts, "sort", -1, &sub);
	BSON_APPEND_INT32(&sub, "claimed_at", 1);
	bson_append_document_end(&opts, &sub);
	BSON_APPEND_INT64(&opts, "limit", 1);
	cursor = mongoc_collection_find_with_opts(m->coll, &filter, &opts,
						  NULL);
	if (mongoc_cursor_next(cursor, &doc))
		t = date_field(doc, "claimed_at");
	if (mongoc_cursor_error(cursor, &e))
		rc = note(m, &e);
	mongoc_cursor_destroy(cursor);
	bson_destroy(&filter);
	bson_destroy(&opts);
	*age = t < 0 ? -1 : (long long)(time(NULL) - t);
	return rc;
}

/*
 * Counts by state.  FerretDB has no $cond in $group, so one count per
 * state rather than one aggregation: --status is not on the hot path.
 */
static int count_all(struct store_mongo *m, struct store_totals *t);

static int totals_attempt(struct store_net *net, struct store_totals *t)
{
	struct store_mongo *m = of_net(net);

	if (m->absent[0]) {
		memset(t, 0, sizeof(*t));
		t->oldest_claim_age = -1;
		snprintf(t->absent, sizeof(t->absent), "%s", m->absent);
		return 0;
	}
	return count_all(m, t);
}

/* The totals of an existing collection. */
static int count_all(struct store_mongo *m, struct store_totals *t)
{
	const struct count counts[] = {
		{ &t->records, NULL, 0, NULL },
		{ &t->delivered, "delivery_status", 1, NULL },
		{ &t->not_delivered, "delivery_status", 0, NULL },
		{ &t->failed, "delivery_status", -1, "ts" },
		{ &t->claimed, "ts", -1, NULL },
	};
	size_t i;

	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++)
		if (count_one(m, &counts[i]) < 0)
			return -1;
	return oldest_claim(m, &t->oldest_claim_age);
}

/* ------------------------------------------------------------ the index */

/* Whether the collection has a unique index on {id: 1} alone; -1: error. */
static int has_unique_id_index(struct store_mongo *m)
{
	mongoc_cursor_t *cursor;
	const bson_t *index;
	bson_iter_t it, key;
	bson_error_t e;
	int found = 0;

	cursor = mongoc_collection_find_indexes_with_opts(m->coll, NULL);
	while (!found && mongoc_cursor_next(cursor, &index)) {
		int unique = bson_iter_init_find(&it, index, "unique") &&
			     bson_iter_as_bool(&it);

		if (!unique || !bson_iter_init_find(&it, index, "key") ||
		    !BSON_ITER_HOLDS_DOCUMENT(&it) ||
		    !bson_iter_recurse(&it, &key))
			continue;
		found = bson_iter_next(&key) &&
			strcmp(bson_iter_key(&key), "id") == 0 &&
			bson_iter_as_int64(&key) == 1 && !bson_iter_next(&key);
	}
	if (!found && mongoc_cursor_error(cursor, &e))
		found = note(m, &e);
	mongoc_cursor_destroy(cursor);
	return found;
}

/*
 * Create the unique index on id if missing, then check that there is one:
 * FerretDB answers "all indexes already exist" when an index of that name
 * exists that is not unique, and MongoDB refuses to make a second index
 * on id when one exists under another name, which will do as well.
 */
static int ensure_index(struct store_mongo *m)
{
	bson_t cmd = BSON_INITIALIZER, list, index, key, reply;
	bson_error_t e;
	int rc = 0;

	BSON_APPEND_UTF8(&cmd, "createIndexes", m->collection);
	bson_append_array_begin(&cmd, "indexes", -1, &list);
	bson_append_document_begin(&list, "0", -1, &index);
	bson_append_document_begin(&index, "key", -1, &key);
	BSON_APPEND_INT32(&key, "id", 1);
	bson_append_document_end(&index, &key);
	BSON_APPEND_UTF8(&index, "name", "id_1");
	BSON_APPEND_BOOL(&index, "unique", true);
	bson_append_document_end(&list, &index);
	bson_append_array_end(&cmd, &list);
	if (!mongoc_collection_write_command_with_opts(m->coll, &cmd, NULL,
						       &reply, &e))
		rc = note(m, &e);
	else
		note_own(m, "an index named 'id_1' exists and is not unique: "
			    "drop it");
	if (!m->lost && m->domain != MONGOC_ERROR_CLIENT)
		rc = has_unique_id_index(m) > 0 ? 0 : -1;
	bson_destroy(&reply);
	bson_destroy(&cmd);
	return rc;
}

/*
 * --status: whether the collection is there, without making it (an index,
 * like any write, would).  The first command: it also finds out whether
 * the server answers.
 */
static int look_for_collection(struct store_mongo *m)
{
	mongoc_database_t *db = mongoc_client_get_database(m->client,
							   m->database);
	bson_error_t e;
	int rc = 0;

	memset(&e, 0, sizeof(e));
	if (!mongoc_database_has_collection(db, m->collection, &e)) {
		if (e.code != 0)
			rc = note(m, &e);
		else
			snprintf(m->absent, sizeof(m->absent),
				 "no collection '%s' in database '%s'",
				 m->collection, m->database);
	}
	mongoc_database_destroy(db);
	return rc;
}

/*
 * --status: the URI less its user, password and options (where they may
 * hide a secret), the database and the collection.
 */
static size_t mongo_where(const struct cfg *cfg, struct store_where *out,
			  size_t max)
{
	const char *uri = cfg_str(cfg, "mongodb", "uri");
	const char *hosts = strstr(uri, "://");
	size_t scheme, len, at;

	if (max < 3)
		return 0;
	hosts = hosts ? hosts + 3 : uri;
	scheme = (size_t)(hosts - uri);
	len = strcspn(hosts, "?");
	/* the last '@' before the path: a password may hold an '@' */
	for (at = strcspn(hosts, "/?"); at > 0 && hosts[at - 1] != '@'; at--)
		;
	out[0].name = "uri";
	snprintf(out[0].value, sizeof(out[0].value), "%.*s%.*s", (int)scheme,
		 uri, (int)(len - at), hosts + at);
	out[1].name = "database";
	snprintf(out[1].value, sizeof(out[1].value), "%s",
		 cfg_str(cfg, "mongodb", "database"));
	out[2].name = "collection";
	snprintf(out[2].value, sizeof(out[2].value), "%s",
		 cfg_str(cfg, "mongodb", "collection"));
	return 3;
}

/* ------------------------------------------------------------ open/close */

static void mongo_close(struct store *s)
{
	struct store_mongo *m = downcast(s);

	if (m == NULL)
		return;
	disconnect(&m->net);
	if (m->uri)
		mongoc_uri_destroy(m->uri);
	free(m->database);
	free(m->collection);
	free(m->owner);
	free(m);
	/* a process opens one store: the driver's globals go with it */
	mongoc_cleanup();
}

/* The driver logs to stderr by default: modules never print. */
static void quiet(mongoc_log_level_t level, const char *domain,
		  const char *message, void *data)
{
	(void)level;
	(void)domain;
	(void)message;
	(void)data;
}

/* "'host:port,host:port'" of the URI: never the URI itself. */
static void describe_hosts(struct store_mongo *m)
{
	const mongoc_host_list_t *h = mongoc_uri_get_hosts(m->uri);
	char hosts[256] = "";
	size_t used = 0;

	if (h == NULL && mongoc_uri_get_srv_hostname(m->uri))
		snprintf(hosts, sizeof(hosts), "%s (SRV)",
			 mongoc_uri_get_srv_hostname(m->uri));
	for (; h && used < sizeof(hosts); h = h->next)
		used += (size_t)snprintf(hosts + used, sizeof(hosts) - used,
					 "%s%s", used ? "," : "",
					 h->host_and_port);
	snprintf(m->net.where, sizeof(m->net.where), "'%s'", hosts);
}

/*
 * Options the URI does not set: fail fast when the server is not there,
 * and have every write acknowledged by a majority of the replica set and
 * on its journal (w: majority, j: true): a claim must survive a crash of
 * the server, or a failover to a secondary that never saw it, as SQLite's
 * survives a power cut.  Each of w and journal that the URI sets stays.
 */
static void default_options(mongoc_uri_t *uri)
{
	mongoc_write_concern_t *wc;

	if (!mongoc_uri_has_option(uri, MONGOC_URI_CONNECTTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_CONNECTTIMEOUTMS,
					       CONNECT_TIMEOUT_MS);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS))
		mongoc_uri_set_option_as_int32(
			uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS,
			SELECTION_TIMEOUT_MS);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_SOCKETTIMEOUTMS))
		mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS,
					       SOCKET_TIMEOUT_MS);
	wc = mongoc_write_concern_copy(mongoc_uri_get_write_concern(uri));
	if (!mongoc_uri_has_option(uri, MONGOC_URI_W))
		mongoc_write_concern_set_wmajority(wc, 0);
	if (!mongoc_uri_has_option(uri, MONGOC_URI_JOURNAL))
		mongoc_write_concern_set_journal(wc, true);
	mongoc_uri_set_write_concern(uri, wc);
	mongoc_write_concern_destroy(wc);
	mongoc_uri_set_appname(uri, "sender");
}

/* Characters MongoDB refuses in a database name. */
#define DATABASE_BAD_CHARS "/\\. \"$*<>:|?"

static int bad_name(const struct cfg *cfg, const char *key, const char *why,
		    char *err, size_t errlen)
{
	snprintf(err, errlen, "%s: key '%s' in section [mongodb]: '%s' %s",
		 cfg_find(cfg, "mongodb", key)->origin, key,
		 cfg_str(cfg, "mongodb", key), why);
	return -1;
}

/*
 * The settings, without connecting: the URI parses (its password and
 * option values blanked out of the driver's message), the names are names.
 */
static int mongo_check(const struct cfg *cfg, char *err, size_t errlen)
{
	const char *uri = cfg_str(cfg, "mongodb", "uri");
	const char *db = cfg_str(cfg, "mongodb", "database");
	const char *coll = cfg_str(cfg, "mongodb", "collection");
	mongoc_uri_t *parsed;
	bson_error_t e;

	/* the parser logs warnings to stderr by default */
	mongoc_log_set_handler(quiet, NULL);
	parsed = mongoc_uri_new_with_error(uri, &e);
	if (parsed == NULL) {
		redact_raw(uri, e.message);
		snprintf(
			err, errlen,
			"%s: key 'uri' in section [mongodb]: %s "
			"(want mongodb://[USER:PASSWORD@]HOST:PORT/[?OPTIONS])",
			cfg_find(cfg, "mongodb", "uri")->origin, e.message);
		return -1;
	}
	mongoc_uri_destroy(parsed);
	if (db[0] == '\0' || strlen(db) > 63 ||
	    strpbrk(db, DATABASE_BAD_CHARS) != NULL)
		return bad_name(cfg, "database",
				"is not a database name (1 to "
				"63 characters, none of " DATABASE_BAD_CHARS
				")",
				err, errlen);
	if (coll[0] == '\0' || strchr(coll, '$') != NULL ||
	    strncmp(coll, "system.", strlen("system.")) == 0)
		return bad_name(cfg, "collection",
				"is not a collection name "
				"(not empty, no '$', not system.*)",
				err, errlen);
	return 0;
}

static int copy_config(struct store_mongo *m, const struct cfg *cfg,
		       const struct store_owner *owner, char *err,
		       size_t errlen)
{
	if (mongo_check(cfg, err, errlen) < 0)
		return -1;
	m->uri = mongoc_uri_new(cfg_str(cfg, "mongodb", "uri"));
	m->database = strdup(cfg_str(cfg, "mongodb", "database"));
	m->collection = strdup(cfg_str(cfg, "mongodb", "collection"));
	m->owner = strdup(owner->name);
	if (!m->uri || !m->database || !m->collection || !m->owner) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	default_options(m->uri);
	describe_hosts(m);
	m->reclaim = owner->reclaim;
	m->lease = owner->claim_lease;
	m->net.reconnect_timeout = cfg_seconds(cfg, "mongodb",
					       "reconnect_timeout");
	snprintf(m->net.object, sizeof(m->net.object), "collection '%s.%s'",
		 m->database, m->collection);
	return 0;
}

/* No retry here: a server that is not there at the start is an error. */
static struct store *mongo_open(const struct cfg *cfg,
				const struct store_owner *owner, char *err,
				size_t errlen)
{
	struct store_mongo *m;

	mongoc_init();
	mongoc_log_set_handler(quiet, NULL);
	m = calloc(1, sizeof(*m));
	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		mongoc_cleanup();
		return NULL;
	}
	m->net.base.ops = &store_mongo_ops;
	if (copy_config(m, cfg, owner, err, errlen) < 0)
		goto fail;
	if (connect_client(&m->net) < 0 ||
	    (owner->read_only ? look_for_collection(m) : ensure_index(m)) < 0) {
		if (m->lost || m->domain == MONGOC_ERROR_CLIENT)
			snprintf(
				err, errlen,
				"cannot connect to MongoDB at %s "
				"(database '%s'): %s; %s",
				m->net.where, m->database, m->msg,
				m->lost ? "is the server running? check [mongodb] "
					  "uri or SENDER_MONGODB_URI"
					: "check the user and password in "
					  "[mongodb] uri or SENDER_MONGODB_URI");
		else
			snprintf(err, errlen,
				 "MongoDB at %s: cannot %s of collection "
				 "'%s.%s': %s; check the [mongodb] section",
				 m->net.where,
				 owner->read_only
					 ? "look for the collection"
					 : "make the unique index on 'id'",
				 m->database, m->collection, m->msg);
		goto fail;
	}
	return &m->net.base;
fail:
	mongo_close(&m->net.base);
	return NULL;
}

static const struct store_net_ops mongo_net_ops = {
	.product = "MongoDB",
	.section = "mongodb",
	.connected = net_connected,
	.connect = connect_client,
	.disconnect = disconnect,
	.fault = net_fault,
	.message = net_message,
	.claim = claim_attempt,
	.finish = finish_attempt,
	.hold = hold_attempt,
	.release = release_attempt,
	.totals = totals_attempt,
};

const struct store_ops store_mongo_ops = {
	.name = "mongodb",
	.keys = mongo_keys,
	.check = mongo_check,
	.open = mongo_open,
	.claim = store_net_claim,
	.finish = store_net_finish,
	.release = store_net_release,
	.totals = store_net_totals,
	.close = mongo_close,
	.net = &mongo_net_ops,
	.where = mongo_where,
	.hold = store_net_hold,
};
