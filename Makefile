# Tollgate: `make` builds everything into build/, `make test` runs every
# test suite, `make run` starts the local stack, `make bench` measures.
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

.PHONY: all deps core module web test test-unit test-nginx test-deploy \
        test-web run bench clean

.PHONY: admin test-admin

.PHONY: test-vectors

.PHONY: test-chaos

.PHONY: test-distributed bench-distributed bench-smoke

all: core module admin web

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

# Link-time optimization across the module's files: the request path
# crosses from the phase handler to the lease code and the core, and
# calls between them are then inlined (about 35 instructions a request
# in distributed mode, docs/benchmarks.md).  Nothing outside the module
# binds to its functions, so they need not stay interposable.
MODULE_LTO := -flto=auto -fno-semantic-interposition

$(BUILD)/nginx-src/configure:
	@mkdir -p $(BUILD)
	rm -rf $(BUILD)/nginx-src
	cp -r $(NGINX_SRC) $(BUILD)/nginx-src

$(BUILD)/nginx-src/objs/Makefile: $(BUILD)/nginx-src/configure nginx/config
	cd $(BUILD)/nginx-src && ./configure --with-compat \
	    --add-dynamic-module=$(CURDIR)/nginx >/dev/null

# the Redis scripts, compiled into the module (nginx/config names this path)
SCRIPTS_C  := build/tg_scripts.c

$(SCRIPTS_C): $(wildcard redis/*.lua redis/lib/*.lua) scripts/embed-lua.sh
	@mkdir -p build
	scripts/embed-lua.sh $@

$(BUILD)/ngx_http_tollgate_module.so: $(BUILD)/nginx-src/objs/Makefile \
	    $(MODULE_SRCS) $(SCRIPTS_C)
	$(MAKE) -C $(BUILD)/nginx-src -f objs/Makefile modules \
	    CFLAGS="$$(sed -n 's/^CFLAGS = //p' \
	        $(BUILD)/nginx-src/objs/Makefile) -O2 -Wextra -Wno-unused-parameter \
	        $(MODULE_LTO)" \
	    LINK="$(CC) -O2 $(MODULE_LTO)"
	# a new inode, so that a running nginx keeps the file it mapped
	cp $(BUILD)/nginx-src/objs/ngx_http_tollgate_module.so $@.tmp
	mv $@.tmp $@

# dashboard: a Vite build of web/ into web/dist, served by tollgate-admin ----

WEB_SRCS := $(shell find web/src -type f 2>/dev/null) web/index.html \
            web/package.json web/vite.config.ts web/tsconfig.app.json

web: web/dist/index.html

web/node_modules/.package-lock.json: web/package-lock.json
	@scripts/deps.sh web
	cd web && npm ci --no-audit --no-fund

web/dist/index.html: web/node_modules/.package-lock.json $(WEB_SRCS)
	cd web && npm run build

# admin daemon: libwebsockets, jansson, libjwt, libsodium, libpq, hiredis --

ADMIN_LIBS    := libwebsockets jansson libjwt libsodium libpq hiredis
ADMIN_SRCS    := $(wildcard admin/*.c)
ADMIN_HDRS    := $(wildcard admin/*.h)
# the gateways' scripts the admin runs for operators (docs/redis-scripts.md)
ADMIN_GW_LUA  := borrow repay emergency
ADMIN_EMBED   := $(sort $(wildcard admin/migrations/*.sql)) -- \
                 $(wildcard redis/admin_*.lua) -- redis/lib/tollgate.lua \
                 $(ADMIN_GW_LUA:%=redis/%.lua) -- admin/openapi.yaml
ADMIN_OBJS    := $(patsubst admin/%.c,$(BUILD)/admin/%.o,$(ADMIN_SRCS)) \
                 $(BUILD)/admin/embedded.o

admin:
	@scripts/deps.sh admin
	$(MAKE) $(BUILD)/tollgate-admin

$(BUILD)/admin/embedded.c: admin/embed.sh $(filter-out --,$(ADMIN_EMBED))
	@mkdir -p $(dir $@)
	admin/embed.sh $@ $(ADMIN_EMBED)

$(BUILD)/admin/embedded.o: $(BUILD)/admin/embedded.c admin/tga.h
	$(CC) $(CFLAGS) $(WARN) -std=c99 -Iadmin -c $< -o $@

$(BUILD)/admin/%.o: admin/%.c $(ADMIN_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) -std=c99 -D_DEFAULT_SOURCE \
	    $$(pkg-config --cflags $(ADMIN_LIBS)) -Iadmin -Icore -c $< -o $@

# the core library reads runtime balances as the scripts would refill them
$(BUILD)/tollgate-admin: $(ADMIN_OBJS) $(BUILD)/libtgcore.a
	$(CC) $(CFLAGS) -o $@ $^ $$(pkg-config --libs $(ADMIN_LIBS))

# tests ----------------------------------------------------------------------

test: deps all
	@scripts/deps.sh test
	$(MAKE) test-unit
	$(MAKE) test-vectors
	$(MAKE) test-nginx
	$(MAKE) test-distributed
	$(MAKE) test-deploy
	$(MAKE) test-admin
	$(MAKE) test-web
	$(MAKE) test-chaos

test-unit: core
	$(MAKE) -C tests/unit BUILD=$(CURDIR)/$(BUILD)

# the shared vectors against the C core, then against the Redis scripts
test-vectors: core
	$(MAKE) -C tests/vectors BUILD=$(CURDIR)/$(BUILD) PYTHON=$(PYTHON)

test-nginx: module
	$(PYTHON) -m pytest -q tests/nginx

# distributed mode: gateways sharing real Redis (a single server,
# Sentinel, Redis Cluster); about 2 minutes
test-distributed: module
	$(PYTHON) -m pytest -q tests/distributed

# `make run` end to end: the whole local stack in both modes, its cleanup
test-deploy: module admin web
	$(PYTHON) -m pytest -q deploy/test_run.py

# the admin daemon, and a real gateway obeying what it writes
test-admin: admin module
	$(PYTHON) -m pytest -q tests/admin

# Component tests, then the browser tests against a real stack, which need
# the admin daemon.
test-web: web
	cd web && npm test
	@if [ -x $(BUILD)/tollgate-admin ]; then cd web && npm run e2e; \
	else echo "test-web: $(BUILD)/tollgate-admin is not built:" \
	    "end-to-end tests not run"; fi

# Redis killed, frozen, slowed, partitioned, a Cluster failover, a gateway
# killed, overrides (docs/reliability.md); the figures of this run only are
# rendered as the table of that page, even when a scenario failed.
CHAOS_RESULTS := $(CURDIR)/$(BUILD)/chaos

test-chaos: module
	rm -rf $(CHAOS_RESULTS)
	TOLLGATE_CHAOS_RESULTS=$(CHAOS_RESULTS) $(PYTHON) -m pytest -q \
	    tests/chaos; status=$$?; \
	    $(PYTHON) tests/chaos/render.py --results $(CHAOS_RESULTS); \
	    exit $$status

# local stack and benchmarks -------------------------------------------------

run: deps all
	@deploy/run.sh

# every scenario against the peers, about 25 minutes; BENCH_SCENARIOS and
# BENCH_VARIANTS narrow it (bench/run.sh)
bench: deps all
	@scripts/deps.sh bench
	@bench/run.sh

# the harness itself, one short scenario into a temporary directory
bench-smoke: deps module
	@scripts/deps.sh bench
	$(PYTHON) -m pytest -q bench/test_bench.py

# Redis calls per 1000 requests and lease hit rate at a steady rate
bench-distributed: deps module
	@scripts/deps.sh bench
	$(PYTHON) bench/distributed.py

clean:
	rm -rf $(BUILD)
