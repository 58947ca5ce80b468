#include "url.h"

#include <curl/curl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int url_check(const char *url, char *err, size_t errlen)
{
	CURLU *h = curl_url();
	char *scheme = NULL, *host = NULL;
	const char *after_scheme;
	CURLUcode rc;
	int ok = -1;

	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (url[0] == '\0') {
		snprintf(err, errlen, "it is empty");
		goto out;
	}
	/*
	 * No default scheme: "host/api" is a mistake, not a guess to make.
	 * Any scheme parses here, so that the message can name it.
	 */
	rc = curl_url_set(h, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (rc != CURLUE_OK) {
		snprintf(err, errlen, "it is not a URL (%s)",
			 curl_url_strerror(rc));
		goto out;
	}
	if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    (strcasecmp(scheme, "http") != 0 &&
	     strcasecmp(scheme, "https") != 0)) {
		snprintf(err, errlen,
			 "its scheme is '%.20s'; only http and https are "
			 "allowed",
			 scheme ? scheme : "");
		goto out;
	}
	/*
	 * libcurl reads "http:/host" and "http:///host" as "http://host/"
	 * (as browsers do): a slash too few or too many is a typo, and the
	 * host it finds may not be the one meant.
	 */
	after_scheme = url + strlen(scheme);
	if (strncmp(after_scheme, "://", 3) != 0 || after_scheme[3] == '/' ||
	    after_scheme[3] == '\\') {
		snprintf(err, errlen,
			 "it is not a URL (the host must follow '%.20s://', "
			 "with two slashes)",
			 scheme);
		goto out;
	}
	if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    host[0] == '\0') {
		snprintf(err, errlen, "it names no host");
		goto out;
	}
	ok = 0;
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(h);
	return ok;
}

/* Append n bytes of s to out at *o, keeping room for the NUL. */
static void put(char *out, size_t outlen, size_t *o, const char *s, size_t n)
{
	if (*o + 1 >= outlen)
		return;
	if (n > outlen - 1 - *o)
		n = outlen - 1 - *o;
	memcpy(out + *o, s, n);
	*o += n;
	out[*o] = '\0';
}

/*
 * Plain text work, not libcurl's parser, so that any text is masked, URL
 * or not.  The userinfo is everything up to the last '@' before the path
 * (a password may hold '?' or '#' when it is not encoded); the query is
 * everything from the first '?' or '#' after it, or everything after the
 * userinfo if one began inside it.  In doubt, more is masked.
 */
void url_mask(const char *url, char *out, size_t outlen)
{
	const char *sep = strstr(url, "://");
	const char *auth, *auth_end, *at = NULL, *p, *query;
	size_t o = 0;

	if (outlen == 0)
		return;
	out[0] = '\0';
	/* a "://" inside a query or fragment is not a scheme's */
	if (sep && (size_t)(sep - url) > strcspn(url, "?#"))
		sep = NULL;
	auth = sep ? sep + 3 : url;
	auth_end = auth + strcspn(auth, "/");
	for (p = auth; p < auth_end; p++)
		if (*p == '@')
			at = p;
	put(out, outlen, &o, url, (size_t)(auth - url));
	if (at) {
		put(out, outlen, &o, "***@", strlen("***@"));
		/* a query or fragment began inside it: all the rest is one */
		for (p = auth; p < at && *p != '?' && *p != '#'; p++)
			;
		if (p < at) {
			put(out, outlen, &o, *p == '?' ? "?***" : "#***",
			    strlen("?***"));
			return;
		}
		auth = at + 1;
	}
	query = auth + strcspn(auth, "?#");
	put(out, outlen, &o, auth, (size_t)(query - auth));
	if (*query)
		put(out, outlen, &o, *query == '?' ? "?***" : "#***",
		    strlen("?***"));
}
