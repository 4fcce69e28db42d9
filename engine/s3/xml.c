/*
 * XML answers (see s3/xml.h): expat's events made into a flat list of
 * (path, text) pairs, which is all an AWS answer needs: no tree, and
 * nothing kept of attributes.  The answer is whole in memory, bounded by
 * the transport (s3/http.c) before it gets here.  It comes from outside,
 * so its size, depth, number of elements and the bytes kept of it are
 * bounded here too (s3/xml.h), and a DOCTYPE (entities) is refused: the
 * parse stops at the first bound passed, memory linear in the answer.
 */
#define _POSIX_C_SOURCE 200809L

#include "s3/xml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <expat.h>

void xml_free(struct xml_doc *d)
{
	size_t i;

	for (i = 0; i < d->n; i++) {
		free(d->v[i].path);
		free(d->v[i].text);
	}
	free(d->v);
	vk_buf_free(&d->path);
	vk_buf_free(&d->text);
	memset(d, 0, sizeof *d);
}

/* Why the answer is refused, unless that is said already. */
static void say(struct xml_doc *d, const char *fmt, ...)
{
	va_list ap;

	if (d->err[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(d->err, sizeof d->err, fmt, ap);
	va_end(ap);
}

/* Stop the parse: the answer is refused, for the reason given. */
#define refuse(d, ...) \
	do { \
		say((d), __VA_ARGS__); \
		XML_StopParser((d)->parser, XML_FALSE); \
	} while (0)

static void text_clear(struct xml_doc *d)
{
	d->text.len = 0;
	if (d->text.p)
		d->text.p[0] = '\0';
}

static void XMLCALL on_start(void *ud, const XML_Char *name,
                             const XML_Char **attrs)
{
	struct xml_doc *d = ud;

	(void)attrs;
	if (d->err[0] != '\0')
		return; /* refused: expat may still call */
	if (d->depth >= XML_MAX_DEPTH) {
		refuse(d, "the server's answer nests deeper than %d elements: "
		       "not an S3 answer", XML_MAX_DEPTH);
		return;
	}
	if (++d->elements > XML_MAX_ELEMENTS) {
		refuse(d, "the server's answer has more than %d elements: "
		       "not an S3 answer", XML_MAX_ELEMENTS);
		return;
	}
	d->depth++;
	if (d->path.len == 0)
		snprintf(d->root, sizeof d->root, "%s", name);
	if (vk_buf_printf(&d->path, "/%s", name) != 0)
		refuse(d, "the answer is not read: out of memory");
	text_clear(d);
}

static void XMLCALL on_chars(void *ud, const XML_Char *s, int len)
{
	struct xml_doc *d = ud;

	if (d->err[0] == '\0' && vk_buf_add(&d->text, s, (size_t)len) != 0)
		refuse(d, "the answer is not read: out of memory");
}

/* An S3 answer has no DOCTYPE, and a DOCTYPE's entities could expand an
 * answer far beyond its size. */
static void XMLCALL on_doctype(void *ud, const XML_Char *name,
                               const XML_Char *sysid, const XML_Char *pubid,
                               int internal)
{
	struct xml_doc *d = ud;

	(void)name;
	(void)sysid;
	(void)pubid;
	(void)internal;
	refuse(d, "the server's answer has a DOCTYPE: not an S3 answer");
}

/* Keep the element that closed, with its text; 0 or -1 (out of memory). */
static int keep(struct xml_doc *d)
{
	struct xml_node *node;
	size_t plen = d->path.len, tlen = d->text.len;

	if (plen + tlen + 2 > XML_MAX_KEPT - d->kept) {
		refuse(d, "the server's answer holds more than %d MiB of "
		       "elements: not an S3 answer", XML_MAX_KEPT >> 20);
		return 0;
	}
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 32;
		struct xml_node *v = realloc(d->v, cap * sizeof *v);
		if (v == NULL)
			return -1;
		d->v = v;
		d->cap = cap;
	}
	node = &d->v[d->n];
	node->path = strdup(d->path.p ? d->path.p : "");
	node->text = strdup(d->text.p ? d->text.p : "");
	if (node->path == NULL || node->text == NULL) {
		free(node->path);
		free(node->text);
		return -1;
	}
	d->kept += plen + tlen + 2;
	d->n++;
	return 0;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct xml_doc *d = ud;
	char *slash;

	(void)name;
	if (d->err[0] != '\0')
		return;
	if (keep(d) != 0) {
		refuse(d, "the answer is not read: out of memory");
		return;
	}
	d->depth--;
	text_clear(d);
	if (d->path.p && (slash = strrchr(d->path.p, '/')) != NULL) {
		*slash = '\0';
		d->path.len = (size_t)(slash - d->path.p);
	}
}

/* Why expat refused the answer, unless a handler said already. */
static void not_xml(struct xml_doc *d, XML_Parser p)
{
	enum XML_Error e = XML_GetErrorCode(p);

	if (e == XML_ERROR_NO_MEMORY)
		say(d, "the answer is not read: out of memory");
	else
		say(d, "the answer is not XML (line %lu: %s)",
		    (unsigned long)XML_GetCurrentLineNumber(p), XML_ErrorString(e));
}

int xml_parse(const char *data, size_t len, struct xml_doc *d)
{
	XML_Parser p;
	char err[sizeof d->err];
	int ok = 0;

	memset(d, 0, sizeof *d);
	if (len > XML_MAX_INPUT) {
		say(d, "the server's answer is larger than %d MiB: not an S3 "
		    "answer", XML_MAX_INPUT >> 20);
		return -1;
	}
	if ((p = XML_ParserCreate("UTF-8")) == NULL) {
		say(d, "the answer is not read: out of memory");
		return -1;
	}
	d->parser = p;
	XML_SetUserData(p, d);
	XML_SetElementHandler(p, on_start, on_end);
	XML_SetCharacterDataHandler(p, on_chars);
	XML_SetStartDoctypeDeclHandler(p, on_doctype);
	if (XML_Parse(p, data ? data : "", (int)len, 1) != XML_STATUS_OK)
		not_xml(d, p);
	else
		ok = d->err[0] == '\0';
	XML_ParserFree(p);
	d->parser = NULL;
	if (!ok) {
		memcpy(err, d->err, sizeof err);
		xml_free(d);
		memcpy(d->err, err, sizeof err);
		return -1;
	}
	return 0;
}

const char *xml_get(const struct xml_doc *d, const char *path)
{
	size_t i;

	for (i = 0; i < d->n; i++)
		if (strcmp(d->v[i].path, path) == 0)
			return d->v[i].text;
	return NULL;
}

int vk_buf_add_xml(struct vk_buf *b, const char *s)
{
	for (; *s; s++) {
		int r;
		switch (*s) {
		case '&': r = vk_buf_adds(b, "&amp;"); break;
		case '<': r = vk_buf_adds(b, "&lt;"); break;
		case '>': r = vk_buf_adds(b, "&gt;"); break;
		case '"': r = vk_buf_adds(b, "&quot;"); break;
		case '\'': r = vk_buf_adds(b, "&apos;"); break;
		default: r = vk_buf_add(b, s, 1);
		}
		if (r != 0)
			return -1;
	}
	return 0;
}
