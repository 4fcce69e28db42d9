# vakap — see README.md.  `make deps` once (as root), then `make`,
# `make demo`, `make test`.

# What the primitives link against; and Lua, which the binary embeds.
LIB_PKGS := libarchive libzstd zlib libcrypto gpgme gpg-error libcurl expat libssh
PKGS     := lua5.4 $(LIB_PKGS)
CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
ALL_CFLAGS = $(WARN) $(CFLAGS) $(PKG_CFLAGS) -Iengine -Ibuild
LDLIBS   := $(PKG_LIBS) -lm
SAN      := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

# The engine: every C file under engine/ but main.c (the primitives are
# listed once, in engine/engine.h; each may span a folder, engine/s3/).
ENGINE_SRC := $(filter-out engine/main.c,$(sort $(wildcard engine/*.c engine/*/*.c)))
ENGINE_HDR := $(wildcard engine/*.h engine/*/*.h)
OBJS     := $(ENGINE_SRC:engine/%.c=%)
LUA_SRC  := $(shell find lua -name '*.lua' | sort)
UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNITS    := $(UNIT_SRC:tests/unit/%.c=%)

VERSION  := $(shell cat VERSION)

.PHONY: all deps demo test test-unit test-valgrind test-spec test-e2e bench clean

all: build/vakap

build build/plain build/asan build/pic:
	mkdir -p $@

build/luasrc.c: tools/bin2c.lua $(LUA_SRC) VERSION | build
	lua5.4 tools/bin2c.lua $(VERSION) $(LUA_SRC) > $@.tmp && mv $@.tmp $@

build/plain/%.o: engine/%.c $(ENGINE_HDR) | build/plain
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c $< -o $@
build/asan/%.o: engine/%.c $(ENGINE_HDR) | build/asan
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(SAN) -c $< -o $@
build/pic/%.o: engine/%.c $(ENGINE_HDR) | build/pic
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -c $< -o $@

build/plain/luasrc.o: build/luasrc.c | build/plain
	$(CC) $(ALL_CFLAGS) -c $< -o $@
build/asan/luasrc.o: build/luasrc.c | build/asan
	$(CC) $(ALL_CFLAGS) $(SAN) -c $< -o $@

# The binary: -rdynamic so C modules loaded at run time (lua-cjson) find Lua.
build/vakap: $(OBJS:%=build/plain/%.o) build/plain/main.o build/plain/luasrc.o
	$(CC) $(CFLAGS) -rdynamic $^ -o $@ $(LDLIBS)
build/vakap-asan: $(OBJS:%=build/asan/%.o) build/asan/main.o build/asan/luasrc.o
	$(CC) $(CFLAGS) $(SAN) -rdynamic $^ -o $@ $(LDLIBS)

# The primitives as one Lua C library, for the busted specs run by lua5.4,
# which provides Lua itself.
build/vakap.so: $(OBJS:%=build/pic/%.o)
	$(CC) -shared $^ -o $@ $(shell pkg-config --libs $(LIB_PKGS))

build/asan/test_%: tests/unit/test_%.c tests/unit/harness.h $(OBJS:%=build/asan/%.o)
	$(CC) $(ALL_CFLAGS) $(SAN) $< $(OBJS:%=build/asan/%.o) -o $@ $(LDLIBS) -lcmocka
build/plain/test_%: tests/unit/test_%.c tests/unit/harness.h $(OBJS:%=build/plain/%.o)
	$(CC) $(ALL_CFLAGS) $< $(OBJS:%=build/plain/%.o) -o $@ $(LDLIBS) -lcmocka

deps:
	sh tools/deps.sh

# deps first, in its own make, so pkg-config sees what it installed.
demo:
	$(MAKE) deps
	$(MAKE) build/vakap
	sh examples/demo/run.sh

test:
	$(MAKE) deps
	$(MAKE) build/vakap build/vakap-asan build/vakap.so \
		$(UNITS:%=build/asan/%) $(UNITS:%=build/plain/%)
	sh tests/run.sh

test-unit: $(UNITS:%=build/asan/%)
	sh tests/run.sh unit
test-valgrind: $(UNITS:%=build/plain/%)
	sh tests/run.sh valgrind
test-spec: build/vakap.so
	sh tests/run.sh spec
test-e2e: build/vakap build/vakap-asan
	sh tests/run.sh e2e

# issue 7's suite (needs root for sshd; ~15 minutes): bench/suite.sh.
# bench/run.sh, gpg.sh and s3.sh remain for the local, gpg and s3 parts alone.
bench: build/vakap
	bash bench/suite.sh

clean:
	rm -rf build
