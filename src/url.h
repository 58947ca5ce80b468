/*
 * url: the API URL checked before anything is claimed, and masked
 * wherever it is shown.
 */
#ifndef SENDER_URL_H
#define SENDER_URL_H

#include <stddef.h>

/*
 * 0 when url parses (libcurl's URL API) as an http or https URL with a
 * host; else -1 with the reason in err (the URL itself is not repeated).
 */
int url_check(const char *url, char *err, size_t errlen);

/*
 * url with its userinfo and its query (and fragment) replaced by "***"
 * ("user:pw@host/api?token=x" becomes "***@host/api?***"), into out
 * (always NUL-terminated).
 * Works on any text, parsable or not, so that even a bad URL is shown
 * without its secrets.
 */
void url_mask(const char *url, char *out, size_t outlen);

#endif
