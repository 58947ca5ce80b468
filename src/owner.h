/*
 * owner: the name a run writes into its claims, and what --reclaim reads
 * back from one.
 *
 * An owner is "host:pid:start:random": the host name, the process id, its
 * start in seconds since the epoch, and 64 random bits in 16 hex digits
 * from getrandom().  The random part keeps two runs apart that share the
 * rest (containers with the same hostname, each sender as pid 1, started
 * in the same second).  Records written before it existed hold
 * "host:pid:start"; both forms parse.
 */
#ifndef SENDER_OWNER_H
#define SENDER_OWNER_H

#include <stddef.h>

/* Room for any owner: a host name of 255 bytes and the numbers. */
#define OWNER_MAX 320

/* An owner taken apart. */
struct owner_id {
	char host[256];
	long pid;
	long long start; /* seconds since the epoch */
	int has_random;	 /* the 4-field form */
	char random[17]; /* its 16 hex digits, or "" */
};

/*
 * This run's owner into out (OWNER_MAX bytes will do): 0, or -1 and err
 * (out too small, no random bytes).  Each call draws a new random part.
 */
int owner_make(char *out, size_t len, char *err, size_t errlen);

/*
 * Take text apart: 0 for "host:pid:start" or "host:pid:start:random"
 * (16 hex digits), -1 for anything else (NULL, "status", garbage).
 */
int owner_parse(const char *text, struct owner_id *out);

/*
 * When process pid of this host started, in seconds since the epoch
 * (field 22 of /proc/PID/stat, starttime, plus the boot time); -1 if
 * there is no such process or it is a zombie.
 */
long long owner_process_start(long pid);

/*
 * Whether the run named by o, which ran on this host, is gone: its
 * process does not exist, or the pid now belongs to a process that
 * started at another time (a reused pid).
 */
int owner_gone_here(const struct owner_id *o);

#endif
