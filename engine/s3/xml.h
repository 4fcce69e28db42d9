/*
 * XML for the s3 primitive, and for any AWS service that answers in XML:
 * an answer read with expat into every element's text by path, in
 * document order; and text escaped for a request body.
 */
#ifndef VAKAP_S3_XML_H
#define VAKAP_S3_XML_H

#include <stddef.h>

#include "buf.h"

/* Bounds on an answer from outside: S3's answers are 4 elements deep, a
 * page of a listing some 12,000 elements; what passes them is refused. */
#define XML_MAX_DEPTH 32
#define XML_MAX_ELEMENTS 200000
#define XML_MAX_INPUT (16 * 1024 * 1024) /* bytes of the answer */
#define XML_MAX_KEPT (64 * 1024 * 1024)  /* bytes of paths and texts */

struct xml_node {
	char *path; /* "/ListBucketResult/Contents/Key" */
	char *text;
};

struct xml_doc {
	struct xml_node *v; /* every element, in the order they closed */
	size_t n, cap;
	char root[64];      /* the root element's name */
	struct vk_buf path, text;
	size_t depth, elements, kept;
	void *parser;       /* expat's, while it parses */
	char err[128];      /* why the parse failed */
};

/* Parse an answer into d; 0, or -1 when it is not well-formed XML, passes
 * a bound above, has a DOCTYPE, or memory ran out: d then empty but for
 * d->err, which says why ("the answer is not XML ...").  Free d with
 * xml_free after a 0. */
int xml_parse(const char *data, size_t len, struct xml_doc *d);
void xml_free(struct xml_doc *d);

/* The text of the first element at path, or NULL. */
const char *xml_get(const struct xml_doc *d, const char *path);

/* The text with &, <, >, " and ' escaped for XML; 0, or -1 when memory
 * ran out. */
int vk_buf_add_xml(struct vk_buf *b, const char *s);

#endif
