#include "reader.h"

#include "buf.h"
#include "text.h"

#include <errno.h>
#include <fcntl.h>
#include <libxml/entities.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/xmlreader.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Bytes kept of what libxml2's input layer says: its first line. */
#define IO_ERROR_MAX 255

enum field { FIELD_NONE, FIELD_TO, FIELD_SUBJECT };

struct reader {
	xmlTextReaderPtr xml;
	char *name;
	int fd; /* our own descriptor, or -1 for standard input */
	enum reader_status
		final;	     /* READER_END/ERROR once reached, else LETTER */
	char error[512];     /* first fatal parser error, if any */
	struct buf io_error; /* what libxml2's input layer said, if any */
	int io_failed;
	long long bytes_read; /* from the input, for "the input is empty" */

	/* The letter being assembled. */
	enum field collecting;
	long line;
	char *id_text; /* owned if id_owned (xmlGetNoNsProp()), else in the tree */
	int id_owned;
	int seen_to, seen_subject, twice, id_bad;
	struct buf to, subject;

	/*
	 * After a fatal error, the letters the parser had already built but
	 * not yet handed out: the next root child to look at.
	 */
	xmlNodePtr salvage;
	int salvaging;
	xmlDocPtr doc; /* owned once taken from the reader, else NULL */

	/*
	 * Where the parser stopped: the root element, the <email> (or other
	 * root child) that the first fatal error left open, if cut_known,
	 * and the <email> being expanded when the error came, if any.
	 */
	xmlNodePtr root, cut, expanding;
	int cut_known;
};

/*
 * Nothing is ever loaded from outside the document: not a DTD, not an
 * external entity, whatever the URL.  libxml2's hook is process-wide, so it
 * is installed once, before the first reader.
 */
static xmlParserInputPtr refuse_external_entity(const char *url, const char *id,
						xmlParserCtxtPtr ctxt)
{
	(void)url;
	(void)id;
	(void)ctxt;
	return NULL;
}

/*
 * libxml2's input layer (a byte that the declared encoding cannot convert,
 * a read error) reports to a process-wide handler, not to the reader's: the
 * message would go to stderr as it is, and with some iconv encodings the
 * parse even goes on without the bytes.  The reader being read notes it,
 * and reading stops there.
 */
static _Thread_local struct reader *reading;

static void on_generic_error(void *ctx, const char *fmt, ...)
{
	struct reader *r = reading;
	va_list ap;

	(void)ctx;
	if (r == NULL)
		return;
	r->io_failed = 1;
	/* a message may come in pieces: keep them up to its newline */
	if (memchr(buf_str(&r->io_error), '\n', r->io_error.len) != NULL)
		return;
	va_start(ap, fmt);
	buf_vaddf(&r->io_error, fmt, ap);
	va_end(ap);
}

static void reader_global_init(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	xmlInitParser();
	xmlSetExternalEntityLoader(refuse_external_entity);
	xmlSetGenericErrorFunc(NULL, on_generic_error);
}

/* libxml2 messages end in a newline and may hold more: make one line. */
static void one_line(char *s)
{
	size_t n;

	for (n = 0; s[n]; n++)
		if (s[n] == '\n' || s[n] == '\r')
			s[n] = ' ';
	while (n > 0 && s[n - 1] == ' ')
		s[--n] = '\0';
}

/*
 * Note which child of the root the first fatal error of the document's own
 * parser left open: the letters before it are complete, that one is not.
 * (The parsers libxml2 starts for an entity's text read no file.)
 */
static void note_cut(struct reader *r, xmlErrorPtr e)
{
	xmlParserCtxtPtr ctxt = e->ctxt;

	if (r->cut_known || e->domain != XML_FROM_PARSER || ctxt == NULL ||
	    e->file == NULL || strcmp(e->file, r->name) != 0 ||
	    (ctxt->nodeNr > 0 && ctxt->nodeTab == NULL) ||
	    (r->root && (ctxt->nodeNr < 1 || ctxt->nodeTab[0] != r->root)))
		return;
	r->cut = ctxt->nodeNr >= 2 ? ctxt->nodeTab[1] : NULL;
	r->cut_known = 1;
}

/* Keep the first fatal error; warnings and recoverable errors are ignored. */
static void on_xml_error(void *arg, xmlErrorPtr e)
{
	struct reader *r = arg;

	int line = e ? e->line : 0, col = e ? e->int2 : 0;
	/*
	 * An entity that is not declared is only a warning when the document
	 * has an external DTD (never loaded) or parameter entities: its text
	 * would silently vanish from the letter.  Stop there instead.
	 */
	int undeclared = e && e->code == XML_WAR_UNDECLARED_ENTITY;
	/*
	 * A text node over libxml2's limit (XML_MAX_TEXT_LENGTH without
	 * XML_PARSE_HUGE, which we do not set) stops the parser with a mere
	 * error that says "Memory allocation failed": name the real cause.
	 */
	int huge = e && e->code == XML_ERR_NO_MEMORY && e->message &&
		   strstr(e->message, "huge") != NULL;
	_Static_assert(XML_MAX_TEXT_LENGTH == 10000000 &&
			       READER_SUBJECT_MAX == 65536,
		       "the 'huge' message below spells both limits out");

	if (e == NULL || (e->level < XML_ERR_FATAL && !undeclared && !huge))
		return;
	if (undeclared && e->ctxt)
		xmlStopParser(e->ctxt);
	note_cut(r, e);
	if (r->error[0])
		return;
	/* Errors inside an entity's text carry the entity's own position. */
	if (e->file == NULL || strcmp(e->file, r->name) != 0) {
		line = xmlTextReaderGetParserLineNumber(r->xml);
		col = xmlTextReaderGetParserColumnNumber(r->xml);
	}
	/*
	 * Empty input (a file truncated to nothing, an empty pipe): libxml2's
	 * reader calls it "Extra content at the end of the document".
	 */
	if (e->code == XML_ERR_DOCUMENT_END && r->root == NULL &&
	    r->bytes_read == 0) {
		snprintf(r->error, sizeof(r->error),
			 "%s: the input is empty (no XML document at all)",
			 r->name);
		return;
	}
	snprintf(r->error, sizeof(r->error), "%s:%d:%d: %s", r->name, line, col,
		 huge	      ? "a text longer than the XML reader's limit of "
				"10,000,000 bytes (a subject may have 65,536)"
		 : e->message ? e->message
			      : "XML error");
	one_line(r->error);
}

/*
 * libxml2's input: read(2) of our descriptor (or standard input), counting
 * the bytes, so that an empty pipe can be told from one whose first bytes
 * are not XML.
 */
static int read_input(void *ctx, char *buf, int len)
{
	struct reader *r = ctx;
	ssize_t n;

	do
		n = read(r->fd >= 0 ? r->fd : 0, buf, (size_t)len);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		r->io_failed = 1;
		buf_addf(&r->io_error, "read error: %s", strerror(errno));
		return -1;
	}
	r->bytes_read += n;
	return (int)n;
}

struct reader *reader_open(const char *path, char *err, size_t errlen)
{
	const int options = XML_PARSE_NOENT | XML_PARSE_NONET |
			    XML_PARSE_NOCDATA | XML_PARSE_BIG_LINES;
	struct reader *r = NULL;
	int stdin_input = strcmp(path, "-") == 0;
	struct stat sb;

	reader_global_init();
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		goto nomem;
	r->fd = -1;
	r->name = strdup(stdin_input ? "<stdin>" : path);
	if (r->name == NULL)
		goto nomem;
	/* the text goes in trimmed (append_trimmed): the caps are on what
	 * is sent */
	buf_init(&r->to, READER_TO_MAX);
	buf_init(&r->subject, READER_SUBJECT_MAX);
	buf_init(&r->io_error, IO_ERROR_MAX);
	if (!stdin_input) {
		r->fd = open(path, O_RDONLY | O_CLOEXEC);
		if (r->fd < 0) {
			snprintf(err, errlen, "cannot open '%s': %s", path,
				 strerror(errno));
			goto fail;
		}
		if (fstat(r->fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			snprintf(err, errlen,
				 "'%s' is a directory, not an XML file", path);
			goto fail;
		}
		if (fstat(r->fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
		    sb.st_size == 0) {
			snprintf(err, errlen,
				 "'%s' is empty (no XML document at all)",
				 path);
			goto fail;
		}
	}
	r->xml = xmlReaderForIO(read_input, NULL, r, r->name, NULL, options);
	if (r->xml == NULL) {
		snprintf(err, errlen, "cannot read '%s'", r->name);
		goto fail;
	}
	xmlTextReaderSetStructuredErrorHandler(r->xml, on_xml_error, r);
	return r;
nomem:
	snprintf(err, errlen, "out of memory");
fail:
	reader_free(r);
	return NULL;
}

void reader_free(struct reader *r)
{
	if (r == NULL)
		return;
	if (r->xml)
		xmlFreeTextReader(r->xml);
	if (r->doc)
		xmlFreeDoc(r->doc);
	if (r->fd >= 0)
		close(r->fd);
	if (r->id_owned)
		xmlFree(r->id_text);
	buf_release(&r->to);
	buf_release(&r->subject);
	buf_release(&r->io_error);
	free(r->name);
	free(r);
}

const char *reader_name(const struct reader *r)
{
	return r->name;
}

long reader_offset(const struct reader *r)
{
	/* libxml2 says -1 after some errors in iconv encodings (UTF-7) */
	long n = r->xml ? xmlTextReaderByteConsumed(r->xml) : 0;

	return n > 0 ? n : 0;
}

/*
 * Refuse a document whose DTD declares any external entity.  The DTD is
 * reached through the current node: xmlTextReaderCurrentDoc() would make
 * the reader keep the whole document in memory.
 */
static int check_entities(struct reader *r)
{
	xmlNodePtr dtd = xmlTextReaderCurrentNode(r->xml);
	xmlNodePtr n;

	if (dtd == NULL || dtd->type != XML_DTD_NODE)
		return 0;
	for (n = dtd->children; n; n = n->next) {
		xmlEntityPtr e = (xmlEntityPtr)n;

		if (n->type != XML_ENTITY_DECL)
			continue;
		if (e->etype == XML_INTERNAL_GENERAL_ENTITY ||
		    e->etype == XML_INTERNAL_PARAMETER_ENTITY ||
		    e->etype == XML_INTERNAL_PREDEFINED_ENTITY)
			continue;
		snprintf(r->error, sizeof(r->error),
			 "%s:%d:%d: external entity '%s' refused: letters may "
			 "not load files or URLs",
			 r->name, xmlTextReaderGetParserLineNumber(r->xml),
			 xmlTextReaderGetParserColumnNumber(r->xml),
			 (const char *)e->name);
		return -1;
	}
	return 0;
}

/*
 * The line of an element's start tag.  libxml2 keeps 16 bits of it in the
 * node; past 65534 only text nodes know their line (XML_PARSE_BIG_LINES),
 * and it is the line where the text ends: the first text inside counts
 * back over its own newlines.
 */
static long start_line(xmlNodePtr e)
{
	xmlNodePtr t = e->children;
	const xmlChar *p;
	long line;

	if (e->line < 65535)
		return e->line;
	while (t && t->type == XML_ELEMENT_NODE && t->line == 65535)
		t = t->children;
	if (t == NULL || t->type != XML_TEXT_NODE || t->psvi == NULL)
		return xmlGetLineNo(e);
	line = (long)(ptrdiff_t)t->psvi;
	for (p = t->content; p && *p; p++)
		line -= *p == '\n';
	/*
	 * The line is that of the end of the first piece the parser gave the
	 * text: a text of 300 bytes or more that the parser split counts back
	 * too far.  It is at least 65535 all the same.
	 */
	return line < 65535 ? 65535 : line;
}

static void reset_letter(struct reader *r, xmlNodePtr email, char *id_text,
			 int id_owned)
{
	r->collecting = FIELD_NONE;
	r->seen_to = r->seen_subject = r->twice = r->id_bad = 0;
	buf_reset(&r->to);
	buf_reset(&r->subject);
	r->line = email ? start_line(email) : -1;
	if (r->line <= 0)
		r->line = xmlTextReaderGetParserLineNumber(r->xml);
	if (r->id_owned)
		xmlFree(r->id_text);
	r->id_text = id_text;
	r->id_owned = id_owned;
}

static void start_field(struct reader *r, const char *name, int empty)
{
	int *seen;

	if (strcmp(name, "to") == 0) {
		r->collecting = FIELD_TO;
		seen = &r->seen_to;
	} else if (strcmp(name, "subject") == 0) {
		r->collecting = FIELD_SUBJECT;
		seen = &r->seen_subject;
	} else {
		return;
	}
	if (*seen)
		r->twice = 1;
	*seen = 1;
	if (empty)
		r->collecting = FIELD_NONE;
}

/*
 * Strict UTF-8 (text_utf8_seq()): libxml2 2.9 lets overlong forms through
 * in CDATA sections.
 */
static int utf8_valid(const unsigned char *s, size_t n)
{
	size_t i, k;

	for (i = 0; i < n; i += k)
		if ((k = text_utf8_next(s + i, n - i)) == 0)
			return 0;
	return 1;
}

/* Decide whether the letter just closed is valid; fill out or msg. */
static enum reader_status finish_email(struct reader *r, struct letter *out,
				       char *msg, size_t msglen)
{
	char why[160];
	const char *problem = NULL;
	uint32_t id = 0;

	r->collecting = FIELD_NONE;
	if (r->id_text == NULL)
		problem = "letter has no id attribute";
	else if (text_parse_id(r->id_text, &id, why, sizeof(why)) < 0) {
		problem = why;
		r->id_bad = 1;
	} else if (!r->seen_to || r->to.len == 0)
		problem = "letter has no <to> address";
	else if (!r->seen_subject)
		problem = "letter has no <subject>";
	else if (r->twice)
		problem = "letter has more than one <to> or <subject>";
	else if (r->to.truncated || r->to.len > READER_TO_MAX) {
		snprintf(why, sizeof(why), "<to> is longer than %d bytes",
			 READER_TO_MAX);
		problem = why;
	} else if (r->subject.truncated ||
		   r->subject.len > READER_SUBJECT_MAX) {
		snprintf(why, sizeof(why), "<subject> is longer than %d bytes",
			 READER_SUBJECT_MAX);
		problem = why;
	} else if (!utf8_valid((const unsigned char *)r->to.data, r->to.len) ||
		   !utf8_valid((const unsigned char *)r->subject.data,
			       r->subject.len)) {
		problem = "<to> or <subject> is not valid UTF-8";
	}
	if (problem) {
		if (r->id_text && !r->id_bad)
			snprintf(msg, msglen, "%s:%ld: id %.40s: %s; not sent",
				 r->name, r->line, r->id_text, problem);
		else
			snprintf(msg, msglen, "%s:%ld: %s; not sent", r->name,
				 r->line, problem);
		return READER_INVALID;
	}
	out->id = id;
	out->to = buf_str(&r->to);
	out->to_len = r->to.len;
	out->subject = buf_str(&r->subject);
	out->subject_len = r->subject.len;
	out->line = r->line;
	return READER_LETTER;
}

static enum reader_status stop(struct reader *r, enum reader_status status,
			       char *msg, size_t msglen)
{
	r->final = status;
	r->salvaging = 0;
	if (status == READER_ERROR) {
		if (!r->error[0] && r->io_error.len) {
			snprintf(r->error, sizeof(r->error), "%s:%d:%d: %s",
				 r->name,
				 xmlTextReaderGetParserLineNumber(r->xml),
				 xmlTextReaderGetParserColumnNumber(r->xml),
				 buf_str(&r->io_error));
			one_line(r->error);
		}
		if (!r->error[0])
			snprintf(r->error, sizeof(r->error),
				 "%s:%d:%d: XML is not well formed", r->name,
				 xmlTextReaderGetParserLineNumber(r->xml),
				 xmlTextReaderGetParserColumnNumber(r->xml));
		snprintf(msg, msglen, "%s", r->error);
	}
	return status;
}

static void collect_from_tree(struct reader *r, xmlNodePtr email);

/*
 * Handle one node; returns READER_END to mean "keep reading".  An <email>
 * is expanded whole (one letter in memory at a time) and read from the
 * tree, so that a letter is never half read when the parser fails; the
 * reader then walks through its nodes, which are ignored.
 */
static enum reader_status on_node(struct reader *r, struct letter *out,
				  char *msg, size_t msglen)
{
	int type = xmlTextReaderNodeType(r->xml);
	int depth = xmlTextReaderDepth(r->xml);
	xmlNodePtr email;

	switch (type) {
	case XML_READER_TYPE_DOCUMENT_TYPE:
		if (check_entities(r) < 0)
			return READER_ERROR;
		break;
	case XML_READER_TYPE_ELEMENT:
		if (depth == 0)
			r->root = xmlTextReaderCurrentNode(r->xml);
		if (depth != 1 ||
		    strcmp((const char *)xmlTextReaderConstLocalName(r->xml),
			   "email") != 0)
			break;
		r->expanding = xmlTextReaderCurrentNode(r->xml);
		email = xmlTextReaderExpand(r->xml);
		if (email == NULL) /* reader_next() salvages from here */
			break;
		r->expanding = NULL;
		collect_from_tree(r, email);
		return finish_email(r, out, msg, msglen);
	default: break;
	}
	return READER_END;
}

/*
 * libxml2 parses ahead of the nodes it hands out, and a fatal error ends
 * xmlTextReaderRead() at once; the complete letters between the last one
 * handed out and the error are still in the partial tree.  An <email> is
 * complete unless it is the one the error left open (or, when that is not
 * known, while the parser has attached no node after it).
 */
static void salvage_start(struct reader *r)
{
	xmlNodePtr n = xmlTextReaderCurrentNode(r->xml);

	r->salvaging = 1;
	r->salvage = NULL;
	if (r->expanding) {
		r->salvage = r->expanding;
		return;
	}
	if (n == NULL) { /* failed before the first node was handed out */
		/* the reader leaves this document to us from now on */
		r->doc = xmlTextReaderCurrentDoc(r->xml);
		n = xmlDocGetRootElement(r->doc);
		r->salvage = n ? n->children : NULL;
		return;
	}
	if (n->parent == NULL)
		return;
	if (n->parent->type == XML_DOCUMENT_NODE) { /* still at the root */
		r->salvage = n->children;
		return;
	}
	while (n->parent->parent &&
	       n->parent->parent->type != XML_DOCUMENT_NODE)
		n = n->parent;
	r->salvage = n->next;
}

/* Whitespace around the text does not count against the cap. */
static void append_trimmed(struct buf *b, const char *s)
{
	size_t n = strlen(s);

	text_trim(&s, &n);
	buf_append(b, s, n);
}

/*
 * The text of a node whose only child is one text node, as it is in the
 * tree (no copy), else NULL.  That is the usual letter: the parser joins
 * the text, the predefined and character references and (with
 * XML_PARSE_NOCDATA) CDATA sections around them into one node.  What it
 * does not join goes through libxml2's copying calls, which concatenate.
 */
static const char *only_text(xmlNodePtr n)
{
	xmlNodePtr t = n->children;

	if (t == NULL || t->next != NULL || t->type != XML_TEXT_NODE ||
	    t->content == NULL)
		return NULL;
	return (const char *)t->content;
}

/*
 * Attribute id, not x:id of some namespace (nor the first of the two):
 * what xmlGetNoNsProp() finds, without its copy when the value is a plain
 * text in the tree.  Sets *owned when the caller must xmlFree() it.
 */
static char *email_id(xmlNodePtr email, int *owned)
{
	xmlAttrPtr a;
	const char *text;

	*owned = 0;
	for (a = email->properties; a; a = a->next) {
		if (a->ns != NULL || strcmp((const char *)a->name, "id") != 0)
			continue;
		text = only_text((xmlNodePtr)a);
		if (text)
			return (char *)text;
		break;
	}
	/* a value made of several nodes, or a default from the DTD */
	*owned = 1;
	return (char *)xmlGetNoNsProp(email, BAD_CAST "id");
}

static void collect_from_tree(struct reader *r, xmlNodePtr email)
{
	xmlNodePtr c;
	int owned;
	char *id = email_id(email, &owned);

	reset_letter(r, email, id, owned);
	for (c = email->children; c; c = c->next) {
		struct buf *field;
		const char *text;
		xmlChar *copy;

		if (c->type != XML_ELEMENT_NODE)
			continue;
		start_field(r, (const char *)c->name, c->children == NULL);
		if (r->collecting == FIELD_NONE)
			continue;
		field = r->collecting == FIELD_TO ? &r->to : &r->subject;
		r->collecting = FIELD_NONE;
		text = only_text(c);
		if (text) {
			append_trimmed(field, text);
			continue;
		}
		copy = xmlNodeGetContent(c);
		if (copy)
			append_trimmed(field, (const char *)copy);
		xmlFree(copy);
	}
}

static enum reader_status salvage_next(struct reader *r, struct letter *out,
				       char *msg, size_t msglen)
{
	xmlNodePtr n;

	while ((n = r->salvage) != NULL &&
	       (r->cut_known ? n != r->cut : n->next != NULL)) {
		r->salvage = n->next;
		if (n->type != XML_ELEMENT_NODE ||
		    strcmp((const char *)n->name, "email") != 0)
			continue;
		collect_from_tree(r, n);
		return finish_email(r, out, msg, msglen);
	}
	r->salvage = NULL;
	return stop(r, READER_ERROR, msg, msglen);
}

static enum reader_status read_on(struct reader *r, struct letter *out,
				  char *msg, size_t msglen)
{
	enum reader_status status;
	int ret;

	if (r->salvaging)
		return salvage_next(r, out, msg, msglen);
	if (r->final == READER_END || r->final == READER_ERROR)
		return stop(r, r->final, msg, msglen);
	/*
	 * The parser runs ahead of the nodes handed out, so an error may be
	 * known before the letters that precede it: those are still read.
	 */
	while ((ret = xmlTextReaderRead(r->xml)) == 1 && !r->io_failed) {
		status = on_node(r, out, msg, msglen);
		if (status == READER_ERROR) /* refused before any letter */
			return stop(r, READER_ERROR, msg, msglen);
		if (status != READER_END)
			return status;
		/*
		 * The parser failed inside this letter: read no further, the
		 * reader would walk (and free) the nodes salvage looks at.
		 */
		if (r->expanding || r->io_failed) {
			ret = -1;
			break;
		}
	}
	if (ret < 0 || r->io_failed) {
		salvage_start(r);
		return salvage_next(r, out, msg, msglen);
	}
	return stop(r, READER_END, msg, msglen);
}

enum reader_status reader_next(struct reader *r, struct letter *out, char *msg,
			       size_t msglen)
{
	enum reader_status status;

	reading = r;
	status = read_on(r, out, msg, msglen);
	reading = NULL;
	return status;
}
