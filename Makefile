# Tollgate: `make` builds everything into build/, `make test` runs every
# test suite, `make run` starts a local gateway, `make bench` measures.
# Each of them installs the Debian packages it needs first (scripts/deps.sh).

BUILD      ?= build
CC         ?= cc
CFLAGS     ?= -O2 -g
WARN       := -Wall -Wextra -Werror=implicit-function-declaration
NGINX_SRC  ?= /usr/share/nginx/src
PYTHON     ?= /usr/bin/python3

CORE_SRCS  := $(wildcard core/*.c)
CORE_HDRS  := $(wildcard core/*.h)
CORE_OBJS  := $(patsubst core/%.c,$(BUILD)/core/%.o,$(CORE_SRCS))

MODULE_SRCS := $(wildcard nginx/*.c nginx/*.h) nginx/config $(CORE_SRCS) \
               $(CORE_HDRS)

.PHONY: all deps core module test test-unit test-nginx run bench clean

all: core module

deps:
	@scripts/deps.sh build

# core library -------------------------------------------------------------

core: $(BUILD)/libtgcore.a

$(BUILD)/core/%.o: core/%.c $(CORE_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC \
	    -Icore -c $< -o $@

$(BUILD)/libtgcore.a: $(CORE_OBJS)
	ar rcs $@ $^

# nginx module: built against Debian's nginx-dev sources -------------------

module: $(BUILD)/ngx_http_tollgate_module.so

$(BUILD)/nginx-src/configure:
	@mkdir -p $(BUILD)
	rm -rf $(BUILD)/nginx-src
	cp -r $(NGINX_SRC) $(BUILD)/nginx-src

$(BUILD)/nginx-src/objs/Makefile: $(BUILD)/nginx-src/configure nginx/config
	cd $(BUILD)/nginx-src && ./configure --with-compat \
	    --add-dynamic-module=$(CURDIR)/nginx >/dev/null

$(BUILD)/ngx_http_tollgate_module.so: $(BUILD)/nginx-src/objs/Makefile \
	    $(MODULE_SRCS)
	$(MAKE) -C $(BUILD)/nginx-src -f objs/Makefile modules \
	    CFLAGS="$$(sed -n 's/^CFLAGS = //p' \
	        $(BUILD)/nginx-src/objs/Makefile) -Wextra -Wno-unused-parameter"
	cp $(BUILD)/nginx-src/objs/ngx_http_tollgate_module.so $@

# tests ----------------------------------------------------------------------

test: deps all
	@scripts/deps.sh test
	$(MAKE) test-unit
	$(MAKE) test-nginx

test-unit: core
	$(MAKE) -C tests/unit BUILD=$(CURDIR)/$(BUILD)

test-nginx: module
	$(PYTHON) -m pytest -q tests/nginx

# local stack and benchmarks -------------------------------------------------

run: deps all
	@deploy/run.sh

bench: deps all
	@scripts/deps.sh bench
	@bench/run.sh

clean:
	rm -rf $(BUILD)
