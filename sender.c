/*
 * sender: POST the letters of XML files to a mail API, each id once, and
 * record the outcomes.  This file is the wiring: options, configuration,
 * the store and the api, the run, the verdict.  See README.md and
 * ../shared/SPEC.md for the contract.
 */
#include "src/api.h"
#include "src/cfg.h"
#include "src/core_keys.h"
#include "src/journal.h"
#include "src/log.h"
#include "src/owner.h"
#include "src/progress.h"
#include "src/report.h"
#include "src/run.h"
#include "src/store.h"
#include "src/summary.h"
#include "src/url.h"

#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum exit_status {
	EXIT_DONE = 0,
	EXIT_AGAIN = 1,
	EXIT_USAGE = 2,
	EXIT_INPUT = 3,
	EXIT_STORAGE = 4,
};

/* The most letters ever claimed per store round trip. */
#define CLAIM_BATCH_MAX 2048

/* The most outcomes written per store round trip. */
#define OUTCOME_BATCH 2048

static volatile sig_atomic_t signals_seen, first_signal;
static volatile sig_atomic_t resizes_seen; /* SIGWINCH: redraw the line */

static void on_resize(int sig)
{
	(void)sig;
	resizes_seen++;
}

/* The run stops with the status of the first signal: a second one only
 * cuts the drain short (and may be delivered first when both wait). */
static void on_signal(int sig)
{
	if (signals_seen == 0)
		first_signal = sig;
	signals_seen++;
}

struct options {
	const char *config;
	const char *api_url, *backend, *concurrency, *replay;
	const char *rate, *report;
	unsigned long limit;
	int dry_run, reclaim, wait, json, quiet, verbose, progress;
	int status, print_config, log_json;
	char **files;
	size_t nfiles;
};

static const struct cfg_key *const *all_key_tables(void);

/*
 * The configuration keys for --help, one line per section, from the key
 * tables themselves: the list cannot go stale.
 */
static const char *keys_text(void)
{
	static char text[2048];
	const struct cfg_key *const *t;
	const struct cfg_key *k;
	const char *section = "";
	size_t n = 0;

	n += (size_t)snprintf(text, sizeof(text),
			      "Configuration keys (config.example.ini "
			      "documents each):\n");
	for (t = all_key_tables(); *t; t++) {
		for (k = *t; k->name && n < sizeof(text); k++) {
			int w = snprintf(text + n, sizeof(text) - n, "%s%s",
					 strcmp(section, k->section) ? "" : " ",
					 k->name);

			if (strcmp(section, k->section) != 0) {
				w = snprintf(text + n, sizeof(text) - n,
					     "%s  [%s] %s",
					     section[0] ? "\n" : "", k->section,
					     k->name);
				section = k->section;
			}
			if (w > 0)
				n += (size_t)w;
		}
	}
	if (n < sizeof(text))
		snprintf(text + n, sizeof(text) - n, "\n\n");
	return text;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sender [OPTIONS] FILE.xml [FILE.xml ...]\n"
		"       sender [OPTIONS] -        (letters from standard input)\n"
		"\n"
		"POST every letter of the files to the mail API once, recording\n"
		"id, ts and delivery_status in the configured store.\n"
		"\n"
		"  -c, --config PATH      INI file (default: $SENDER_CONFIG, else the\n"
		"                         first of ./sender.ini,\n"
		"                         $XDG_CONFIG_HOME/sender/sender.ini (or\n"
		"                         ~/.config/sender/sender.ini) and\n"
		"                         /etc/sender/sender.ini, else built-in);\n"
		"                         relative paths in it are beside it\n"
		"      --api-url URL      overrides [api] url\n"
		"                         (default http://test.webjet.pro/api.php)\n"
		"      --backend NAME     overrides [store] backend: %s\n"
		"                         (default sqlite)\n"
		"  -j, --concurrency N    overrides [api] concurrency, most requests\n"
		"                         in flight (default 32)\n"
		"      --dry-run          parse and check only: nothing is POSTed,\n"
		"                         nothing is written\n"
		"      --reclaim[=all]    also take over claims left by a killed run;\n"
		"                         =all: also claims whose owner is unknown\n"
		"                         (MySQL claims made before owners were kept)\n"
		"      --wait             after its own letters, wait for the ids\n"
		"                         other live runs hold: sent here if they\n"
		"                         release them, done if they finish them\n"
		"                         ([store] wait = true)\n"
		"      --rate N           overrides [api] rate: at most N letters\n"
		"                         started a second on average (default 0,\n"
		"                         no limit)\n"
		"      --limit N          claim at most N letters in this run; the\n"
		"                         rest is left for the next run (exit 1)\n"
		"      --report FILE      one JSON line per letter as it finishes\n"
		"                         (id, outcome, http_status, attempts, ts,\n"
		"                         text); - is standard output\n"
		"      --replay JOURNAL   record the answers a failed database could\n"
		"                         not take (the journal the error named)\n"
		"      --json             print the summary as JSON on stdout\n"
		"                         (also on exit 2 and 4, with exit and\n"
		"                         error)\n"
		"      --log-format FMT   text (default) or json: one JSON object\n"
		"                         per event on stderr, for log shippers\n"
		"      --status           print where the configured store is and\n"
		"                         its totals (done, delivered, claimed ...)\n"
		"                         and exit; creates nothing; with --json\n"
		"                         as one object\n"
		"      --print-config     print the effective configuration, where\n"
		"                         each value comes from, secrets masked\n"
		"  -q, --quiet            nothing on success; else only errors and\n"
		"                         the summary\n"
		"  -v, --verbose          more on stderr (twice: even more)\n"
		"      --progress         live progress line on stderr (default:\n"
		"      --no-progress      on when stderr is a terminal)\n"
		"  -h, --help             this text\n"
		"      --version          version and backends\n"
		"\n"
		"%s"
		"Passwords come from the config file or the environment\n"
		"(SENDER_MYSQL_PASSWORD, SENDER_MONGODB_URI), never from options.\n"
		"[mysql] host may list the nodes of a Galera cluster,\n"
		"host = db1,db2:3307,[2001:db8::3]: the first that answers is\n"
		"used, the next when it is lost or leaves the primary component.\n"
		"The API URL must be http or https; its user:password@ and\n"
		"?query are masked wherever it is shown.\n"
		"\n"
		"Letters in doubt (a request that may have reached the API\n"
		"without an answer) are named and counted; [retry] in_doubt =\n"
		"resend (default) releases them for a later run, hold keeps\n"
		"them claimed for --reclaim.  [retry] max_retry_after (600 s)\n"
		"caps a Retry-After, max_letter_seconds (3600) a letter's\n"
		"waiting for its retries.\n"
		"\n"
		"Exit status: 0 all letters done; 1 some deferred, claimed by\n"
		"another run or left by --limit (run again later); 2 usage or\n"
		"configuration error;\n"
		"3 input error; 4 storage error; 130/143/129 stopped by\n"
		"SIGINT/SIGTERM/SIGHUP.\n",
		store_names(), keys_text());
}

/* --reclaim: 1; --reclaim=all: 2; -1 (said) for another value. */
static int reclaim_level(const char *value)
{
	if (value == NULL)
		return 1;
	if (strcmp(value, "all") == 0)
		return 2;
	fprintf(stderr, "sender: --reclaim takes no value or =all, not '%s'\n",
		value);
	return -1;
}

/* A whole number from 1 (--limit). */
static int parse_count(const char *s, unsigned long *out)
{
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return *end || errno || *out == 0 ? -1 : 0;
}

/* Returns 0, or the exit status when the program should stop now. */
static int parse_options(int argc, char **argv, struct options *o)
{
	enum {
		OPT_API_URL = 256,
		OPT_BACKEND,
		OPT_DRY_RUN,
		OPT_RECLAIM,
		OPT_WAIT,
		OPT_JSON,
		OPT_PROGRESS,
		OPT_NO_PROGRESS,
		OPT_VERSION,
		OPT_REPLAY,
		OPT_STATUS,
		OPT_PRINT_CONFIG,
		OPT_LOG_FORMAT,
		OPT_RATE,
		OPT_LIMIT,
		OPT_REPORT
	};
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "api-url", required_argument, NULL, OPT_API_URL },
		{ "backend", required_argument, NULL, OPT_BACKEND },
		{ "concurrency", required_argument, NULL, 'j' },
		{ "dry-run", no_argument, NULL, OPT_DRY_RUN },
		{ "reclaim", optional_argument, NULL, OPT_RECLAIM },
		{ "wait", no_argument, NULL, OPT_WAIT },
		{ "replay", required_argument, NULL, OPT_REPLAY },
		{ "status", no_argument, NULL, OPT_STATUS },
		{ "print-config", no_argument, NULL, OPT_PRINT_CONFIG },
		{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
		{ "rate", required_argument, NULL, OPT_RATE },
		{ "limit", required_argument, NULL, OPT_LIMIT },
		{ "report", required_argument, NULL, OPT_REPORT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "progress", no_argument, NULL, OPT_PROGRESS },
		{ "no-progress", no_argument, NULL, OPT_NO_PROGRESS },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	size_t i, stdin_count;
	int c;

	memset(o, 0, sizeof(*o));
	o->progress = -1;
	while ((c = getopt_long(argc, argv, "c:j:qvh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config = optarg; break;
		case OPT_API_URL: o->api_url = optarg; break;
		case OPT_BACKEND: o->backend = optarg; break;
		case 'j': o->concurrency = optarg; break;
		case OPT_DRY_RUN: o->dry_run = 1; break;
		case OPT_RECLAIM:
			o->reclaim = reclaim_level(optarg);
			if (o->reclaim < 0)
				return EXIT_USAGE;
			break;
		case OPT_WAIT: o->wait = 1; break;
		case OPT_REPLAY: o->replay = optarg; break;
		case OPT_STATUS: o->status = 1; break;
		case OPT_PRINT_CONFIG: o->print_config = 1; break;
		case OPT_LOG_FORMAT:
			if (strcmp(optarg, "json") != 0 &&
			    strcmp(optarg, "text") != 0) {
				fprintf(stderr,
					"sender: --log-format takes text "
					"or json, not '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			o->log_json = optarg[0] == 'j';
			break;
		case OPT_RATE: o->rate = optarg; break;
		case OPT_LIMIT:
			if (parse_count(optarg, &o->limit) < 0) {
				fprintf(stderr,
					"sender: --limit takes a whole number "
					"of letters from 1, not '%s'\n",
					optarg);
				return EXIT_USAGE;
			}
			break;
		case OPT_REPORT: o->report = optarg; break;
		case OPT_JSON: o->json = 1; break;
		case 'q': o->quiet = 1; break;
		case 'v': o->verbose++; break;
		case OPT_PROGRESS: o->progress = 1; break;
		case OPT_NO_PROGRESS: o->progress = 0; break;
		case 'h': usage(stdout); return -EXIT_DONE - 1;
		case OPT_VERSION:
			printf("sender %s\nbackends: %s\n%s\n", SENDER_VERSION,
			       store_names(), curl_version());
			return -EXIT_DONE - 1;
		default:
			fprintf(stderr, "sender: try 'sender --help'\n");
			return EXIT_USAGE;
		}
	}
	o->files = argv + optind;
	o->nfiles = (size_t)(argc - optind);
	if ((o->replay || o->status || o->print_config) && o->nfiles) {
		fprintf(stderr, "sender: --replay, --status and --print-config "
				"take no input files\n");
		return EXIT_USAGE;
	}
	for (i = 0, stdin_count = 0; i < o->nfiles; i++)
		stdin_count += strcmp(o->files[i], "-") == 0;
	if (stdin_count > 1) {
		fprintf(stderr,
			"sender: '-' (standard input) is given %zu "
			"times; it can be read only once\n",
			stdin_count);
		return EXIT_USAGE;
	}
	if (o->report && o->json && strcmp(o->report, "-") == 0) {
		fprintf(stderr, "sender: --report - and --json both write to "
				"standard output; give --report a file\n");
		return EXIT_USAGE;
	}
	if (o->nfiles == 0 && !o->replay && !o->status && !o->print_config) {
		fprintf(stderr,
			"sender: no input file given (use - for standard "
			"input); try 'sender --help'\n");
		return EXIT_USAGE;
	}
	return 0;
}

/* The key tables of the core and of every compiled-in backend. */
static const struct cfg_key *const *all_key_tables(void)
{
	static const struct cfg_key *tables[16];
	const struct store_ops *const *b = store_backends();
	size_t n = 0;

	tables[n++] = core_keys;
	for (; *b && n < 15; b++)
		tables[n++] = (*b)->keys;
	tables[n] = NULL;
	return tables;
}

/*
 * The config file when neither -c nor $SENDER_CONFIG names one: the first
 * that exists of ./sender.ini, the user's ($XDG_CONFIG_HOME, else
 * ~/.config) and the system's.  NULL: the built-in defaults.
 */
static const char *default_config(char *buf, size_t buflen)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n = -1;

	if (access("sender.ini", F_OK) == 0)
		return "sender.ini";
	if (xdg && xdg[0] == '/')
		n = snprintf(buf, buflen, "%s/sender/sender.ini", xdg);
	else if (home && home[0])
		n = snprintf(buf, buflen, "%s/.config/sender/sender.ini", home);
	if (n > 0 && (size_t)n < buflen && access(buf, F_OK) == 0)
		return buf;
	if (access("/etc/sender/sender.ini", F_OK) == 0)
		return "/etc/sender/sender.ini";
	return NULL;
}

/*
 * The API URL must parse and be http or https before anything is claimed:
 * a URL that can never work would claim letters and retry each one.  The
 * message names the key, where its value came from, and the value masked.
 */
static int check_api_url(const struct cfg *cfg, char *err, size_t errlen)
{
	const struct cfg_entry *e = cfg_find(cfg, "api", "url");
	char why[256], shown[512];

	if (url_check(e->value, why, sizeof(why)) == 0)
		return 0;
	url_mask(e->value, shown, sizeof(shown));
	snprintf(err, errlen,
		 "%s: key 'url' of section [api] is not a usable API URL: "
		 "'%s': %s",
		 e->origin, shown, why);
	return -1;
}

static int load_config(const struct options *o, struct cfg *cfg, char *err,
		       size_t errlen)
{
	const char *path = o->config;
	const struct store_ops *backend;
	char buf[4096];

	if (cfg_init(cfg, all_key_tables(), err, errlen) < 0)
		return -1;
	if (path == NULL)
		path = getenv("SENDER_CONFIG");
	if (path == NULL)
		path = default_config(buf, sizeof(buf));
	if (path && cfg_load_file(cfg, path, err, errlen) < 0)
		return -1;
	if (cfg_load_env(cfg, err, errlen) < 0)
		return -1;
	if ((o->api_url && cfg_set(cfg, "api", "url", o->api_url, "--api-url",
				   err, errlen) < 0) ||
	    (o->backend && cfg_set(cfg, "store", "backend", o->backend,
				   "--backend", err, errlen) < 0) ||
	    (o->concurrency &&
	     cfg_set(cfg, "api", "concurrency", o->concurrency, "--concurrency",
		     err, errlen) < 0) ||
	    (o->rate &&
	     cfg_set(cfg, "api", "rate", o->rate, "--rate", err, errlen) < 0))
		return -1;
	backend = store_find(cfg_str(cfg, "store", "backend"));
	if (backend == NULL) {
		snprintf(err, errlen,
			 "%s: unknown backend '%s' in key 'backend' "
			 "of section [store] (known: %s)",
			 cfg_find(cfg, "store", "backend")->origin,
			 cfg_str(cfg, "store", "backend"), store_names());
		return -1;
	}
	if (store_check(backend, cfg, err, errlen) < 0)
		return -1;
	if (strcmp(cfg_str(cfg, "retry", "in_doubt"), "resend") != 0 &&
	    strcmp(cfg_str(cfg, "retry", "in_doubt"), "hold") != 0) {
		snprintf(err, errlen,
			 "%s: key 'in_doubt' of section [retry] is resend or "
			 "hold, not '%s'",
			 cfg_find(cfg, "retry", "in_doubt")->origin,
			 cfg_str(cfg, "retry", "in_doubt"));
		return -1;
	}
	if (o->nfiles && check_api_url(cfg, err, errlen) < 0)
		return -1;
	if (cfg_uint(cfg, "retry", "max_delay_ms") <
	    cfg_uint(cfg, "retry", "base_delay_ms")) {
		snprintf(err, errlen,
			 "%s: key 'max_delay_ms' of section [retry] "
			 "is below base_delay_ms",
			 cfg_find(cfg, "retry", "max_delay_ms")->origin);
		return -1;
	}
	return 0;
}

static void api_options(const struct cfg *cfg, struct api_opts *a)
{
	memset(a, 0, sizeof(*a));
	a->url = cfg_str(cfg, "api", "url");
	a->timeout_ms = (long)(cfg_seconds(cfg, "api", "timeout") * 1000);
	a->concurrency = (unsigned)cfg_uint(cfg, "api", "concurrency");
	a->max_attempts = (unsigned)cfg_uint(cfg, "retry", "max_attempts");
	a->base_delay_ms = (long)cfg_uint(cfg, "retry", "base_delay_ms");
	a->max_delay_ms = (long)cfg_uint(cfg, "retry", "max_delay_ms");
	a->seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	a->max_retry_after_s = (long)cfg_uint(cfg, "retry", "max_retry_after");
	a->max_letter_ms = (long)cfg_uint(cfg, "retry", "max_letter_seconds") *
			   1000;
	a->in_doubt_hold = strcmp(cfg_str(cfg, "retry", "in_doubt"), "hold") ==
			   0;
	a->rate = cfg_uint(cfg, "api", "rate");
}

/* -vv: the api's retries and window changes. */
static void api_trace(void *arg, uint32_t id, const char *msg)
{
	log_event(arg, LOG_DEBUG, EV_NOTE, id ? (long long)id : -1, "%s", msg);
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	/* one handler at a time, so that "first" means first */
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGINT);
	sigaddset(&sa.sa_mask, SIGTERM);
	sigaddset(&sa.sa_mask, SIGHUP);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* a closed terminal: stop as gently as for SIGTERM (exit 129) */
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = on_resize;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(SIGWINCH, &sa, NULL);
	sa.sa_flags = 0;
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static int verdict(const struct run_stats *st)
{
	if (st->signal)
		return 128 + st->signal;
	if (st->storage_failed || st->unrecorded)
		return EXIT_STORAGE;
	if (st->input_failed || st->invalid)
		return EXIT_INPUT;
	if (st->api_failed || st->deferred || st->held || st->left)
		return EXIT_AGAIN;
	return EXIT_DONE;
}

/*
 * The closing words: warnings that need the totals, the summary line, the
 * JSON object.  With -q a run that ends with exit 0 says nothing at all.
 */
static void closing(const struct options *o, struct run_stats *st, int rc,
		    const char *journal, int hold, struct log *log)
{
	char line[512], why[64];

	log_finish(log);
	if (o->dry_run)
		log_warn(log,
			 "dry run: %lu valid letters, nothing was sent or "
			 "written",
			 st->letters - st->skipped - st->invalid);
	if (st->held && journal_pending(journal, why, sizeof(why)) != 0)
		log_warn(log,
			 "%lu letters are claimed by another run, by a killed "
			 "one, or by one whose answers wait in the journal "
			 "'%s': run sender --replay %s first (then see "
			 "--reclaim)",
			 st->held, journal, journal);
	else if (st->held)
		log_warn(log,
			 "%lu letters are claimed by another run (or by a "
			 "killed one: see --reclaim); run again later",
			 st->held);
	if (st->in_doubt)
		log_warn(log,
			 "%lu letters are in doubt: their request may have "
			 "reached the API without an answer; %s",
			 st->in_doubt,
			 hold ? "they stay claimed, only --reclaim sends them "
				"again"
			      : "their claims were released, a later run "
				"sends them again");
	summary_line(st, line, sizeof(line));
	if (!(o->quiet && rc == EXIT_DONE))
		log_event(log, LOG_ERROR, EV_SUMMARY, -1, "%s", line);
	st->exit_code = rc;
	if (o->json && summary_json(st, stdout) < 0)
		log_error(log,
			  "cannot write the JSON summary to standard output");
}

/*
 * SPEC 8, the journal comes first: answers a failed database could not
 * take are replayed before this run claims anything, so that no id whose
 * answer waits in the journal is claimed (--reclaim) and sent again.  A
 * journal replayed is kept as JOURNAL.replayed.  0, or the exit status
 * when the run must not claim.
 */
static int journal_first(const char *path, struct store *store, struct log *log)
{
	char err[1024], done[4200];
	unsigned long n = 0;
	struct journal_reader *j;
	enum journal_replay rc;
	int pending = journal_pending(path, err, sizeof(err));

	if (pending == 0)
		return 0;
	j = pending > 0 ? journal_open(path, err, sizeof(err)) : NULL;
	rc = j ? journal_replay(j, store, &n, err, sizeof(err)) : JOURNAL_BAD;
	journal_close(j);
	if (rc != JOURNAL_REPLAYED) {
		log_error(log,
			  "the journal '%s' holds answers not yet recorded and "
			  "could not be replayed (%s); nothing was claimed or "
			  "sent: fix that and run sender --replay %s",
			  path, err, path);
		return rc == JOURNAL_BAD ? EXIT_INPUT : EXIT_STORAGE;
	}
	snprintf(done, sizeof(done), "%s.replayed", path);
	if (rename(path, done) != 0)
		log_warn(log,
			 "replayed the journal '%s' but cannot rename it to "
			 "'%s' (%s): the next run replays it again, which "
			 "changes nothing",
			 path, done, strerror(errno));
	log_warn(log,
		 "replayed %lu answers from the journal '%s' before claiming "
		 "anything (kept as '%s')",
		 n, path, done);
	return 0;
}

/*
 * A run that stops before it starts still prints its --json object, all
 * counts zero, with the exit status and the reason.  Returns rc.
 */
static int early_json(const struct options *o, int rc, const char *why)
{
	struct run_stats st;

	if (!o->json)
		return rc;
	memset(&st, 0, sizeof(st));
	st.exit_code = rc;
	snprintf(st.error, sizeof(st.error), "%s", why);
	summary_json(&st, stdout);
	return rc;
}

/* The store that key 'backend' of [store] names (checked by then), opened. */
static struct store *open_configured_store(const struct cfg *cfg,
					   const struct store_owner *owner,
					   char *err, size_t errlen)
{
	return store_open(store_find(cfg_str(cfg, "store", "backend")), cfg,
			  owner, err, errlen);
}

/*
 * A second connection for the outcomes where the backend works faster so
 * (store_second_connection()), or NULL: without it the run records them
 * on the first, as it always could, so a failure here is only noted.
 */
static struct store *open_outcomes(struct store *store, const struct cfg *cfg,
				   const struct store_owner *owner,
				   struct log *log)
{
	struct store_owner same = *owner;
	struct store *second;
	char err[1024];

	if (!store_second_connection(store))
		return NULL;
	same.schema_ready = 1; /* the first connection saw to it */
	second = open_configured_store(cfg, &same, err, sizeof(err));
	if (second == NULL)
		log_event(log, LOG_INFO, EV_STORAGE, -1,
			  "%s; outcomes go through the one connection", err);
	return second;
}

static int send_files(const struct options *o, const struct cfg *cfg,
		      struct log *log)
{
	char err[1024], owner_name[OWNER_MAX], url[1024];
	struct store_owner owner = {
		.name = owner_name,
		.reclaim = o->reclaim,
		.claim_lease = (long)cfg_uint(cfg, "store", "claim_lease"),
	};
	struct run_opts ro = { 0 };
	struct api_opts ao;
	struct store *store = NULL, *outcomes = NULL;
	struct api *api = NULL;
	struct report *report = NULL;
	struct run_stats st;
	struct progress progress;
	unsigned long conflicts;
	int rc;

	if (owner_make(owner_name, sizeof(owner_name), err, sizeof(err)) < 0) {
		log_error(log, "%s; nothing was sent", err);
		return early_json(o, EXIT_STORAGE, err);
	}
	api_options(cfg, &ao);
	if (log->level >= LOG_DEBUG) {
		ao.trace = api_trace;
		ao.trace_arg = log;
	}
	progress_init(&progress, stderr,
		      o->progress < 0 ? !o->quiet && isatty(STDERR_FILENO)
				      : o->progress);
	progress.resized = &resizes_seen;
	log->progress = &progress;
	ro.progress = &progress;
	ro.files = o->files;
	ro.nfiles = o->nfiles;
	ro.dry_run = o->dry_run;
	ro.wait = o->wait || cfg_bool(cfg, "store", "wait");
	ro.wait_poll_ms = 250;
	/* a claim held longer than its lease is one --reclaim may take:
	 * waiting longer for it would be waiting for a dead run */
	ro.wait_max_ms = (long)cfg_uint(cfg, "store", "claim_lease") * 1000 +
			 1000;
	ro.claim_batch = ao.concurrency * 4 < 64 ? 64 : ao.concurrency * 4;
	if (ro.claim_batch > CLAIM_BATCH_MAX)
		ro.claim_batch = CLAIM_BATCH_MAX;
	ro.claim_batch_max = CLAIM_BATCH_MAX;
	ro.slots = ao.concurrency;
	/*
	 * Outcomes wait at most flush_ms, and up to a full batch: each
	 * batch is a commit (with SQLite an fsync), and batches as small as
	 * the claim batches made them half the store's work at full speed.
	 */
	ro.outcome_batch = OUTCOME_BATCH;
	ro.flush_ms = 200;
	ro.dead_after = 10;
	url_mask(ao.url, url, sizeof(url));
	ro.api_url = url;
	ro.in_doubt_hold = ao.in_doubt_hold;
	ro.journal = cfg_str(cfg, "store", "journal");
	ro.signals = &signals_seen;
	ro.first_signal = &first_signal;
	ro.limit = o->limit;
	if (o->report &&
	    (report = report_open(o->report, err, sizeof(err))) == NULL) {
		log_error(log, "%s; nothing was sent", err);
		return EXIT_USAGE;
	}
	ro.report = report;
	if (!o->dry_run) {
		store = open_configured_store(cfg, &owner, err, sizeof(err));
		if (store == NULL) {
			log_error(log, "%s; nothing was sent", err);
			report_close(report);
			return early_json(o, EXIT_STORAGE, err);
		}
		rc = journal_first(ro.journal, store, log);
		if (rc != 0) {
			store_close(store);
			report_close(report);
			return early_json(o, rc,
					  "the journal holds answers not yet "
					  "recorded and could not be replayed: "
					  "see the message above");
		}
		api = api_new(&ao, err, sizeof(err));
		if (api == NULL) {
			log_error(log, "%s", err);
			store_close(store);
			report_close(report);
			return early_json(o, EXIT_STORAGE, err);
		}
	}
	if (store)
		outcomes = open_outcomes(store, cfg, &owner, log);
	run_files(&ro, api, store, outcomes, log, &st);
	log->progress = NULL;
	conflicts = store_conflicts(store) + store_conflicts(outcomes);
	if (conflicts)
		log_event(log, LOG_INFO, EV_STORAGE, -1,
			  "%s: %lu conflicts with other runs retried (claim "
			  "or outcome batches rolled back by the server: "
			  "deadlocks, or Galera certification failures)",
			  store_name(store), conflicts);
	api_free(api);
	store_close(outcomes);
	store_close(store);
	report_close(report);
	closing(o, &st, verdict(&st), ro.journal, ao.in_doubt_hold, log);
	return verdict(&st);
}

static void print_config(const struct cfg *cfg)
{
	const char *section = "";
	char env[128], shown[2048];
	size_t i;

	printf("; effective configuration: value ; origin (environment variable)\n");
	for (i = 0; i < cfg->n; i++) {
		const struct cfg_entry *e = &cfg->entries[i];
		int masked = e->key->type == CFG_SECRET && e->value[0];

		if (strcmp(section, e->key->section) != 0) {
			section = e->key->section;
			printf("%s[%s]\n", i ? "\n" : "", section);
		}
		cfg_env_name(e->key, env, sizeof(env));
		/* the API URL may carry a password or a token */
		if (e->key == cfg_find(cfg, "api", "url")->key)
			url_mask(e->value, shown, sizeof(shown));
		else
			snprintf(shown, sizeof(shown), "%s",
				 masked ? "********" : e->value);
		printf("%s = %s ; %s (%s)\n", e->key->name, shown, e->origin,
		       env);
	}
}

/* --status as one JSON object: the same as the text, keys of its own. */
static int status_json(const char *backend, const struct store_where *w,
		       size_t nw, const char *error,
		       const struct store_totals *t)
{
	json_t *o = json_object(), *where = json_object();
	size_t i;
	int rc = -1;

	if (o == NULL || where == NULL) {
		json_decref(o);
		json_decref(where);
		return -1;
	}
	json_object_set_new(o, "backend", json_string(backend));
	for (i = 0; i < nw; i++)
		json_object_set_new(where, w[i].name, json_string(w[i].value));
	json_object_set_new(o, "where", where);
	if (error) {
		json_object_set_new(o, "error", json_string(error));
		goto print;
	}
	json_object_set_new(o, "exists", json_boolean(!t->absent[0]));
	json_object_set_new(o, "records", json_integer(t->records));
	json_object_set_new(o, "done", json_integer(t->records - t->claimed));
	json_object_set_new(o, "delivered", json_integer(t->delivered));
	json_object_set_new(o, "not_delivered", json_integer(t->not_delivered));
	json_object_set_new(o, "rejected", json_integer(t->failed));
	json_object_set_new(o, "claimed", json_integer(t->claimed));
	json_object_set_new(o, "oldest_claim_age",
			    t->claimed > 0 && t->oldest_claim_age >= 0
				    ? json_integer(t->oldest_claim_age)
				    : json_null());
	json_object_set_new(o, "owner_unknown", json_integer(t->unowned));
print:
	if (json_dumpf(o, stdout, JSON_PRESERVE_ORDER) == 0 &&
	    fputc('\n', stdout) != EOF)
		rc = 0;
	json_decref(o);
	return rc;
}

static void status_text(const char *backend, const struct store_where *w,
			size_t nw, const struct store_totals *t)
{
	size_t i;

	printf("backend:          %s\n", backend);
	for (i = 0; i < nw; i++) {
		char label[40];

		snprintf(label, sizeof(label), "%s:", w[i].name);
		printf("%-17s %s\n", label, w[i].value);
	}
	if (t == NULL)
		return;
	if (t->absent[0])
		printf("(nothing recorded yet: %s)\n", t->absent);
	printf("records:          %lld\n", t->records);
	printf("done:             %lld\n", t->records - t->claimed);
	printf("  delivered:      %lld\n", t->delivered);
	printf("  not delivered:  %lld\n", t->not_delivered);
	printf("  rejected:       %lld\n", t->failed);
	printf("claimed:          %lld\n", t->claimed);
	if (t->claimed > 0 && t->oldest_claim_age >= 0)
		printf("oldest claim:     %lld s ago%s\n", t->oldest_claim_age,
		       t->oldest_claim_age > 3600
			       ? " (a killed run? see --reclaim)"
			       : "");
	else if (t->claimed > 0)
		printf("oldest claim:     unknown (this backend keeps no claim "
		       "time)\n");
	if (t->unowned > 0)
		printf("owner unknown:    %lld (claims made before owners were "
		       "kept: only --reclaim=all takes them)\n",
		       t->unowned);
}

/*
 * sender --status: where the store is and its records by state.  The
 * store is opened read-only: a database, table or collection that is not
 * there is reported as such, never created.
 */
static int status(const struct options *o, const struct cfg *cfg,
		  struct log *log)
{
	struct store_owner owner = { .name = "status", .read_only = 1 };
	const struct store_ops *ops = store_find(
		cfg_str(cfg, "store", "backend"));
	struct store_where where[STORE_WHERE_MAX];
	struct store_totals t;
	struct store *store;
	char err[1024];
	size_t nw;
	int rc;

	nw = store_where(ops, cfg, where, STORE_WHERE_MAX);
	memset(&t, 0, sizeof(t));
	store = store_open(ops, cfg, &owner, err, sizeof(err));
	rc = store ? store_totals(store, &t, err, sizeof(err)) : -1;
	store_close(store);
	/* where it looked comes first, also when it found nothing there */
	if (o->json)
		status_json(ops->name, where, nw, rc < 0 ? err : NULL, &t);
	else
		status_text(ops->name, where, nw, rc < 0 ? NULL : &t);
	if (rc < 0) {
		log_error(log, "%s", err);
		return EXIT_STORAGE;
	}
	return EXIT_DONE;
}

/* Apply a journal of answers to the configured store. */
static int replay(const struct options *o, const struct cfg *cfg,
		  struct log *log)
{
	struct store_owner owner = { .name = "replay" };
	struct journal_reader *j;
	struct store *store;
	unsigned long total = 0;
	char err[1024];
	int rc = EXIT_STORAGE;

	j = journal_open(o->replay, err, sizeof(err));
	if (j == NULL) {
		log_error(log, "%s", err);
		return EXIT_INPUT;
	}
	store = open_configured_store(cfg, &owner, err, sizeof(err));
	if (store == NULL) {
		log_error(log, "%s; the journal is kept", err);
		journal_close(j);
		return EXIT_STORAGE;
	}
	switch (journal_replay(j, store, &total, err, sizeof(err))) {
	case JOURNAL_REPLAYED:
		fprintf(stderr,
			"sender: replayed %lu answers from '%s' into %s; "
			"replaying it again changes nothing\n",
			total, o->replay, store_name(store));
		rc = EXIT_DONE;
		break;
	case JOURNAL_BAD:
		log_error(log, "%s", err);
		rc = EXIT_INPUT;
		break;
	case JOURNAL_STORE_FAILED:
		log_error(log, "%s; the journal is kept", err);
		rc = EXIT_STORAGE;
		break;
	}
	store_close(store);
	journal_close(j);
	return rc;
}

int main(int argc, char **argv)
{
	struct options o;
	struct cfg cfg = { 0 };
	struct log log;
	char err[1024];
	size_t n;
	int rc;

	/* First of all, so that a signal sent right after the start is
	 * counted and stops the run cleanly instead of killing it. */
	install_signals();
	rc = parse_options(argc, argv, &o);
	if (rc < 0)
		return -rc - 1;
	if (rc > 0) /* the message is out; --json, if seen, still answers */
		return early_json(&o, rc,
				  "usage error: see the message above and "
				  "'sender --help'");
	log_init(&log,
		 o.quiet ? LOG_ERROR
			 : (enum log_level)(LOG_WARN +
					    (o.verbose > 2 ? 2 : o.verbose)),
		 o.log_json, stderr);
	if (load_config(&o, &cfg, err, sizeof(err)) < 0) {
		log_error(&log, "%s; nothing was sent", err);
		cfg_release(&cfg);
		return early_json(&o, EXIT_USAGE, err);
	}
	n = cfg_unknown_env(&cfg, environ, err, sizeof(err));
	if (n)
		log_warn(&log,
			 "environment variable%s %s name%s no configuration "
			 "key and %s ignored (sender --print-config lists the "
			 "names)",
			 n > 1 ? "s" : "", err, n > 1 ? "" : "s",
			 n > 1 ? "are" : "is");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error(&log, "cannot initialise libcurl");
		cfg_release(&cfg);
		return EXIT_USAGE;
	}
	if (o.print_config) {
		print_config(&cfg);
		rc = EXIT_DONE;
	} else if (o.status) {
		rc = status(&o, &cfg, &log);
	} else if (o.replay) {
		rc = replay(&o, &cfg, &log);
	} else {
		rc = send_files(&o, &cfg, &log);
	}
	cfg_release(&cfg);
	curl_global_cleanup();
	return rc;
}
