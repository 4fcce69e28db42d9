/*
 * AWS Signature Version 4 (engine/s3/sign.c) against AWS's published
 * vectors, kept under tests/data/sigv4/ (see its README): the Signature
 * V4 test suite (each .req signed must give its .authz, and its .creq and
 * .sts where published) and the worked examples of the S3 documentation,
 * presigned URL included.  Then the pieces: S3's URI encoding, the
 * canonical query, digests, and the Lua binding (s3.sign, c:presign).
 *
 * The suite's path-normalisation cases (normalize-path/: get-relative,
 * get-slash-dot-slash, ...) are not run: S3 does not normalise paths, a
 * key "a/../b" is its own key.  get-header-value-multiline is not run
 * either: obsolete line folding, which no S3 request carries.
 */
#define _POSIX_C_SOURCE 200809L

#include "harness.h"
#include "s3/sign.h"
#include "s3/xml.h"

#include <dirent.h>
#include <strings.h>

#define DATA "tests/data/sigv4"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	struct vk_buf b = {0};
	char chunk[4096];
	size_t n;

	if (f == NULL)
		return NULL;
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
		assert_int_equal(vk_buf_add(&b, chunk, n), 0);
	fclose(f);
	assert_int_equal(vk_buf_adds(&b, ""), 0);
	return b.p;
}

struct parsed {
	char method[16];
	struct vk_buf path;  /* encoded */
	char *query;
	struct s3_header h[16];
	size_t nh;
	char payload[65];
	char *text;        /* the request, cut in place */
};

/* A request in the suite's form: "METHOD target HTTP/1.1", "Name:value"
 * lines, an empty line and the body. */
static void parse_req(char *text, struct parsed *r)
{
	char *line_end, *target, *proto, *p, *body = strstr(text, "\n\n");

	memset(r, 0, sizeof *r);
	r->text = text;
	if (body) {
		*body = '\0';
		body += 2;
	}
	s3_sha256_hex(body ? body : "", body ? strlen(body) : 0, r->payload);
	line_end = strchr(text, '\n');
	if (line_end)
		*line_end = '\0';
	p = strchr(text, ' ');
	assert_non_null(p);
	*p = '\0';
	snprintf(r->method, sizeof r->method, "%s", text);
	target = p + 1;
	proto = strstr(target, " HTTP/1.1");
	assert_non_null(proto);
	*proto = '\0';
	r->query = strchr(target, '?');
	if (r->query)
		*r->query++ = '\0';
	assert_int_equal(s3_uri_encode(&r->path, target, strlen(target), 1), 0);
	for (p = line_end ? line_end + 1 : NULL; p && *p; p = line_end) {
		char *colon;
		line_end = strchr(p, '\n');
		if (line_end)
			*line_end++ = '\0';
		colon = strchr(p, ':');
		assert_non_null(colon);
		*colon = '\0';
		assert_true(r->nh < 16);
		r->h[r->nh].name = p;
		r->h[r->nh].value = colon + 1;
		r->nh++;
	}
}

static const char *header(struct parsed *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->nh; i++)
		if (strcasecmp(r->h[i].name, name) == 0)
			return r->h[i].value;
	return NULL;
}

/* Sign dir/name.req and compare with .authz, .creq and .sts. */
static void check_case(const char *dir, const char *name, const char *service,
                       const char *ak, const char *sk)
{
	char path[512];
	char *req, *authz, *creq, *sts;
	struct parsed r;
	struct s3_sign_input in;
	struct s3_signature sig;
	const char *date;

	snprintf(path, sizeof path, "%s/%s.req", dir, name);
	req = slurp(path);
	assert_non_null(req);
	snprintf(path, sizeof path, "%s/%s.authz", dir, name);
	authz = slurp(path);
	assert_non_null(authz);
	snprintf(path, sizeof path, "%s/%s.creq", dir, name);
	creq = slurp(path);
	snprintf(path, sizeof path, "%s/%s.sts", dir, name);
	sts = slurp(path);

	parse_req(req, &r);
	date = header(&r, "x-amz-date");
	assert_non_null(date);
	memset(&in, 0, sizeof in);
	in.method = r.method;
	in.path = r.path.p;
	in.query = r.query;
	in.headers = r.h;
	in.nheaders = r.nh;
	in.payload_hash = header(&r, "x-amz-content-sha256")
	                      ? header(&r, "x-amz-content-sha256")
	                      : r.payload;
	in.region = "us-east-1";
	in.service = service;
	in.access_key = ak;
	in.secret_key = sk;
	in.time = date;
	if (s3_sign(&in, &sig) != 0)
		fail_msg("%s: s3_sign failed", name);
	if (creq && strcmp(creq, sig.canonical_request.p) != 0)
		fail_msg("%s: canonical request\n%s\n--- wanted ---\n%s", name,
		         sig.canonical_request.p, creq);
	if (sts && strcmp(sts, sig.string_to_sign.p) != 0)
		fail_msg("%s: string to sign\n%s\n--- wanted ---\n%s", name,
		         sig.string_to_sign.p, sts);
	if (strcmp(authz, sig.authorization.p) != 0)
		fail_msg("%s: authorization\n%s\n--- wanted ---\n%s", name,
		         sig.authorization.p, authz);
	s3_signature_free(&sig);
	vk_buf_free(&r.path);
	free(req);
	free(authz);
	free(creq);
	free(sts);
}

/* Every case in a directory: the names of its .req files. */
static int run_dir(const char *dir, const char *service, const char *ak,
                   const char *sk)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		char name[256];
		if (len < 5 || strcmp(e->d_name + len - 4, ".req") != 0)
			continue;
		snprintf(name, sizeof name, "%.*s", (int)(len - 4), e->d_name);
		check_case(dir, name, service, ak, sk);
		n++;
	}
	closedir(d);
	return n;
}

static void test_aws_suite(void **state)
{
	(void)state;
	assert_int_equal(run_dir(DATA "/suite", "service", "AKIDEXAMPLE",
	                         "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
	                 24);
}

static void test_s3_doc_examples(void **state)
{
	(void)state;
	assert_int_equal(run_dir(DATA "/s3", "s3", "AKIAIOSFODNN7EXAMPLE",
	                         "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
	                 4);
}

static void test_presigned_example(void **state)
{
	struct s3_presign_input in = {
		.method = "GET",
		.host = "examplebucket.s3.amazonaws.com",
		.path = "/test.txt",
		.region = "us-east-1",
		.access_key = "AKIAIOSFODNN7EXAMPLE",
		.secret_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
		.time = "20130524T000000Z",
		.expires = 86400,
	};
	struct vk_buf q = {0};
	char *want = slurp(DATA "/s3/presigned-get-object.url");
	char *wq;

	(void)state;
	assert_non_null(want);
	wq = strchr(want, '?');
	assert_non_null(wq);
	assert_int_equal(s3_presign(&in, &q), 0);
	assert_string_equal(q.p, wq + 1);
	vk_buf_free(&q);
	in.expires = 0;
	assert_int_equal(s3_presign(&in, &q), -1);
	in.expires = 60;
	in.time = "2013-05-24";
	assert_int_equal(s3_presign(&in, &q), -1);
	vk_buf_free(&q);
	free(want);
}

static void test_uri_encode(void **state)
{
	struct vk_buf b = {0};
	const char *key = "dir/a b+c~d%e\xc3\xa9.txt";

	(void)state;
	assert_int_equal(s3_uri_encode(&b, key, strlen(key), 1), 0);
	assert_string_equal(b.p, "dir/a%20b%2Bc~d%25e%C3%A9.txt");
	b.len = 0;
	assert_int_equal(s3_uri_encode(&b, key, strlen(key), 0), 0);
	assert_string_equal(b.p, "dir%2Fa%20b%2Bc~d%25e%C3%A9.txt");
	b.len = 0;
	/* nothing normalised: dots and repeated slashes are the key's */
	assert_int_equal(s3_uri_encode(&b, "a/../b//c/./", 12, 1), 0);
	assert_string_equal(b.p, "a/../b//c/./");
	vk_buf_free(&b);
}

static void test_canonical_query(void **state)
{
	struct vk_buf a = {0}, b = {0};

	(void)state;
	assert_int_equal(s3_canonical_query(&a, "prefix=a b&list-type=2&uploads"),
	                 0);
	assert_string_equal(a.p, "list-type=2&prefix=a%20b&uploads=");
	/* already encoded: not encoded twice */
	assert_int_equal(s3_canonical_query(&b, "uploads=&prefix=a%20b&"
	                                         "list-type=2"), 0);
	assert_string_equal(a.p, b.p);
	a.len = 0;
	assert_int_equal(s3_canonical_query(&a, "k=a+b&k=%2&t=%E2%82%AC/"), 0);
	assert_string_equal(a.p, "k=%252&k=a%2Bb&t=%E2%82%AC%2F");
	a.len = 0;
	assert_int_equal(s3_canonical_query(&a, NULL), 0);
	assert_string_equal(a.p, "");
	vk_buf_free(&a);
	vk_buf_free(&b);
}

static void test_digests_and_xml(void **state)
{
	char hex[65], b64[25];
	struct vk_buf b = {0};

	(void)state;
	s3_sha256_hex("", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e464"
	                         "9b934ca495991b7852b855");
	s3_md5_base64("", 0, b64);
	assert_string_equal(b64, "1B2M2Y8AsgTpgAmY7PhCfg==");
	s3_md5_base64("Welcome to Amazon S3.", 21, b64);
	assert_int_equal(strlen(b64), 24);
	assert_int_equal(vk_buf_add_xml(&b, "a&b<c>\"d'"), 0);
	assert_string_equal(b.p, "a&amp;b&lt;c&gt;&quot;d&apos;");
	vk_buf_free(&b);
}

/* A session token given apart is signed as x-amz-security-token, as the
 * suite's post-sts-header-before signs it from the headers. */
static void test_session_token(void **state)
{
	char *authz = slurp(DATA "/suite/post-sts-header-before.authz");
	char *tokreq = slurp(DATA "/suite/post-sts-header-before.req");
	const char *tok;
	struct s3_header h[2] = {{"Host", "example.amazonaws.com"},
	                         {"X-Amz-Date", "20150830T123600Z"}};
	struct s3_sign_input in = {
		.method = "POST",
		.path = "/",
		.headers = h,
		.nheaders = 2,
		.payload_hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b9"
		                "34ca495991b7852b855",
		.region = "us-east-1",
		.service = "service",
		.access_key = "AKIDEXAMPLE",
		.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
		.time = "20150830T123600Z",
	};
	struct s3_signature sig;

	(void)state;
	assert_non_null(authz);
	assert_non_null(tokreq);
	tok = strstr(tokreq, "X-Amz-Security-Token:");
	assert_non_null(tok);
	in.session_token = tok + strlen("X-Amz-Security-Token:");
	assert_int_equal(s3_sign(&in, &sig), 0);
	assert_string_equal(sig.authorization.p, authz);
	s3_signature_free(&sig);
	in.time = "20150830 123600";
	assert_int_equal(s3_sign(&in, &sig), -1);
	s3_signature_free(&sig);
	free(authz);
	free(tokreq);
}

/* The Lua side: s3.sign gives the suite's answer, and a client's presign
 * the S3 documentation's URL (virtual-hosted, s3.amazonaws.com). */
static void test_lua_binding(void **state)
{
	lua_State *L = new_state();
	int top = lua_gettop(L);

	(void)state;
	run_lua(L,
		"local s3 = require 'vakap.s3'\n"
		"local r = s3.sign{ method = 'GET', path = '/',\n"
		"  query = 'Param2=value2&Param1=value1',\n"
		"  headers = { {'Host', 'example.amazonaws.com'},\n"
		"              {'X-Amz-Date', '20150830T123600Z'} },\n"
		"  payload_hash = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934"
		"ca495991b7852b855',\n"
		"  region = 'us-east-1', service = 'service',\n"
		"  access_key = 'AKIDEXAMPLE',\n"
		"  secret_key = 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY',\n"
		"  time = '20150830T123600Z' }\n"
		"assert(r.signature == 'b97d918cfa904a5beff61c982a1b6f458b799221"
		"646efd99d3219ec94cdf2500', r.signature)\n"
		"assert(r.canonical_request:match('^GET\\n/\\nParam1=value1&Param2"
		"=value2\\n'))\n"
		"assert(r.string_to_sign:match('^AWS4%-HMAC%-SHA256\\n'))\n"
		"assert(r.authorization:match('SignedHeaders=host;x%-amz%-date,'))\n"
		"local c <close> = s3.client{ bucket = 'examplebucket',\n"
		"  endpoint = 'https://s3.amazonaws.com', path_style = false,\n"
		"  access_key = 'AKIAIOSFODNN7EXAMPLE',\n"
		"  secret_key = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY' }\n"
		"local want = assert(io.open('" DATA "/s3/presigned-get-object.url'))"
		":read('a')\n"
		"assert(c:presign('GET', 'test.txt', 86400, '20130524T000000Z') =="
		" want)\n"
		"assert(not pcall(c.presign, c, 'GET', 'k', 0))\n"
		"assert(not pcall(s3.client, { bucket = 'b', access_key = 'a',\n"
		"  secret_key = 's', endpont = 'http://x' }))\n"
		"c:close()\n"
		"assert(not pcall(c.presign, c, 'GET', 'k', 60))\n"
		"assert(tostring(c) == 'vakap.s3.client (closed)')\n");
	close_state(L, top);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aws_suite),
		cmocka_unit_test(test_s3_doc_examples),
		cmocka_unit_test(test_presigned_example),
		cmocka_unit_test(test_uri_encode),
		cmocka_unit_test(test_canonical_query),
		cmocka_unit_test(test_digests_and_xml),
		cmocka_unit_test(test_session_token),
		cmocka_unit_test(test_lua_binding),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
