/*
 * store_mysql: the MySQL / MariaDB backend, over MariaDB Connector/C.
 *
 * The table is exactly SPEC section 5's: id, ts, delivery_status and
 * nothing else, so a claim is a row whose ts and delivery_status are NULL.
 * Who holds a claim and since when is kept beside it, in the companion
 * table `TABLE_claims` (id, owner, claimed_at), written in the claim's
 * transaction and deleted with its outcome or its release (SPEC 8): so
 * --reclaim follows the rule of the other stores and never takes a live
 * run's claims.  A claim without a row there was made before the table
 * existed: its owner is unknown, and only --reclaim=all takes it.  Every
 * call is a few multi-row statements, whatever the size of the batch:
 *
 *   claim    START TRANSACTION; INSERT IGNORE ... RETURNING id; INSERT
 *            INTO TABLE_claims for the ids returned; COMMIT, then, only
 *            for the ids the server did not return, one SELECT (joined to
 *            the claims) that tells a finished record from a claim held
 *            by another run, ours (a lost COMMIT) or abandoned
 *   finish   START TRANSACTION; INSERT ... ON DUPLICATE KEY UPDATE;
 *            DELETE FROM TABLE_claims; COMMIT
 *   release  the same DELETEs of the claims that name this run
 *
 * The session runs in UTC (the init command sets time_zone): a TIMESTAMP
 * is converted through the session's zone, so the UTC text that
 * store_format_ts() makes is stored as the instant the API answered,
 * whatever the server's own zone.
 *
 * A lost connection (server restarted, killed, shut down) is not an error
 * at once: the call reconnects from scratch, init command included, and
 * runs again, for at most [mysql] reconnect_timeout seconds from the loss.
 * Every statement is safe to run twice; claim_attempt() explains the one
 * subtle case.  Never MYSQL_OPT_RECONNECT: it reconnects behind our back
 * and loses the session's time zone and the open transaction.
 */
#include "buf.h"
#include "cfg.h"
#include "clock.h"
#include "store.h"
#include "store_net.h"
#include "text.h"

#include <errmsg.h>
#include <errno.h>
#include <inttypes.h>
#include <mysql.h>
#include <mysqld_error.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

/* The companion table is named after the table, within MySQL's 64. */
#define CLAIMS_SUFFIX  "_claims"
#define TABLE_NAME_MAX (64 - (sizeof(CLAIMS_SUFFIX) - 1))

/*
 * Rows per statement: as many as the store worker puts in one call when it
 * catches up (GROUP_MAX of src/store_worker.c), so that a batch costs the
 * same few round trips whatever its size; still far below
 * max_allowed_packet (16 MiB by default; a row is 40 to 100 bytes).
 */
#define ROWS_PER_STATEMENT 8192
/*
 * Conflicts retried at once, per call: InnoDB deadlocks (we were picked as
 * the victim) and, in a Galera cluster, certification failures (another
 * node committed an overlapping batch first).
 */
#define CONFLICT_RETRIES 10
/* Servers in [mysql] host, at most. */
#define HOSTS_MAX 16
/* Seconds to connect, and to wait for one answer before calling it lost. */
#define CONNECT_TIMEOUT 10
#define IO_TIMEOUT	90

/* [mysql] ssl_mode, in order of strength. */
enum ssl_mode {
	SSL_DISABLED,
	SSL_REQUIRED,
	SSL_VERIFY_CA,
	SSL_VERIFY_IDENTITY
};

static const char *const ssl_modes[] = { "disabled", "required", "verify_ca",
					 "verify_identity", NULL };

/* One server of [mysql] host. */
struct mysql_host {
	char name[256]; /* a name or an address, IPv6 without brackets */
	unsigned port;
};

struct store_mysql {
	struct store_net net;			   /* first: the common part */
	MYSQL *db;				   /* NULL while disconnected */
	char *socket, *user, *password, *database; /* owned */
	char *ssl_ca, *ssl_cert, *ssl_key;	   /* owned */
	enum ssl_mode ssl_mode;
	struct mysql_host hosts[HOSTS_MAX]; /* none: the socket */
	size_t nhosts;
	size_t cur;	  /* the server of the session, or the last one tried */
	size_t next;	  /* where the next connect starts */
	int cluster;	  /* the session's server is a Galera node (wsrep_on) */
	int reclaim;	  /* --reclaim (2: =all): see struct store_owner */
	long lease;	  /* [store] claim_lease */
	char *owner;	  /* owned: this run, written into its claims */
	char *owner_sql;  /* owned: the same as a literal, X'hex' */
	char table[65];	  /* checked to be a plain identifier */
	char claims[72];  /* table "_claims": who holds which claim */
	struct buf sql;	  /* the statement being built */
	int oom;	  /* building it ran out of memory */
	unsigned code;	  /* the last error: mysql_errno(), 0 for our own */
	char msg[512];	  /* and its text */
	char absent[300]; /* read-only: the table that is not there */
};

static const struct cfg_key mysql_keys[] = {
	{ "mysql", "socket", CFG_STRING, "/var/run/mysqld/mysqld.sock", 0, 0,
	  NULL, "the server's unix socket, used when host is empty" },
	{ "mysql", "host", CFG_STRING, "", 0, 0, NULL,
	  "empty: the unix socket; host[:port] for TCP; a comma-separated "
	  "list (a Galera cluster): the first that answers, the next on loss" },
	{ "mysql", "port", CFG_UINT, "3306", 1, 65535, NULL,
	  "TCP port of the hosts that give none" },
	{ "mysql", "user", CFG_STRING, "u1", 0, 0, NULL, "user name" },
	{ "mysql", "password", CFG_SECRET, "", 0, 0, "SENDER_MYSQL_PASSWORD",
	  "password (never printed)" },
	{ "mysql", "database", CFG_STRING, "sender", 0, 0, NULL,
	  "database that holds the table" },
	{ "mysql", "table", CFG_STRING, "results", 0, 0, NULL,
	  "the results table, created if missing" },
	{ "mysql", "reconnect_timeout", CFG_SECONDS, "30", 0, 3600, NULL,
	  "seconds to wait for a lost server to come back before giving up" },
	{ "mysql", "ssl_mode", CFG_STRING, "disabled", 0, 0, NULL,
	  "disabled, required (TLS), verify_ca (and the server's certificate "
	  "signed by ssl_ca), verify_identity (and made out to host)" },
	{ "mysql", "ssl_ca", CFG_PATH, "", 0, 0, NULL,
	  "CA certificate(s) that sign the server's (PEM file)" },
	{ "mysql", "ssl_cert", CFG_PATH, "", 0, 0, NULL,
	  "client certificate (PEM file), with ssl_key" },
	{ "mysql", "ssl_key", CFG_PATH, "", 0, 0, NULL,
	  "the client certificate's private key (PEM file)" },
	{ NULL, NULL, CFG_STRING, NULL, 0, 0, NULL, NULL },
};

extern const struct store_ops store_mysql_ops;

static struct store_mysql *downcast(struct store *s)
{
	return (struct store_mysql *)store_checked(s, &store_mysql_ops,
						   "store_mysql");
}

static struct store_mysql *of_net(struct store_net *n)
{
	return downcast(&n->base);
}

/* ------------------------------------------------------------ errors */

/* Keep the error of the handle: closing it on reconnect would lose it. */
static int note(struct store_mysql *m)
{
	m->code = mysql_errno(m->db);
	snprintf(m->msg, sizeof(m->msg), "%s", mysql_error(m->db));
	return -1;
}

static int note_own(struct store_mysql *m, const char *what)
{
	m->code = 0;
	snprintf(m->msg, sizeof(m->msg), "%s", what);
	return -1;
}

/* The server went away, is going away, or is not back yet. */
static int is_lost(unsigned code)
{
	switch (code) {
	case CR_SERVER_GONE_ERROR:
	case CR_SERVER_LOST:
	case CR_SERVER_LOST_EXTENDED:
	case CR_CONNECTION_ERROR:
	case CR_CONN_HOST_ERROR:
	case ER_SERVER_SHUTDOWN:
	case ER_CONNECTION_KILLED:
	case ER_CON_COUNT_ERROR:
	/* a Galera node out of the primary component, or not synced yet */
	case ER_UNKNOWN_COM_ERROR: return 1;
	}
	return 0;
}

/* InnoDB rolled our statement back to let another proceed: run it again. */
static int is_conflict(unsigned code)
{
	return code == ER_LOCK_DEADLOCK || code == ER_LOCK_WAIT_TIMEOUT;
}

/* ------------------------------------------------------------ hosts */

/*
 * One entry of [mysql] host, the len bytes at s: "host", "host:port",
 * "[v6]" or "[v6]:port"; port is the default.  0, or -1 and why.
 */
static int parse_host(const char *s, size_t len, unsigned port,
		      struct mysql_host *h, char *why, size_t whylen)
{
	const char *end = s + len, *name = s, *name_end, *rest;
	unsigned long v = 0;

	if (*s == '[') {
		name = s + 1;
		name_end = memchr(s, ']', len);
		if (name_end == NULL) {
			snprintf(why, whylen, "'%.*s' has '[' without ']'",
				 (int)len, s);
			return -1;
		}
		rest = name_end + 1;
	} else {
		name_end = memchr(s, ':', len);
		name_end = name_end ? name_end : end;
		rest = name_end;
		if (rest < end &&
		    memchr(rest + 1, ':', (size_t)(end - rest - 1))) {
			snprintf(why, whylen,
				 "'%.*s': an IPv6 address goes in brackets, "
				 "e.g. [::1]:3306",
				 (int)len, s);
			return -1;
		}
	}
	if (name_end == name || (size_t)(name_end - name) >= sizeof(h->name) ||
	    memchr(name, ' ', (size_t)(name_end - name)) ||
	    memchr(name, '\t', (size_t)(name_end - name)) ||
	    memchr(name, '[', (size_t)(name_end - name))) {
		snprintf(why, whylen, "'%.*s' is not a host name or address",
			 (int)len, s);
		return -1;
	}
	if (rest < end) {
		const char *p = rest + 1;

		if (*rest != ':' || p == end || end - p > 5)
			goto bad_port;
		for (; p < end; p++) {
			if (*p < '0' || *p > '9')
				goto bad_port;
			v = v * 10 + (unsigned long)(*p - '0');
		}
		if (v < 1 || v > 65535)
			goto bad_port;
		port = (unsigned)v;
	}
	snprintf(h->name, sizeof(h->name), "%.*s", (int)(name_end - name),
		 name);
	h->port = port;
	return 0;
bad_port:
	snprintf(why, whylen,
		 "'%.*s': want host[:port], a port from 1 to 65535", (int)len,
		 s);
	return -1;
}

/*
 * [mysql] host: empty (the unix socket: no host), or a comma-separated
 * list of host[:port] (blanks around entries allowed), at most HOSTS_MAX.
 * 0 and *n, or -1 and why.
 */
static int parse_hosts(const char *list, unsigned port,
		       struct mysql_host out[HOSTS_MAX], size_t *n, char *why,
		       size_t whylen)
{
	const char *p = list, *item, *stop, *end;

	*n = 0;
	if (list[strspn(list, " \t")] == '\0')
		return 0;
	for (;;) {
		item = p + strspn(p, " \t");
		stop = strchr(item, ',');
		stop = stop ? stop : item + strlen(item);
		for (end = stop;
		     end > item && (end[-1] == ' ' || end[-1] == '\t');)
			end--;
		if (end == item) {
			snprintf(why, whylen, "an empty entry in the list");
			return -1;
		}
		if (*n == HOSTS_MAX) {
			snprintf(why, whylen, "more than %d servers",
				 HOSTS_MAX);
			return -1;
		}
		if (parse_host(item, (size_t)(end - item), port, &out[*n], why,
			       whylen) < 0)
			return -1;
		++*n;
		if (*stop == '\0')
			return 0;
		p = stop + 1;
	}
}

/* "'db1:3306'", or the whole list when i is nhosts; the socket if none. */
static void describe_where(struct store_mysql *m, size_t i)
{
	char *w = m->net.where;
	size_t len = sizeof(m->net.where), used = 0, k;

	if (m->nhosts == 0) {
		snprintf(w, len, "socket '%s'", m->socket);
		return;
	}
	w[0] = '\0';
	for (k = i < m->nhosts ? i : 0; k < m->nhosts && used < len; k++) {
		const struct mysql_host *h = &m->hosts[k];
		int v6 = strchr(h->name, ':') != NULL;

		used += (size_t)snprintf(w + used, len - used, "%s'%s%s%s:%u'",
					 used ? ", " : "", v6 ? "[" : "",
					 h->name, v6 ? "]" : "", h->port);
		if (i < m->nhosts)
			break;
	}
}

/* ------------------------------------------------------------ connection */

static void close_handle(struct store_mysql *m)
{
	if (m->db)
		mysql_close(m->db);
	m->db = NULL;
}

/*
 * [mysql] ssl_mode: TLS enforced from required on (the connection fails
 * rather than go on in the clear), the server's chain checked against
 * ssl_ca from verify_ca on (Connector/C verifies the peer when it has a
 * CA), its name against host with verify_identity.
 */
static int set_tls(struct store_mysql *m)
{
	my_bool enforce = 1,
		verify = m->ssl_mode == SSL_VERIFY_IDENTITY ? 1 : 0;

	if (m->ssl_mode == SSL_DISABLED)
		return 0;
	if (mysql_optionsv(m->db, MYSQL_OPT_SSL_ENFORCE, &enforce) ||
	    mysql_optionsv(m->db, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify) ||
	    (m->ssl_mode >= SSL_VERIFY_CA &&
	     mysql_optionsv(m->db, MYSQL_OPT_SSL_CA, m->ssl_ca)) ||
	    (m->ssl_cert[0] &&
	     (mysql_optionsv(m->db, MYSQL_OPT_SSL_CERT, m->ssl_cert) ||
	      mysql_optionsv(m->db, MYSQL_OPT_SSL_KEY, m->ssl_key))))
		return note_own(m, "cannot set the TLS options");
	return 0;
}

/*
 * The store_net op: a session dropped (its server lost) sends the next
 * connect to the next server of the list first.
 */
static void disconnect(struct store_net *n)
{
	struct store_mysql *m = of_net(n);

	if (m->db && m->nhosts)
		m->next = (m->cur + 1) % m->nhosts;
	close_handle(m);
}

static int set_options(struct store_mysql *m)
{
	unsigned connect_timeout = CONNECT_TIMEOUT, io_timeout = IO_TIMEOUT;
	unsigned protocol = m->nhosts ? MYSQL_PROTOCOL_TCP
				      : MYSQL_PROTOCOL_SOCKET;
	unsigned no = 0;

	/* the zone by offset: named zones need the server's tz tables */
	if (mysql_options(m->db, MYSQL_INIT_COMMAND,
			  "SET time_zone = '+00:00'") ||
	    mysql_options(m->db, MYSQL_OPT_PROTOCOL, &protocol) ||
	    mysql_options(m->db, MYSQL_OPT_CONNECT_TIMEOUT, &connect_timeout) ||
	    mysql_options(m->db, MYSQL_OPT_READ_TIMEOUT, &io_timeout) ||
	    mysql_options(m->db, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout) ||
	    mysql_options(m->db, MYSQL_OPT_LOCAL_INFILE, &no))
		return note_own(m, "cannot set connection options");
	return set_tls(m);
}

/* The Value of a one-row SHOW statement in out ("" for no row). */
static int show_value(struct store_mysql *m, const char *sql, char *out,
		      size_t len)
{
	MYSQL_RES *res;
	MYSQL_ROW row;

	if (mysql_real_query(m->db, sql, strlen(sql)) != 0 ||
	    (res = mysql_store_result(m->db)) == NULL)
		return note(m);
	row = mysql_fetch_row(res);
	snprintf(out, len, "%s",
		 row && mysql_num_fields(res) > 1 && row[1] ? row[1] : "");
	mysql_free_result(res);
	return 0;
}

/*
 * A Galera node (wsrep_on) is of use only while it is in the primary
 * component and synced (wsrep_ready): cut off from the others it refuses
 * every statement with 1047, so such a node counts as a lost server and
 * the next one is tried.  On a node, the reads that decide anything wait
 * until the node has applied what the cluster committed before them
 * (wsrep_sync_wait = 1: SELECT and START TRANSACTION), so that a claim
 * finds the claims other nodes committed, and --status counts them.
 * MySQL has neither variable; MariaDB without Galera has wsrep_on OFF.
 */
static int check_cluster(struct store_mysql *m)
{
	char value[64];

	m->cluster = 0;
	if (show_value(m, "SHOW VARIABLES LIKE 'wsrep\\_on'", value,
		       sizeof(value)) < 0)
		return -1;
	if (strcasecmp(value, "ON") != 0)
		return 0;
	m->cluster = 1;
	if (show_value(m, "SHOW STATUS LIKE 'wsrep\\_ready'", value,
		       sizeof(value)) < 0)
		return -1;
	if (strcasecmp(value, "ON") != 0) {
		m->code = ER_UNKNOWN_COM_ERROR;
		snprintf(m->msg, sizeof(m->msg),
			 "the Galera node is not ready (wsrep_ready is '%s'): "
			 "it is not in the primary component or not synced",
			 value);
		return -1;
	}
	if (mysql_real_query(m->db, "SET SESSION wsrep_sync_wait = 1",
			     strlen("SET SESSION wsrep_sync_wait = 1")) != 0)
		return note(m);
	return 0;
}

/* A new session with server i (or the socket): handle, options, checks. */
static int connect_one(struct store_mysql *m, size_t i)
{
	const struct mysql_host *h = m->nhosts ? &m->hosts[i] : NULL;

	m->db = mysql_init(NULL);
	if (m->db == NULL)
		return note_own(m, "out of memory");
	if (set_options(m) < 0)
		goto fail;
	if (mysql_real_connect(m->db, h ? h->name : "localhost", m->user,
			       m->password[0] ? m->password : NULL, m->database,
			       h ? h->port : 0, h ? NULL : m->socket,
			       0) == NULL) {
		note(m);
		goto fail;
	}
	if (check_cluster(m) < 0)
		goto fail;
	return 0;
fail:
	close_handle(m);
	return -1;
}

/*
 * A new session with the first server that answers, trying each one of
 * [mysql] host once, from m->next on.  If none does, the error kept is
 * the first one that is not a lost server (a wrong password says more
 * than a node that is down), else the last.
 */
static int connect_db(struct store_net *n)
{
	struct store_mysql *m = of_net(n);
	size_t k, tries = m->nhosts ? m->nhosts : 1;
	unsigned code = 0;
	int kept = 0;
	char msg[sizeof(m->msg)];

	disconnect(n);
	for (k = 0; k < tries; k++) {
		m->cur = (m->next + k) % tries;
		if (connect_one(m, m->cur) == 0) {
			describe_where(m, m->cur);
			return 0;
		}
		if (!kept || is_lost(code)) {
			kept = 1;
			code = m->code;
			snprintf(msg, sizeof(msg), "%s", m->msg);
		}
	}
	m->code = code;
	snprintf(m->msg, sizeof(m->msg), "%s", msg);
	describe_where(m, tries > 1 ? m->nhosts : m->cur);
	return -1;
}

/* ------------------------------------------------------------ store_net */

static int net_connected(struct store_net *n)
{
	return of_net(n)->db != NULL;
}

static enum store_net_fault net_fault(struct store_net *n)
{
	const struct store_mysql *m = of_net(n);

	if (is_conflict(m->code))
		return STORE_NET_CONFLICT;
	/*
	 * A Galera node that leaves the primary component in the middle of
	 * a commit fails it with 1180 ("Error while appending ... fragment
	 * (provider status: Not connected to Primary Component)"), or 1317
	 * when it interrupts a statement: nothing of it was committed, and
	 * another node may take the call.  On a lone server 1180 is an
	 * engine's failure: an error.
	 */
	if (m->cluster && (m->code == ER_ERROR_DURING_COMMIT ||
			   m->code == ER_QUERY_INTERRUPTED))
		return STORE_NET_LOST;
	return is_lost(m->code) ? STORE_NET_LOST : STORE_NET_OTHER;
}

static const char *net_message(struct store_net *n)
{
	return of_net(n)->msg;
}

/* ------------------------------------------------------------ statements */

static void sql_reset(struct store_mysql *m)
{
	buf_reset(&m->sql);
	m->oom = 0;
}

static void add(struct store_mysql *m, const char *text)
{
	if (buf_append(&m->sql, text, strlen(text)) < 0)
		m->oom = 1;
}

/* before, then id in decimal, then after: for the lists of ids. */
static void add_id(struct store_mysql *m, const char *before, uint32_t id,
		   const char *after)
{
	char digits[TEXT_ID_MAX];

	add(m, before);
	if (buf_append(&m->sql, digits,
		       (size_t)(text_put_id(digits, id) - digits)) < 0)
		m->oom = 1;
	add(m, after);
}

static void addf(struct store_mysql *m, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void addf(struct store_mysql *m, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (buf_vaddf(&m->sql, fmt, ap) != 0)
		m->oom = 1;
	va_end(ap);
}

static int query(struct store_mysql *m, const char *sql)
{
	if (mysql_real_query(m->db, sql, strlen(sql)) != 0)
		return note(m);
	return 0;
}

/*
 * End the transaction after a failed statement, keeping the error that
 * matters (ROLLBACK's own result is not noted); -1.  A lost connection
 * has no transaction left to end.
 */
static int rolled_back(struct store_mysql *m)
{
	if (!is_lost(m->code) && m->db)
		mysql_real_query(m->db, "ROLLBACK", strlen("ROLLBACK"));
	return -1;
}

/* Run the statement built in m->sql. */
static int run_sql(struct store_mysql *m)
{
	if (m->oom)
		return note_own(m, "out of memory");
	if (mysql_real_query(m->db, buf_str(&m->sql), m->sql.len) != 0)
		return note(m);
	return 0;
}

/* Run the statement built in m->sql and fetch its rows; NULL on error. */
static MYSQL_RES *select_sql(struct store_mysql *m)
{
	MYSQL_RES *res;

	if (run_sql(m) < 0)
		return NULL;
	res = mysql_store_result(m->db);
	if (res == NULL) {
		if (mysql_errno(m->db))
			note(m);
		else
			note_own(m, "the server sent no rows");
	}
	return res;
}

/* text as an SQL literal X'hex' (owned by the caller), or NULL. */
static char *sql_literal(const char *text)
{
	size_t len = strlen(text);
	char *out = malloc(2 * len + 4);

	if (out == NULL)
		return NULL;
	out[0] = 'X';
	out[1] = '\'';
	mysql_hex_string(out + 2, text, (unsigned long)len);
	len = strlen(out);
	out[len] = '\'';
	out[len + 1] = '\0';
	return out;
}

/* ------------------------------------------------------------ claim */

/*
 * What a row of the look-up (id, ts IS NULL, owner, claimed_at) says:
 * done, ours (the insert of an attempt whose COMMIT was lost), held, or
 * held by a run that is gone: CLAIM_STALE, or with --reclaim marked
 * abandoned for take_over().  No owner: a claim older than the claims
 * table, taken only by --reclaim=all.
 */
static int classify_row(struct store_mysql *m, struct store_net_slot *sl,
			MYSQL_ROW row)
{
	time_t at = row[3] ? (time_t)strtoll(row[3], NULL, 10) : -1;

	free(sl->held_by);
	sl->held_by = NULL;
	sl->abandoned = 0;
	if (row[1] == NULL || strcmp(row[1], "1") != 0) {
		sl->state = CLAIM_DONE;
		return 0;
	}
	if (row[2] && strcmp(row[2], m->owner) == 0) {
		sl->state = CLAIM_OK;
		return 0;
	}
	sl->state = CLAIM_HELD;
	if (row[2] == NULL) {
		sl->abandoned = m->reclaim == 2;
		return 0;
	}
	if (!store_claim_abandoned(row[2], at, m->lease))
		return 0;
	if (!m->reclaim) {
		sl->state = CLAIM_STALE;
		return 0;
	}
	sl->abandoned = 1;
	if ((sl->held_by = strdup(row[2])) == NULL)
		return note_own(m, "out of memory");
	return 0;
}

/*
 * Read the ids of the statement's rows.  Claiming, each one is ours;
 * classifying, classify_row() says what each one is.
 */
static int read_ids(struct store_mysql *m, struct store_net_batch *b,
		    int classify)
{
	MYSQL_RES *res = select_sql(m);
	MYSQL_ROW row;
	struct store_net_slot *sl;
	uint32_t id;
	int rc = 0;

	if (res == NULL)
		return -1;
	while ((row = mysql_fetch_row(res)) != NULL) {
		if (row[0] == NULL || text_parse_id(row[0], &id, NULL, 0) < 0 ||
		    (sl = store_net_find(b, id)) == NULL) {
			rc = note_own(
				m, "the server returned an id not asked for");
			break;
		}
		if (!classify)
			sl->state = CLAIM_OK;
		else if ((rc = classify_row(m, sl, row)) < 0)
			break;
	}
	if (rc == 0 && mysql_errno(m->db))
		rc = note(m);
	mysql_free_result(res);
	return rc;
}

/* Name this run as the holder of the claims just inserted (CLAIM_OK). */
static int own_claims(struct store_mysql *m, struct store_net_batch *cb)
{
	size_t done = 0, rows;

	while (done < cb->n) {
		sql_reset(m);
		addf(m, "INSERT INTO `%s` (id, owner, claimed_at) VALUES ",
		     m->claims);
		for (rows = 0; done < cb->n && rows < ROWS_PER_STATEMENT;
		     done++) {
			if (cb->slots[done].dup ||
			    cb->slots[done].state != CLAIM_OK)
				continue;
			add_id(m, rows++ ? ",(" : "(", cb->slots[done].id, ",");
			add(m, m->owner_sql);
			add(m, ",UTC_TIMESTAMP())");
		}
		/* a row left by a claim deleted by hand: ours now */
		add(m, " ON DUPLICATE KEY UPDATE owner = VALUES(owner),"
		       " claimed_at = VALUES(claimed_at)");
		if (rows && run_sql(m) < 0)
			return -1;
	}
	return 0;
}

/*
 * START TRANSACTION; INSERT IGNORE ... RETURNING id (per chunk); COMMIT.
 * The server's answer alone decides: the ids it returns were inserted by
 * us, the others were there already.  Running this again after a failure
 * is safe:
 *  - lost before COMMIT was sent, or rolled back by a deadlock: the server
 *    drops the uncommitted inserts, so the next attempt starts clean (it
 *    may first wait for their locks, e.g. while a restarted server rolls
 *    them back);
 *  - lost during COMMIT: whether it committed is unknown.  If it did, the
 *    next attempt finds our own rows, and the look-up knows them by the
 *    owner in the claims table: CLAIM_OK, sent once.
 */
static int claim_attempt(struct store_net *n, struct store_net_batch *cb)
{
	struct store_mysql *m = of_net(n);
	size_t i, done = 0, rows;

	for (i = 0; i < cb->n; i++)
		if (!cb->slots[i].dup)
			cb->slots[i].state = CLAIM_HELD;
	if (query(m, "START TRANSACTION") < 0)
		return -1;
	while (done < cb->n) {
		sql_reset(m);
		addf(m, "INSERT IGNORE INTO `%s` (id) VALUES ", m->table);
		for (rows = 0; done < cb->n && rows < ROWS_PER_STATEMENT;
		     done++) {
			if (cb->slots[done].dup)
				continue;
			add_id(m, rows++ ? ",(" : "(", cb->slots[done].id, ")");
		}
		add(m, " RETURNING id");
		if (rows && read_ids(m, cb, 0) < 0)
			goto fail;
	}
	if (own_claims(m, cb) < 0 || query(m, "COMMIT") < 0)
		goto fail;
	return 0;
fail:
	return rolled_back(m);
}

/*
 * --reclaim: take over the abandoned claims, each only if it is still the
 * claim that was judged abandoned: the same owner (an UPDATE that matches
 * it), or no owner row at all (an INSERT IGNORE that finds the record
 * still a claim).  Of two runs reclaiming at once, one wins each id.
 */
static int take_over(struct store_mysql *m, struct store_net_batch *cb)
{
	size_t i;
	char *hex = NULL;

	if (query(m, "START TRANSACTION") < 0)
		return -1;
	for (i = 0; i < cb->n; i++) {
		struct store_net_slot *sl = &cb->slots[i];

		if (sl->dup || sl->state != CLAIM_HELD || !sl->abandoned)
			continue;
		sql_reset(m);
		if (sl->held_by) {
			hex = sql_literal(sl->held_by);
			if (hex == NULL)
				goto oom;
			addf(m, "UPDATE `%s` SET owner = ", m->claims);
			add(m, m->owner_sql);
			addf(m,
			     ", claimed_at = UTC_TIMESTAMP() WHERE id = %" PRIu32
			     " AND owner = ",
			     sl->id);
			add(m, hex);
			free(hex);
			hex = NULL;
		} else {
			addf(m,
			     "INSERT IGNORE INTO `%s` (id, owner, claimed_at)"
			     " SELECT id, ",
			     m->claims);
			add(m, m->owner_sql);
			addf(m,
			     ", UTC_TIMESTAMP() FROM `%s` WHERE id = %" PRIu32
			     " AND ts IS NULL",
			     m->table, sl->id);
		}
		if (run_sql(m) < 0)
			goto fail;
		if (mysql_affected_rows(m->db) == 1)
			sl->state = CLAIM_OK;
	}
	if (query(m, "COMMIT") < 0)
		goto fail;
	return 0;
oom:
	note_own(m, "out of memory");
fail:
	return rolled_back(m);
}

/* Among the ids not returned, tell finished records from held claims. */
static int classify_attempt(struct store_net *n, struct store_net_batch *cb)
{
	struct store_mysql *m = of_net(n);
	size_t done = 0, rows;

	while (done < cb->n) {
		sql_reset(m);
		addf(m,
		     "SELECT r.id, r.ts IS NULL, c.owner,"
		     " UNIX_TIMESTAMP(c.claimed_at) FROM `%s` r"
		     " LEFT JOIN `%s` c ON c.id = r.id WHERE r.id IN (",
		     m->table, m->claims);
		for (rows = 0; done < cb->n && rows < ROWS_PER_STATEMENT;
		     done++) {
			const struct store_net_slot *sl = &cb->slots[done];

			if (sl->dup || sl->state == CLAIM_OK)
				continue;
			add_id(m, rows++ ? "," : "", sl->id, "");
		}
		add(m, ")");
		/*
		 * A row that is gone was released by its run in between: the
		 * letter is not done, so it stays CLAIM_HELD (run again).
		 */
		if (rows && read_ids(m, cb, 1) < 0)
			return -1;
	}
	return take_over(m, cb);
}

/* ------------------------------------------------------------ finish */

/* DELETE FROM the claims table the rows of ids that are this run's. */
static int drop_claims(struct store_mysql *m, const uint32_t *ids, size_t n)
{
	size_t i;

	sql_reset(m);
	addf(m, "DELETE FROM `%s` WHERE id IN (", m->claims);
	for (i = 0; i < n; i++)
		add_id(m, i ? "," : "", ids[i], "");
	add(m, ") AND owner = ");
	add(m, m->owner_sql);
	return run_sql(m);
}

/*
 * DELETE the claims' rows of the records just written.  Driven from the
 * records, by their primary key: the claims table holds few rows (those
 * in flight), so the optimizer reads all of it for an IN list of its own,
 * rows waiting for purge included, which cost the server more than the
 * rest of the outcome batch.
 */
static int drop_finished_claims(struct store_mysql *m,
				const struct store_result *r, size_t n)
{
	size_t i;

	sql_reset(m);
	addf(m,
	     "DELETE c FROM `%s` r STRAIGHT_JOIN `%s` c ON c.id = r.id"
	     " WHERE r.id IN (",
	     m->table, m->claims);
	for (i = 0; i < n; i++)
		add_id(m, i ? "," : "", r[i].id, "");
	add(m, ")");
	return run_sql(m);
}

/*
 * Outcomes of one chunk with the same ts and delivery_status, most often
 * all of them (an outcome batch spans well under a second): one UPDATE
 * of their ids, which costs the server far less than an upsert of each.
 */
#define KEYS_MAX 8

struct outcome_key {
	time_t ts;
	int status;
	size_t n; /* outcomes of the chunk with this key */
};

static const char *status_sql(int status)
{
	return status < 0 ? "NULL" : status ? "1" : "0";
}

/* Whether outcome r has key's ts and delivery_status. */
static int has_key(const struct store_result *r, const struct outcome_key *key)
{
	return r->ts == key->ts && r->status == key->status;
}

/* The distinct keys of r[0..n), or 0 if there are more than max. */
static size_t outcome_keys(const struct store_result *r, size_t n,
			   struct outcome_key *keys, size_t max)
{
	size_t i, k, count = 0;

	for (i = 0; i < n; i++) {
		for (k = 0; k < count; k++)
			if (has_key(&r[i], &keys[k]))
				break;
		if (k == count) {
			if (count == max)
				return 0;
			keys[count].ts = r[i].ts;
			keys[count].status = r[i].status;
			keys[count++].n = 0;
		}
		keys[k].n++;
	}
	return count;
}

/*
 * INSERT ... ON DUPLICATE KEY UPDATE of r[0..n), or of those with key
 * only: it creates a record that went missing, so that an answer of the
 * API is never dropped.
 */
static int upsert_outcomes(struct store_mysql *m, const struct store_result *r,
			   size_t n, const struct outcome_key *key)
{
	size_t i, rows = 0;
	char ts[20];

	sql_reset(m);
	addf(m, "INSERT INTO `%s` (id, ts, delivery_status) VALUES ", m->table);
	for (i = 0; i < n; i++) {
		if (key && !has_key(&r[i], key))
			continue;
		store_format_ts(r[i].ts, ts);
		addf(m, "%s(%" PRIu32 ",'%s',%s)", rows++ ? "," : "", r[i].id,
		     ts, status_sql(r[i].status));
	}
	add(m, " ON DUPLICATE KEY UPDATE ts = VALUES(ts),"
	       " delivery_status = VALUES(delivery_status)");
	return run_sql(m);
}

/*
 * UPDATE the records of the outcomes with key.  When it matches fewer
 * rows than there are outcomes (a record missing, or an id twice in the
 * batch), the upsert writes them all again.
 */
static int update_outcomes(struct store_mysql *m, const struct store_result *r,
			   size_t n, const struct outcome_key *key)
{
	const char *info;
	unsigned long matched = 0;
	size_t i, rows = 0;
	char ts[20];

	store_format_ts(key->ts, ts);
	sql_reset(m);
	addf(m, "UPDATE `%s` SET ts = '%s', delivery_status = %s WHERE id IN (",
	     m->table, ts, status_sql(key->status));
	for (i = 0; i < n; i++)
		if (has_key(&r[i], key))
			add_id(m, rows++ ? "," : "", r[i].id, "");
	add(m, ")");
	if (run_sql(m) < 0)
		return -1;
	/* "Rows matched: 40  Changed: 40  Warnings: 0" */
	info = mysql_info(m->db);
	if (info == NULL || sscanf(info, "Rows matched: %lu", &matched) != 1 ||
	    matched < key->n)
		return upsert_outcomes(m, r, n, key);
	return 0;
}

/*
 * Per chunk, in one transaction with the deletion of its claims' rows: an
 * UPDATE per key (outcome_keys()), or one upsert when the chunk has too
 * many keys.  Running it again writes the same values, so a lost
 * connection is simply retried.
 */
static int finish_attempt(struct store_net *n, struct store_net_results *fb)
{
	struct store_mysql *m = of_net(n);
	struct outcome_key keys[KEYS_MAX];
	size_t done = 0, first, count, k;
	int rc;

	while (done < fb->n) {
		first = done;
		count = fb->n - done < ROWS_PER_STATEMENT ? fb->n - done
							  : ROWS_PER_STATEMENT;
		done += count;
		if (query(m, "START TRANSACTION") < 0)
			return -1;
		k = outcome_keys(fb->r + first, count, keys, KEYS_MAX);
		rc = k == 0 ? upsert_outcomes(m, fb->r + first, count, NULL)
			    : 0;
		while (rc == 0 && k-- > 0)
			rc = update_outcomes(m, fb->r + first, count, &keys[k]);
		if (rc < 0 ||
		    drop_finished_claims(m, fb->r + first, count) < 0 ||
		    query(m, "COMMIT") < 0)
			goto fail;
	}
	return 0;
fail:
	return rolled_back(m);
}

/* ------------------------------------------------------------ release */

/*
 * Only our own claims go: a record that got its ts is never deleted, nor
 * a claim that names another run (one that took it over by --reclaim).
 */
static int release_attempt(struct store_net *n, const uint32_t *ids,
			   size_t count)
{
	struct store_mysql *m = of_net(n);
	size_t done = 0, rows, first;

	while (done < count) {
		first = done;
		if (query(m, "START TRANSACTION") < 0)
			return -1;
		sql_reset(m);
		addf(m,
		     "DELETE r FROM `%s` r JOIN `%s` c ON c.id = r.id"
		     " WHERE r.ts IS NULL AND c.owner = ",
		     m->table, m->claims);
		add(m, m->owner_sql);
		add(m, " AND r.id IN (");
		for (rows = 0; done < count && rows < ROWS_PER_STATEMENT;
		     done++, rows++)
			add_id(m, rows ? "," : "", ids[done], "");
		add(m, ")");
		if (run_sql(m) < 0 ||
		    drop_claims(m, ids + first, done - first) < 0 ||
		    query(m, "COMMIT") < 0)
			goto fail;
	}
	return 0;
fail:
	return rolled_back(m);
}

/* ------------------------------------------------------------ totals */

static int totals_attempt(struct store_net *n, struct store_totals *t)
{
	struct store_mysql *m = of_net(n);
	long long *fields[] = { &t->records, &t->delivered, &t->not_delivered,
				&t->failed, &t->claimed };
	MYSQL_RES *res;
	MYSQL_ROW row;
	size_t i;

	if (m->absent[0]) {
		memset(t, 0, sizeof(*t));
		t->oldest_claim_age = -1;
		snprintf(t->absent, sizeof(t->absent), "%s", m->absent);
		return 0;
	}

	sql_reset(m);
	add(m, "SELECT COUNT(*), COALESCE(SUM(delivery_status = 1), 0),"
	       " COALESCE(SUM(delivery_status = 0), 0),"
	       " COALESCE(SUM(ts IS NOT NULL AND delivery_status IS NULL), 0),"
	       " COALESCE(SUM(ts IS NULL), 0)");
	addf(m, " FROM `%s`", m->table);
	if ((res = select_sql(m)) == NULL)
		return -1;
	row = mysql_fetch_row(res);
	for (i = 0; row && i < 5; i++)
		*fields[i] = row[i] ? strtoll(row[i], NULL, 10) : 0;
	mysql_free_result(res);
	if (row == NULL)
		return note_own(m, "the server sent no totals");
	/* the claims' age and owners, from the claims table */
	sql_reset(m);
	add(m, "SELECT COALESCE(TIMESTAMPDIFF(SECOND, MIN(c.claimed_at),"
	       " UTC_TIMESTAMP()), -1), COALESCE(SUM(c.id IS NULL), 0)");
	addf(m,
	     " FROM `%s` r LEFT JOIN `%s` c ON c.id = r.id"
	     " WHERE r.ts IS NULL",
	     m->table, m->claims);
	if ((res = select_sql(m)) == NULL && m->code == ER_NO_SUCH_TABLE) {
		/* a read-only look at a table no claiming run has opened yet */
		t->oldest_claim_age = -1;
		t->unowned = t->claimed;
		return 0;
	}
	if (res == NULL)
		return -1;
	row = mysql_fetch_row(res);
	t->oldest_claim_age = row && row[0] ? strtoll(row[0], NULL, 10) : -1;
	t->unowned = row && row[1] ? strtoll(row[1], NULL, 10) : 0;
	mysql_free_result(res);
	return row ? 0 : note_own(m, "the server sent no totals");
}

/* ------------------------------------------------------------ the table */

/* SPEC section 5, word for word but the name. */
static void add_create_table(struct store_mysql *m)
{
	addf(m, "CREATE TABLE IF NOT EXISTS `%s` (\n", m->table);
	add(m, "  `id`              INT(11) UNSIGNED    NOT NULL,\n"
	       "  `ts`              TIMESTAMP           NULL DEFAULT NULL,\n"
	       "  `delivery_status` TINYINT(1) UNSIGNED NULL DEFAULT NULL,\n"
	       "  PRIMARY KEY (`id`)\n"
	       ") ENGINE=InnoDB");
}

/* Who holds which claim, and since when: beside SPEC's table. */
static void add_create_claims(struct store_mysql *m)
{
	addf(m, "CREATE TABLE IF NOT EXISTS `%s` (\n", m->claims);
	add(m, "  `id`         INT(11) UNSIGNED NOT NULL,\n"
	       "  `owner`      VARCHAR(320)     NOT NULL,\n"
	       "  `claimed_at` TIMESTAMP        NULL DEFAULT NULL,\n"
	       "  PRIMARY KEY (`id`)\n"
	       ") ENGINE=InnoDB");
}

/* What a column of SPEC's table must look like. */
struct column_spec {
	const char *name;
	const char *types[3]; /* accepted COLUMN_TYPEs (MySQL 8 drops (11)) */
	int nullable;	      /* and then DEFAULT NULL, nothing in EXTRA */
	int primary;
	const char *want; /* for messages */
};

static const struct column_spec columns[] = {
	{ "id",
	  { "int(11) unsigned", "int unsigned", NULL },
	  0,
	  1,
	  "INT(11) UNSIGNED NOT NULL, the primary key" },
	{ "ts",
	  { "timestamp", NULL, NULL },
	  1,
	  0,
	  "TIMESTAMP NULL DEFAULT NULL" },
	{ "delivery_status",
	  { "tinyint(1) unsigned", NULL, NULL },
	  1,
	  0,
	  "TINYINT(1) UNSIGNED NULL DEFAULT NULL" },
};

#define NCOLUMNS (sizeof(columns) / sizeof(columns[0]))

/* The columns of information_schema.COLUMNS that check_column() reads. */
enum {
	C_NAME,
	C_TYPE,
	C_NULLABLE,
	C_KEY,
	C_DEFAULT,
	C_EXTRA,
	C_NULL_DEFAULT,
	C_INSERTABLE,
	C_COUNT
};

/* The column as DDL, e.g. "datetime NOT NULL DEFAULT current_timestamp()". */
static void describe(MYSQL_ROW row, char *out, size_t len)
{
	snprintf(out, len, "%s %s%s%s%s%s%s", row[C_TYPE],
		 strcmp(row[C_NULLABLE], "YES") ? "NOT NULL" : "NULL",
		 strcmp(row[C_NULL_DEFAULT], "1") ? " DEFAULT " : "",
		 strcmp(row[C_NULL_DEFAULT], "1") ? row[C_DEFAULT] : "",
		 row[C_EXTRA][0] ? " " : "", row[C_EXTRA],
		 strcmp(row[C_KEY], "PRI") ? "" : ", in the primary key");
}

/*
 * Which SPEC column row is (its index), NCOLUMNS for another column that
 * does no harm, or -1 and why.
 */
static int check_column(MYSQL_ROW row, char *why, size_t whylen)
{
	int primary = strcmp(row[C_KEY], "PRI") == 0;
	char is[200];
	size_t i, t;

	describe(row, is, sizeof(is));
	for (i = 0; i < NCOLUMNS; i++) {
		const struct column_spec *c = &columns[i];
		int ok = 0;

		if (strcmp(row[C_NAME], c->name) != 0)
			continue;
		for (t = 0; t < 3 && c->types[t]; t++)
			ok |= strcmp(row[C_TYPE], c->types[t]) == 0;
		ok = ok && primary == c->primary &&
		     strcmp(row[C_NULLABLE], c->nullable ? "YES" : "NO") == 0;
		if (c->nullable)
			ok = ok && strcmp(row[C_NULL_DEFAULT], "1") == 0 &&
			     row[C_EXTRA][0] == '\0';
		if (!ok) {
			snprintf(why, whylen, "is %s%s, want %s", is,
				 c->primary && !primary
					 ? ", not the primary key"
					 : "",
				 c->want);
			return -1;
		}
		return (int)i;
	}
	if (primary) {
		snprintf(why, whylen,
			 "is in the primary key, which must be `id` "
			 "alone");
		return -1;
	}
	if (strcmp(row[C_INSERTABLE], "1") != 0) {
		snprintf(why, whylen,
			 "(%s) is not in SPEC's table and needs a "
			 "value on insert",
			 is);
		return -1;
	}
	return (int)NCOLUMNS;
}

static int check_columns(struct store_mysql *m, char *err, size_t errlen)
{
	MYSQL_RES *res;
	MYSQL_ROW row;
	char why[300];
	int seen[NCOLUMNS] = { 0 }, k, rc = -1;
	size_t i;

	sql_reset(m);
	add(m,
	    "SELECT COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_KEY,"
	    " COLUMN_DEFAULT, EXTRA,"
	    " COLUMN_DEFAULT IS NULL OR COLUMN_DEFAULT = 'NULL',"
	    " IS_NULLABLE = 'YES' OR COLUMN_DEFAULT IS NOT NULL OR EXTRA <> ''"
	    " FROM information_schema.COLUMNS"
	    " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ");
	addf(m, "'%s' ORDER BY ORDINAL_POSITION", m->table);
	if ((res = select_sql(m)) == NULL) {
		snprintf(err, errlen,
			 "MySQL at %s: cannot read the columns of "
			 "table '%s': %s",
			 m->net.where, m->table, m->msg);
		return -1;
	}
	while ((row = mysql_fetch_row(res)) != NULL) {
		for (i = 0; i < C_COUNT; i++)
			if (row[i] == NULL)
				row[i] = (char *)"";
		if ((k = check_column(row, why, sizeof(why))) < 0) {
			snprintf(
				err, errlen,
				"table '%s' in database '%s' does "
				"not match SPEC: column '%s' %s; fix or drop the "
				"table, or set [mysql] table",
				m->table, m->database, row[C_NAME], why);
			goto done;
		}
		if (k < (int)NCOLUMNS)
			seen[k] = 1;
	}
	for (i = 0; i < NCOLUMNS; i++)
		if (!seen[i]) {
			snprintf(
				err, errlen,
				"table '%s' in database '%s' does "
				"not match SPEC: column '%s' is missing, want "
				"%s; fix or drop the table, or set [mysql] table",
				m->table, m->database, columns[i].name,
				columns[i].want);
			goto done;
		}
	rc = 0;
done:
	mysql_free_result(res);
	return rc;
}

/* The table's engine in *engine ("" when there is no such table). */
static int table_engine(struct store_mysql *m, char *engine, size_t len,
			char *err, size_t errlen)
{
	MYSQL_RES *res;
	MYSQL_ROW row;

	sql_reset(m);
	add(m, "SELECT ENGINE FROM information_schema.TABLES"
	       " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ");
	addf(m, "'%s'", m->table);
	if ((res = select_sql(m)) == NULL) {
		snprintf(err, errlen,
			 "MySQL at %s: cannot look for table '%s': %s",
			 m->net.where, m->table, m->msg);
		return -1;
	}
	row = mysql_fetch_row(res);
	snprintf(engine, len, "%s",
		 row == NULL ? ""
		 : row[0]    ? row[0]
			     : "VIEW");
	mysql_free_result(res);
	return 0;
}

/*
 * Create the table if missing, else check it: the claims rely on `id`
 * being the primary key, and a `ts` with a default would make every claim
 * look done.  Extra columns are tolerated when inserts need no value.
 */
static int ensure_table(struct store_mysql *m, char *err, size_t errlen)
{
	char engine[64];

	if (table_engine(m, engine, sizeof(engine), err, errlen) < 0)
		return -1;
	if (engine[0] == '\0') {
		sql_reset(m);
		add_create_table(m);
		if (run_sql(m) < 0) {
			snprintf(err, errlen,
				 "MySQL at %s: cannot create table "
				 "'%s' in database '%s': %s",
				 m->net.where, m->table, m->database, m->msg);
			return -1;
		}
	} else if (strcasecmp(engine, "InnoDB") != 0) {
		snprintf(err, errlen,
			 "table '%s' in database '%s' does not match "
			 "SPEC: its engine is %s, want InnoDB (claims "
			 "need transactions); fix or drop the table, "
			 "or set [mysql] table",
			 m->table, m->database, engine);
		return -1;
	}
	if (check_columns(m, err, errlen) < 0)
		return -1;
	sql_reset(m);
	add_create_claims(m);
	if (run_sql(m) < 0) {
		snprintf(err, errlen,
			 "MySQL at %s: cannot create table '%s' in database "
			 "'%s': %s",
			 m->net.where, m->claims, m->database, m->msg);
		return -1;
	}
	return 0;
}

/* --status: the table as it is; a missing one is noted, not created. */
static int look_for_table(struct store_mysql *m, char *err, size_t errlen)
{
	char engine[64];

	if (table_engine(m, engine, sizeof(engine), err, errlen) < 0)
		return -1;
	if (engine[0] == '\0')
		snprintf(m->absent, sizeof(m->absent),
			 "no table '%s' in database '%s'", m->table,
			 m->database);
	return 0;
}

/* --status: the server, the database and the table, as configured. */
static size_t mysql_where(const struct cfg *cfg, struct store_where *out,
			  size_t max)
{
	const char *host = cfg_str(cfg, "mysql", "host");
	size_t n = 0;

	if (max < 4)
		return 0;
	if (host[0]) {
		out[n].name = "host";
		snprintf(out[n++].value, sizeof(out->value), "%s", host);
		out[n].name = "port";
		snprintf(out[n++].value, sizeof(out->value), "%lu",
			 cfg_uint(cfg, "mysql", "port"));
	} else {
		out[n].name = "socket";
		snprintf(out[n++].value, sizeof(out->value), "%s",
			 cfg_str(cfg, "mysql", "socket"));
	}
	out[n].name = "database";
	snprintf(out[n++].value, sizeof(out->value), "%s",
		 cfg_str(cfg, "mysql", "database"));
	out[n].name = "table";
	snprintf(out[n++].value, sizeof(out->value), "%s",
		 cfg_str(cfg, "mysql", "table"));
	return n;
}

/* ------------------------------------------------------------ open/close */

static int is_identifier(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz"
			     "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$");

	return n > 0 && n < 65 && s[n] == '\0';
}

/* Why the first connection failed, and which key to look at. */
static void connect_error(struct store_mysql *m, const struct cfg *cfg,
			  char *err, size_t errlen)
{
	const char *pw_origin = cfg_find(cfg, "mysql", "password")->origin;
	struct stat st;
	char hint[300];

	switch (m->code) {
	case ER_ACCESS_DENIED_ERROR:
		if (m->password[0] && pw_origin[0] == '$')
			snprintf(hint, sizeof(hint),
				 "check [mysql] user and "
				 "the password in %s",
				 pw_origin);
		else if (m->password[0])
			snprintf(hint, sizeof(hint),
				 "check [mysql] user and "
				 "password (%s), or set SENDER_MYSQL_PASSWORD",
				 pw_origin);
		else
			snprintf(hint, sizeof(hint),
				 "no password was given: set [mysql] password "
				 "or SENDER_MYSQL_PASSWORD");
		break;
	case ER_BAD_DB_ERROR:
		snprintf(hint, sizeof(hint),
			 "the server has no database '%s': "
			 "check [mysql] database, or create it",
			 m->database);
		break;
	case ER_DBACCESS_DENIED_ERROR:
		snprintf(hint, sizeof(hint),
			 "database '%s' does not exist or "
			 "user '%s' may not use it: check [mysql] database",
			 m->database, m->user);
		break;
	case CR_CONNECTION_ERROR:
	case CR_SOCKET_CREATE_ERROR:
	case CR_CONN_HOST_ERROR:
	case CR_UNKNOWN_HOST:
		if (m->nhosts) {
			snprintf(hint, sizeof(hint),
				 "is the server running? "
				 "check [mysql] host and port");
			break;
		}
		/* the library's text cuts long paths: say it plainly */
		if (stat(m->socket, &st) < 0)
			snprintf(m->msg, sizeof(m->msg), "%s", strerror(errno));
		snprintf(hint, sizeof(hint),
			 "is the server running? check "
			 "[mysql] socket, or set [mysql] host for TCP");
		break;
	case CR_SSL_CONNECTION_ERROR:
		snprintf(hint, sizeof(hint),
			 "the TLS connection failed: check [mysql] ssl_mode "
			 "(%s), ssl_ca and the server's certificate",
			 ssl_modes[m->ssl_mode]);
		break;
	case ER_UNKNOWN_COM_ERROR:
		snprintf(hint, sizeof(hint),
			 "no server of [mysql] host is a Galera node in the "
			 "primary component: start or repair the cluster");
		break;
	default: snprintf(hint, sizeof(hint), "check the [mysql] section");
	}
	snprintf(err, errlen,
		 "cannot connect to MySQL at %s as '%s' (database "
		 "'%s'): %s; %s",
		 m->net.where, m->user, m->database, m->msg, hint);
}

static void mysql_close_store(struct store *s)
{
	struct store_mysql *m = downcast(s);

	if (m == NULL)
		return;
	disconnect(&m->net);
	buf_release(&m->sql);
	if (m->password) {
		explicit_bzero(m->password, strlen(m->password));
		free(m->password);
	}
	free(m->owner);
	free(m->owner_sql);
	free(m->ssl_ca);
	free(m->ssl_cert);
	free(m->ssl_key);
	free(m->socket);
	free(m->user);
	free(m->database);
	free(m);
}

/* ssl_mode's index in ssl_modes, or -1. */
static int ssl_mode_of(const char *text)
{
	int i;

	for (i = 0; ssl_modes[i]; i++)
		if (strcmp(text, ssl_modes[i]) == 0)
			return i;
	return -1;
}

static int check_tls(const struct cfg *cfg, char *err, size_t errlen)
{
	const char *mode = cfg_str(cfg, "mysql", "ssl_mode");
	int k = ssl_mode_of(mode);

	if (k < 0) {
		snprintf(err, errlen,
			 "%s: key 'ssl_mode' in section [mysql]: '%s' is not "
			 "disabled, required, verify_ca or verify_identity",
			 cfg_find(cfg, "mysql", "ssl_mode")->origin, mode);
		return -1;
	}
	if (k >= SSL_VERIFY_CA && !cfg_str(cfg, "mysql", "ssl_ca")[0]) {
		snprintf(err, errlen,
			 "%s: key 'ssl_mode' in section [mysql] is %s, which "
			 "needs the CA that signs the server's certificate: "
			 "set [mysql] ssl_ca",
			 cfg_find(cfg, "mysql", "ssl_mode")->origin, mode);
		return -1;
	}
	if (!cfg_str(cfg, "mysql", "ssl_cert")[0] !=
	    !cfg_str(cfg, "mysql", "ssl_key")[0]) {
		snprintf(err, errlen,
			 "%s: [mysql] ssl_cert and ssl_key go together: set "
			 "both or neither",
			 cfg_find(cfg, "mysql",
				  cfg_str(cfg, "mysql", "ssl_cert")[0]
					  ? "ssl_cert"
					  : "ssl_key")
				 ->origin);
		return -1;
	}
	return 0;
}

static int mysql_check(const struct cfg *cfg, char *err, size_t errlen)
{
	const char *table = cfg_str(cfg, "mysql", "table");
	const char *host = cfg_str(cfg, "mysql", "host");
	struct mysql_host hosts[HOSTS_MAX];
	size_t n;
	char why[400];

	if (check_tls(cfg, err, errlen) < 0)
		return -1;
	if (!is_identifier(table) || strlen(table) > TABLE_NAME_MAX) {
		snprintf(err, errlen,
			 "%s: key 'table' in section [mysql]: '%s' "
			 "is not a plain table name (1 to %zu letters, digits, "
			 "'_' or '$': the claims table is named after it, "
			 "with '" CLAIMS_SUFFIX "')",
			 cfg_find(cfg, "mysql", "table")->origin, table,
			 TABLE_NAME_MAX);
		return -1;
	}
	if (parse_hosts(host, (unsigned)cfg_uint(cfg, "mysql", "port"), hosts,
			&n, why, sizeof(why)) < 0) {
		snprintf(err, errlen,
			 "%s: key 'host' in section [mysql]: %s; want "
			 "host[:port] or a comma-separated list of them "
			 "(an IPv6 address in brackets), or nothing for the "
			 "unix socket",
			 cfg_find(cfg, "mysql", "host")->origin, why);
		return -1;
	}
	return 0;
}

static int copy_config(struct store_mysql *m, const struct cfg *cfg, char *err,
		       size_t errlen)
{
	const char *table = cfg_str(cfg, "mysql", "table");

	if (mysql_check(cfg, err, errlen) < 0)
		return -1;
	snprintf(m->table, sizeof(m->table), "%s", table);
	snprintf(m->claims, sizeof(m->claims), "%s" CLAIMS_SUFFIX, table);
	m->socket = strdup(cfg_str(cfg, "mysql", "socket"));
	m->user = strdup(cfg_str(cfg, "mysql", "user"));
	m->password = strdup(cfg_str(cfg, "mysql", "password"));
	m->database = strdup(cfg_str(cfg, "mysql", "database"));
	m->ssl_ca = strdup(cfg_str(cfg, "mysql", "ssl_ca"));
	m->ssl_cert = strdup(cfg_str(cfg, "mysql", "ssl_cert"));
	m->ssl_key = strdup(cfg_str(cfg, "mysql", "ssl_key"));
	m->ssl_mode = (enum ssl_mode)ssl_mode_of(
		cfg_str(cfg, "mysql", "ssl_mode"));
	if (!m->socket || !m->user || !m->password || !m->database ||
	    !m->ssl_ca || !m->ssl_cert || !m->ssl_key) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	/* checked by mysql_check() above */
	parse_hosts(cfg_str(cfg, "mysql", "host"),
		    (unsigned)cfg_uint(cfg, "mysql", "port"), m->hosts,
		    &m->nhosts, err, errlen);
	m->net.reconnect_timeout = cfg_seconds(cfg, "mysql",
					       "reconnect_timeout");
	snprintf(m->net.object, sizeof(m->net.object), "table '%s'", m->table);
	describe_where(m, m->nhosts > 1 ? m->nhosts : 0);
	return 0;
}

/* No retry here: a server that is not there at the start is an error. */
static struct store *mysql_open(const struct cfg *cfg,
				const struct store_owner *owner, char *err,
				size_t errlen)
{
	struct store_mysql *m = calloc(1, sizeof(*m));

	if (m == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	m->net.base.ops = &store_mysql_ops;
	m->reclaim = owner->reclaim;
	m->lease = owner->claim_lease;
	buf_init(&m->sql, 0);
	m->owner = strdup(owner->name);
	m->owner_sql = m->owner ? sql_literal(m->owner) : NULL;
	if (m->owner_sql == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (copy_config(m, cfg, err, errlen) < 0)
		goto fail;
	if (connect_db(&m->net) < 0) {
		connect_error(m, cfg, err, errlen);
		goto fail;
	}
	if (owner->read_only) {
		if (look_for_table(m, err, errlen) < 0)
			goto fail;
	} else if (!owner->schema_ready && ensure_table(m, err, errlen) < 0) {
		goto fail;
	}
	return &m->net.base;
fail:
	mysql_close_store(&m->net.base);
	return NULL;
}

static const struct store_net_ops mysql_net_ops = {
	.product = "MySQL",
	.section = "mysql",
	.conflict_retries = CONFLICT_RETRIES,
	.connected = net_connected,
	.connect = connect_db,
	.disconnect = disconnect,
	.fault = net_fault,
	.message = net_message,
	.claim = claim_attempt,
	.look_up = classify_attempt,
	.finish = finish_attempt,
	.release = release_attempt,
	.totals = totals_attempt,
};

const struct store_ops store_mysql_ops = {
	.name = "mysql",
	.keys = mysql_keys,
	.check = mysql_check,
	.open = mysql_open,
	.claim = store_net_claim,
	.finish = store_net_finish,
	.release = store_net_release,
	.totals = store_net_totals,
	.close = mysql_close_store,
	/*
	 * A claim batch and an outcome batch each take the server about as
	 * long as sending them: on two connections it does both at once.
	 */
	.second_connection = 1,
	.net = &mysql_net_ops,
	.where = mysql_where,
};
