/*
 * message: the request body for one letter, as SPEC section 3 fixes it:
 * "id=<decimal>&message=<url-encoded JSON {"to": ..., "subject": ...}>".
 */
#ifndef SENDER_MESSAGE_H
#define SENDER_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

struct buf;

/*
 * What encoding keeps from letter to letter: each byte's escape, made
 * once.  A letter costs no allocation of its own.  Read only once made:
 * threads may share one.
 */
struct message_coder;

/* NULL when memory runs out.  The caller frees with message_coder_free(). */
struct message_coder *message_coder_new(void);
void message_coder_free(struct message_coder *c);

/*
 * The whole form body for a letter appended to out, the JSON URL-encoded
 * byte for byte as curl_easy_escape() does it.  Returns 0, or -1 with the
 * reason in err and out as it was: the text is not valid UTF-8 or memory
 * ran out.
 */
int message_append(struct message_coder *c, uint32_t id, const char *to,
		   size_t to_len, const char *subject, size_t subject_len,
		   struct buf *out, char *err, size_t errlen);

/*
 * The JSON object {"to": to, "subject": subject}, keys in that order, as
 * jansson writes it with JSON_PRESERVE_ORDER.  Returns a
 * string the caller frees with free(), or NULL when memory runs out or the
 * text is not valid UTF-8.
 */
char *message_json(const char *to, size_t to_len, const char *subject,
		   size_t subject_len);

/*
 * message_append() into a string of its own, for a single letter: the
 * caller frees it with free(); its length in *len.  NULL with the reason
 * in err.
 */
char *message_form(uint32_t id, const char *to, size_t to_len,
		   const char *subject, size_t subject_len, size_t *len,
		   char *err, size_t errlen);

#endif
