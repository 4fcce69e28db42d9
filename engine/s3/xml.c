/*
 * XML answers (see s3/xml.h): expat's events made into a flat list of
 * (path, text) pairs, which is all an AWS answer needs: no tree, and
 * nothing kept of attributes.  The answer is whole in memory, bounded by
 * the transport (s3/http.c) before it gets here.
 */
#define _POSIX_C_SOURCE 200809L

#include "s3/xml.h"

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
	if (d->path.len == 0)
		snprintf(d->root, sizeof d->root, "%s", name);
	if (vk_buf_printf(&d->path, "/%s", name) != 0)
		d->oom = 1;
	text_clear(d);
}

static void XMLCALL on_chars(void *ud, const XML_Char *s, int len)
{
	struct xml_doc *d = ud;

	if (vk_buf_add(&d->text, s, (size_t)len) != 0)
		d->oom = 1;
}

/* Keep the element that closed, with its text; 0 or -1 (out of memory). */
static int keep(struct xml_doc *d)
{
	struct xml_node *node;

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
	d->n++;
	return 0;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct xml_doc *d = ud;
	char *slash;

	(void)name;
	if (keep(d) != 0) {
		d->oom = 1;
		return;
	}
	text_clear(d);
	if (d->path.p && (slash = strrchr(d->path.p, '/')) != NULL) {
		*slash = '\0';
		d->path.len = (size_t)(slash - d->path.p);
	}
}

int xml_parse(const char *data, size_t len, struct xml_doc *d)
{
	XML_Parser p = XML_ParserCreate("UTF-8");
	int ok;

	memset(d, 0, sizeof *d);
	if (p == NULL)
		return -1;
	XML_SetUserData(p, d);
	XML_SetElementHandler(p, on_start, on_end);
	XML_SetCharacterDataHandler(p, on_chars);
	ok = XML_Parse(p, data ? data : "", (int)len, 1) == XML_STATUS_OK;
	XML_ParserFree(p);
	if (!ok || d->oom) {
		xml_free(d);
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
