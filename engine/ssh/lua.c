/*
 * vakap.ssh's binding (ssh/ssh.h): luaopen_vakap_ssh, the module's
 * functions (connect, scan, quote, user) and the session handle
 * (metatable "vakap.ssh.session"): its methods, each checked to be open
 * and this process's, and its close, which is also __close and __gc.
 * Misuse raises; a connection that cannot be made returns fail,
 * message, category.
 */
#define _POSIX_C_SOURCE 200809L

#include <pwd.h>
#include <unistd.h>

#include <lauxlib.h>

#include "base.h"
#include "engine.h"
#include "ssh/ssh.h"
#include "stream.h"

static int m_exec(lua_State *L);
static int m_feed(lua_State *L);
static int m_hostkey(lua_State *L);
static int m_close(lua_State *L);
static int m_tostring(lua_State *L);

static const luaL_Reg methods[] = {
	{"exec", m_exec},       {"feed", m_feed},   {"hostkey", m_hostkey},
	{"close", m_close},     {NULL, NULL},
};

static const luaL_Reg metamethods[] = {
	{"__index", NULL}, /* set to the methods table */
	{"__gc", m_close},
	{"__close", m_close},
	{"__tostring", m_tostring},
	{NULL, NULL},
};

static struct session *tosession(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, SESSION_MT);
}

/* The open session at idx, opened by this process; raises otherwise. */
static struct session *checksession(lua_State *L, int idx)
{
	struct session *ss = tosession(L, idx);

	if (ss->ssh == NULL)
		luaL_error(L, "attempt to use a closed SSH session");
	if (!sess_ours(ss))
		luaL_error(L, NOT_OURS);
	return ss;
}

/* Push a new session, closed (released until connected), named after o. */
static struct session *push_session(lua_State *L, const struct conn_opts *o)
{
	struct session *ss = lua_newuserdatauv(L, sizeof *ss, 0);

	sess_init(ss, o);
	vk_class(L, SESSION_MT, metamethods, methods);
	lua_setmetatable(L, -2);
	return ss;
}

/* The paths of the string or list at idx (at most MAX_KNOWN_FILES). */
static int known_files(lua_State *L, int idx, const char **paths)
{
	int n = 0;

	if (lua_type(L, idx) == LUA_TSTRING) {
		paths[n++] = lua_tostring(L, idx);
	} else if (lua_istable(L, idx)) {
		lua_Integer i, len = (lua_Integer)lua_rawlen(L, idx);

		for (i = 1; i <= len && n < MAX_KNOWN_FILES; i++) {
			lua_rawgeti(L, idx, i);
			if (lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "known_hosts[%d] is not a string", (int)i);
			paths[n++] = lua_tostring(L, -1);
			lua_pop(L, 1); /* kept alive by the table */
		}
	} else if (!lua_isnil(L, idx)) {
		luaL_error(L, "known_hosts must be a path or a list of paths");
	}
	return n;
}

/* Options of connect and scan, from the table at idx. */
static void check_conn_opts(lua_State *L, int idx, struct conn_opts *o)
{
	luaL_checktype(L, idx, LUA_TTABLE);
	lua_getfield(L, idx, "host");
	o->host = luaL_checkstring(L, -1);
	lua_getfield(L, idx, "port");
	o->port = (int)luaL_optinteger(L, -1, 22);
	luaL_argcheck(L, o->port > 0 && o->port < 65536, idx, "port out of range");
	lua_getfield(L, idx, "user");
	o->user = luaL_optstring(L, -1, NULL);
	lua_getfield(L, idx, "label");
	o->label = luaL_optstring(L, -1, o->host);
	lua_getfield(L, idx, "connect_timeout");
	o->timeout = luaL_optnumber(L, -1, 10);
	lua_getfield(L, idx, "keepalive");
	o->keepalive = (int)luaL_optinteger(L, -1, 30);
	lua_pop(L, 6); /* the strings stay alive in the table */
	lua_getfield(L, idx, "known_hosts");
	o->nfiles = known_files(L, lua_gettop(L), o->files);
	lua_pop(L, 1);
}

/* Pop the session on top and push fail, message, category. */
static int connect_failed(lua_State *L, struct session *ss)
{
	luaL_pushfail(L);
	lua_pushstring(L, ss->err);
	lua_pushstring(L, ss->code ? ss->code : "ssh");
	sess_release(ss);
	lua_remove(L, -4);
	return 3;
}

/*
 * lua: ssh.connect{ host=, port=22, user=, identity_files={...},
 *                   known_hosts=path|{paths}, connect_timeout=10,
 *                   keepalive=30, label= } -> session | fail, message, code
 * code: "connect", "timeout", "interrupted", "hostkey_unknown",
 * "hostkey_changed", "hostkey_revoked", "hostkey_algorithm", "known_hosts",
 * "auth", "ssh".
 */
static int l_connect(lua_State *L)
{
	struct conn_opts o;
	struct session *ss;

	check_conn_opts(L, 1, &o);
	luaL_argcheck(L, o.user != NULL, 1, "user is required");
	lua_getfield(L, 1, "identity_files");
	luaL_argexpected(L, lua_isnil(L, -1) || lua_istable(L, -1), 1,
	                 "identity_files as a list");
	ss = push_session(L, &o); /* closed until connected */
	if (sess_open(ss, &o, L, lua_gettop(L) - 1) != 0)
		return connect_failed(L, ss);
	return 1;
}

static void push_hostkey(lua_State *L, struct session *ss)
{
	lua_createtable(L, 0, 4);
	lua_pushstring(L, ss->keytype);
	lua_setfield(L, -2, "type");
	lua_pushstring(L, ss->fingerprint);
	lua_setfield(L, -2, "fingerprint");
	lua_pushstring(L, ss->key);
	lua_setfield(L, -2, "key");
	lua_pushstring(L, ss->name);
	lua_setfield(L, -2, "name");
}

/*
 * lua: ssh.scan{ host=, port=22, known_hosts=, connect_timeout= } ->
 *      { name, type, fingerprint, key, status = "known"|"unknown"|"changed",
 *        file, known_fingerprint } | fail, message, code
 * Connects and takes the host key; does not log in.
 */
static int l_scan(lua_State *L)
{
	static const char *const statuses[] = {"unknown", "known", "changed"};
	struct conn_opts o;
	struct session *ss;
	struct known k;

	check_conn_opts(L, 1, &o);
	o.keepalive = 0;
	ss = push_session(L, &o);
	if (sess_establish(ss, &o, vk_clock() + o.timeout) != 0 ||
	    known_check(ss, &o, &k) != 0)
		return connect_failed(L, ss);
	push_hostkey(L, ss);
	lua_pushstring(L, statuses[k.status]);
	lua_setfield(L, -2, "status");
	if (k.file[0]) {
		lua_pushstring(L, k.file);
		lua_setfield(L, -2, "file");
	}
	if (k.status == HOST_CHANGED) {
		lua_pushstring(L, k.old_fingerprint);
		lua_setfield(L, -2, "known_fingerprint");
	}
	sess_release(ss);
	return 1;
}

/* lua: ssh.quote(argv) -> the POSIX sh command line running argv */
static int l_quote(lua_State *L)
{
	quote_push(L, 1);
	return 1;
}

/* lua: sess:exec(argv [, {cwd=, env={NAME=value|false}}]) -> stream |
 *      fail, message.  The stream is the remote command's stdout. */
static int m_exec(lua_State *L)
{
	struct session *ss = checksession(L, 1);
	const char *cmd, *name;

	lua_settop(L, 3);
	quote_push(L, 2); /* checks argv */
	lua_pop(L, 1);
	lua_rawgeti(L, 2, 1);
	name = lua_tostring(L, -1);
	cmd = quote_push_command(L, 2, 3);
	return exec_push(L, ss, 1, name, cmd);
}

/* lua: sess:feed(argv, stream [, {cwd=, env=, progress=fn}]) ->
 *      bytes | fail, message.  The stream is the remote command's
 *      standard input; its output is kept like its errors and shown on
 *      failure.  A stream that fails stops the command (TERM) before it
 *      sees the end of its input. */
static int m_feed(lua_State *L)
{
	struct session *ss = checksession(L, 1);
	struct vk_stream *s = vk_stream_check(L, 3);
	const char *cmd, *name;
	int progress = 0;

	lua_settop(L, 4);
	quote_push(L, 2);
	lua_pop(L, 1);
	lua_rawgeti(L, 2, 1);
	name = lua_tostring(L, -1);
	if (lua_istable(L, 4)) {
		lua_getfield(L, 4, "progress");
		progress = lua_gettop(L);
	}
	cmd = quote_push_command(L, 2, 4);
	return feed_run(L, ss, name, cmd, s, progress);
}

/* lua: sess:hostkey() -> { type, fingerprint = "SHA256:...", key, name } */
static int m_hostkey(lua_State *L)
{
	push_hostkey(L, checksession(L, 1));
	return 1;
}

/* lua: sess:close() -- also __close and __gc; closing twice is harmless.
 *      Streams still open on it fail from then on.  In a process that
 *      did not open it, only that process's copy is freed. */
static int m_close(lua_State *L)
{
	sess_release(tosession(L, 1));
	return 0;
}

static int m_tostring(lua_State *L)
{
	struct session *ss = tosession(L, 1);

	lua_pushfstring(L, "vakap.ssh.session (%s, %s)", ss->label,
	                ss->ssh ? "open" : "closed");
	return 1;
}

/* lua: ssh.user() -> the name of the user running vakap */
static int l_user(lua_State *L)
{
	struct passwd *pw = getpwuid(getuid());

	if (pw == NULL)
		return vk_pushfail(L, "no user name for uid %d", (int)getuid());
	lua_pushstring(L, pw->pw_name);
	return 1;
}

static const luaL_Reg funcs[] = {
	{"connect", l_connect}, {"scan", l_scan}, {"quote", l_quote},
	{"user", l_user},       {NULL, NULL},
};

/* libssh's log goes nowhere: vakap says what failed itself. */
static void no_log(int priority, const char *function, const char *buffer,
                   void *userdata)
{
	(void)priority;
	(void)function;
	(void)buffer;
	(void)userdata;
}

int luaopen_vakap_ssh(lua_State *L)
{
	static int initialized;

	if (!initialized) {
		/* once: libssh's own destructor finalizes it at exit */
		ssh_init();
		ssh_set_log_level(SSH_LOG_NOLOG);
		ssh_set_log_callback(no_log);
		initialized = 1;
	}
	vk_class(L, SESSION_MT, metamethods, methods);
	lua_pop(L, 1);
	luaL_newlib(L, funcs);
	return 1;
}
