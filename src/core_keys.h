/*
 * core_keys: the configuration keys of the core, [api], [retry] and
 * [store], with their defaults, ranges, environment variables and help.
 *
 * One table, read by sender.c and checked by tests/fuzz/fuzz_config.c, so
 * that the fuzzer always sees the keys the program has.  Each storage
 * backend declares its own section beside its code (store_ops.keys).
 */
#ifndef SENDER_CORE_KEYS_H
#define SENDER_CORE_KEYS_H

#include "cfg.h"

/* Static storage; ends with an entry whose name is NULL, for cfg_init(). */
extern const struct cfg_key core_keys[];

#endif
