/*
 * journal: outcomes the store could not take, kept in a local file so
 * that nothing the API answered is lost when the database is.
 * `sender --replay FILE` applies them once the database is back; applying
 * them twice changes nothing, since a record is set to the same values.
 *
 * One line per outcome, tab-separated, after a comment line:
 *   id  ts (YYYY-MM-DD HH:MM:SS UTC)  status (1, 0 or -)  attempts  error
 * with tab, newline and backslash in the error text escaped as \t \n \\.
 */
#ifndef SENDER_JOURNAL_H
#define SENDER_JOURNAL_H

#include <stddef.h>

struct store;
struct store_result;
struct journal_reader;

/* Outcomes recorded per store round trip by journal_replay(). */
#define JOURNAL_REPLAY_BATCH 500

/* How journal_replay() ended. */
enum journal_replay {
	JOURNAL_REPLAYED, /* every outcome of the journal is recorded */
	JOURNAL_BAD,	  /* a line is not a journal line, or a read failed */
	JOURNAL_STORE_FAILED, /* the store refused a batch */
};

/* Append n outcomes to path (created if missing) and fsync it. */
int journal_append(const char *path, const struct store_result *r, size_t n,
		   char *err, size_t errlen);

/* Open a journal for reading; NULL with err on failure. */
struct journal_reader *journal_open(const char *path, char *err, size_t errlen);

/*
 * The next outcome: 1 and *out (its error text owned by the reader, valid
 * until the next call), 0 at the end, -1 with "FILE:LINE: why" in err.
 */
int journal_next(struct journal_reader *j, struct store_result *out, char *err,
		 size_t errlen);

void journal_close(struct journal_reader *j);

/*
 * Record the outcomes of j, from where it stands to its end, in store
 * (store_finish(), JOURNAL_REPLAY_BATCH at a time).  *recorded counts the
 * outcomes recorded, which stay recorded when a later batch fails; err
 * says why it stopped ("FILE:LINE: why" for a bad line).  Replaying the
 * same journal again changes nothing.
 */
enum journal_replay journal_replay(struct journal_reader *j,
				   struct store *store, unsigned long *recorded,
				   char *err, size_t errlen);

/*
 * 1 if path holds at least one outcome, 0 if it is missing or holds none,
 * -1 with err if it cannot be read or its first line is bad.
 */
int journal_pending(const char *path, char *err, size_t errlen);

#endif
