/*
 * run: one run of sender over its input files.
 *
 * Data flows one way: reader -> message -> claim (store, in batches) ->
 * api -> finish or release (store, in batches) -> stats.  Letters are read
 * only when the api has room, so memory follows the concurrency and the
 * claim batch, not the size of the input.
 */
#ifndef SENDER_RUN_H
#define SENDER_RUN_H

#include <signal.h>
#include <stddef.h>

struct api;
struct store;
struct log;
struct progress;
struct report;

struct run_opts {
	char *const *files; /* "-" is standard input */
	size_t nfiles;
	int dry_run;	      /* read and check only: no store, no api */
	int wait;	      /* --wait: wait for ids other live runs hold */
	long wait_poll_ms;    /* first pause between looks at them */
	long wait_max_ms;     /* then give up on the ones still held */
	unsigned claim_batch; /* ids claimed per store round trip, at first */
	/* and at most, when letters go out fast (run.c's BATCH_MS) */
	unsigned claim_batch_max;
	/* outcomes (or releases) written per store round trip, at most */
	unsigned outcome_batch;
	unsigned slots;	     /* letters the api holds at most */
	long flush_ms;	     /* results wait at most this long */
	unsigned dead_after; /* deferred letters in a row that stop the run */
	const char *api_url; /* for messages */
	const char *journal; /* where outcomes go if the store fails */
	struct progress *progress; /* the live line, or NULL */
	struct report *report;	   /* --report: a line per letter, or NULL */
	unsigned long limit;	   /* --limit: most letters claimed; 0: all */
	/* count of SIGINT/SIGTERM/SIGHUP received, and the first one */
	const volatile sig_atomic_t *signals;
	const volatile sig_atomic_t *first_signal;
	int in_doubt_hold; /* [retry] in_doubt = hold: keep those claims */
};

struct run_stats {
	unsigned long letters, delivered, not_delivered, rejected, errors;
	unsigned long skipped, deferred, invalid, requests;
	unsigned long held;	      /* of skipped: claimed by another run */
	unsigned long done_elsewhere; /* of skipped: --wait saw another run
					 finish it */
	unsigned long in_doubt;	  /* of deferred: may have reached the API */
	unsigned long unrecorded; /* answers the store did not take */
	unsigned long left;	  /* not read for --limit: for the next run */
	double seconds;
	int input_failed;   /* a file missing, unreadable or not well formed */
	int storage_failed; /* the store failed: nothing more was sent */
	int api_failed;	    /* the API is misconfigured or unreachable */
	int signal;	    /* the signal that stopped the run, or 0 */
	int exit_code;	    /* for --json, set by the caller */
	char error[1280];   /* why the run stopped early, or "" */
};

/* "SIGINT", "SIGTERM", "SIGHUP" (the signals a run stops on). */
const char *run_signal_name(int sig);

/*
 * Send the letters of the files.  store and api are NULL in a dry run.
 * outcomes: a second connection to the store for the outcomes
 * (store_second_connection()), or NULL.  Everything that happens is
 * logged; the verdict is left to the caller.
 */
void run_files(const struct run_opts *o, struct api *api, struct store *store,
	       struct store *outcomes, struct log *log, struct run_stats *st);

#endif
