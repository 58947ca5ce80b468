/*
 * message: the request body for one letter, as SPEC section 3 fixes it:
 * "id=<decimal>&message=<url-encoded JSON {"to": ..., "subject": ...}>".
 */
#ifndef SENDER_MESSAGE_H
#define SENDER_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

/*
 * The JSON object {"to": to, "subject": subject}, keys in that order, as
 * jansson writes it with JSON_PRESERVE_ORDER.  Returns a
 * string the caller frees with free(), or NULL when memory runs out or the
 * text is not valid UTF-8.
 */
char *message_json(const char *to, size_t to_len, const char *subject,
		   size_t subject_len);

/*
 * The whole form body for a letter, the JSON URL-encoded byte for byte as
 * curl_easy_escape() does it, in one allocation.  Returns a string the
 * caller frees with free() and its length in *len, or NULL with the reason
 * in err.
 */
char *message_form(uint32_t id, const char *to, size_t to_len,
		   const char *subject, size_t subject_len, size_t *len,
		   char *err, size_t errlen);

#endif
