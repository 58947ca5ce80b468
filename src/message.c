#include "message.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *message_json(const char *to, size_t to_len, const char *subject,
		   size_t subject_len)
{
	json_t *obj = json_object();
	json_t *jto = json_stringn(to, to_len);
	json_t *jsubject = json_stringn(subject, subject_len);
	char *text = NULL;

	if (obj == NULL || jto == NULL || jsubject == NULL)
		goto out;
	/* set_new takes the references, even when it fails */
	if (json_object_set_new(obj, "to", jto) < 0) {
		jto = NULL;
		goto out;
	}
	jto = NULL;
	if (json_object_set_new(obj, "subject", jsubject) < 0) {
		jsubject = NULL;
		goto out;
	}
	jsubject = NULL;
	text = json_dumps(obj, JSON_PRESERVE_ORDER);
out:
	json_decref(jto);
	json_decref(jsubject);
	json_decref(obj);
	return text;
}

char *message_form(uint32_t id, const char *to, size_t to_len,
		   const char *subject, size_t subject_len, size_t *len,
		   char *err, size_t errlen)
{
	char *json = NULL, *escaped = NULL, *form = NULL;
	size_t need;
	int n;

	json = message_json(to, to_len, subject, subject_len);
	if (json == NULL) {
		snprintf(err, errlen,
			 "cannot encode letter %" PRIu32
			 " as JSON (invalid UTF-8?)",
			 id);
		goto out;
	}
	escaped = curl_easy_escape(NULL, json, (int)strlen(json));
	if (escaped == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	need = strlen(escaped) + sizeof("id=4294967295&message=");
	form = malloc(need);
	if (form == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	n = snprintf(form, need, "id=%" PRIu32 "&message=%s", id, escaped);
	*len = (size_t)n;
out:
	free(json);
	curl_free(escaped);
	return form;
}
