#include "core_keys.h"

const struct cfg_key core_keys[] = {
	{ "api", "url", CFG_STRING, "http://test.webjet.pro/api.php", 0, 0,
	  "SENDER_API_URL", "where letters are POSTed" },
	{ "api", "timeout", CFG_SECONDS, "30", 0, 3600, NULL,
	  "seconds for one request" },
	{ "api", "concurrency", CFG_UINT, "32", 1, 1024, NULL,
	  "most requests in flight" },
	{ "retry", "max_attempts", CFG_UINT, "8", 1, 1000, NULL,
	  "POSTs per letter before it is deferred" },
	{ "retry", "base_delay_ms", CFG_UINT, "200", 1, 3600000, NULL,
	  "first backoff ceiling, doubled per attempt" },
	{ "retry", "max_delay_ms", CFG_UINT, "30000", 1, 3600000, NULL,
	  "largest backoff (Retry-After may ask for more)" },
	{ "store", "backend", CFG_STRING, "sqlite", 0, 0, NULL,
	  "where results are kept" },
	{ "store", "journal", CFG_STRING, "sender.journal", 0, 0, NULL,
	  "where answers go when the database fails" },
	{ "store", "claim_lease", CFG_UINT, "3600", 0, 31536000, NULL,
	  "seconds before --reclaim takes a claim of another host's run" },
	{ NULL, NULL, CFG_STRING, NULL, 0, 0, NULL, NULL },
};
