# cloister build. `make` builds build/cloister and build/libcloister.a;
# `make run` is the main job, `make check` installs, builds and runs every test.

CC        ?= cc
Q         ?= @
FUZZ_CC   ?= clang
BUILD     ?= build
CLOISTER_VECTORS ?= $(abspath ../shared/vectors)
export CLOISTER_VECTORS

PKGS      := openssl jansson libcurl jose lua5.4 libcbor tss2-esys tss2-mu tss2-tctildr tss2-rc \
             libseccomp libevent libevent_openssl libevent_pthreads sqlite3 libpq
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN      := -std=c11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
             -Wmissing-prototypes -Wformat=2 -Wconversion -Wno-sign-conversion \
             -Wno-missing-field-initializers
HARDEN    := -D_FORTIFY_SOURCE=2 -fstack-protector-strong -fPIC
CFLAGS    ?= -O2 -g
ALL_CFLAGS = $(WARN) $(HARDEN) -D_GNU_SOURCE -Iinclude $(PKG_CFLAGS) $(CFLAGS) $(EXTRA_CFLAGS)
LDLIBS    := $(PKG_LIBS) -lpthread

# Every component folder but the CLI goes into the library.
LIB_SRC   := $(sort $(filter-out src/cli/%,$(wildcard src/*/*.c)))
CLI_SRC   := $(sort $(wildcard src/cli/*.c))
TEST_SRC  := $(sort $(wildcard tests/unit/*_test.c))
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
BENCH_SRC := $(sort $(wildcard bench/*.c))

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
TESTS     := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BENCHES   := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
FUZZERS   := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all deps run check layers format-check test unit e2e asan fuzz fuzz-smoke bench soak clean format

all: $(BUILD)/cloister $(BUILD)/libcloister.a

deps:
	@scripts/deps.sh

$(BUILD)/obj/%.o: %.c $(wildcard include/cloister/*.h) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libcloister.a: $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@
	@echo "  AR      $@"
	$(Q)ar rcs $@ $^

$(BUILD)/cloister: $(CLI_OBJ) $(BUILD)/libcloister.a
	@echo "  LD      $@"
	$(Q)$(CC) $(ALL_CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libcloister.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/test.h $(BUILD)/libcloister.a
	@mkdir -p $(dir $@)
	@echo "  TEST    $@"
	$(Q)$(CC) $(ALL_CFLAGS) -Isrc -Itests/unit -o $@ $< $(BUILD)/libcloister.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c bench/bench.h $(BUILD)/libcloister.a
	@mkdir -p $(dir $@)
	@echo "  BENCH   $@"
	$(Q)$(CC) $(ALL_CFLAGS) -Isrc -o $@ $< $(BUILD)/libcloister.a $(LDLIBS)

# ---------------------------------------------------------------- main job
run: deps all
	@scripts/run.sh $(BUILD)/cloister

# ------------------------------------------------------------------- tests
unit: $(TESTS)
	@scripts/run-tests.sh unit $(TESTS)

e2e: all
	@scripts/run-tests.sh e2e $(BUILD)/cloister

test: unit e2e

# Include (and, from the built objects, call) graph against the layering.
layers:
	@scripts/layers.sh $(BUILD)

# Every test again under AddressSanitizer and UndefinedBehaviorSanitizer.
asan:
	$(MAKE) --no-print-directory BUILD=build/asan CC=$(CC) \
		CFLAGS="-O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
		EXTRA_CFLAGS="-U_FORTIFY_SOURCE" test

check: deps
	$(MAKE) --no-print-directory all
	@scripts/layers.sh $(BUILD)
	$(MAKE) --no-print-directory format-check
	$(MAKE) --no-print-directory test
	$(MAKE) --no-print-directory asan
	$(MAKE) --no-print-directory fuzz-smoke
	@echo "check: all tests passed"

# -------------------------------------------------------------------- fuzz
FUZZ_FLAGS := -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all
FUZZ_LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/fuzzobj/%.o)

$(BUILD)/fuzzobj/%.o: %.c $(wildcard include/cloister/*.h) $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	$(Q)$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -Iinclude -Isrc $(PKG_CFLAGS) $(FUZZ_FLAGS) -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	@echo "  FUZZLD  $@"
	$(Q)$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -Iinclude -Isrc $(PKG_CFLAGS) $(FUZZ_FLAGS) \
		-fsanitize=fuzzer -o $@ $< $(FUZZ_LIB_OBJ) $(LDLIBS)

fuzzers: $(FUZZERS)

# The fuzz objects are intermediate to make; keep them so re-runs do not rebuild.
.SECONDARY: $(FUZZ_LIB_OBJ)

# Short run of every target: replay kept crashers, then fuzz from the vectors.
fuzz-smoke: $(FUZZERS)
	@scripts/fuzz.sh smoke $(FUZZERS)

# Longer, open-ended fuzzing: FUZZ_SECONDS per target (default 300).
fuzz: $(FUZZERS)
	@scripts/fuzz.sh long $(FUZZERS)

# ------------------------------------------------------------------- bench
# The soak is built with the benchmarks but runs only through `make soak`.
BENCH_RUN := $(filter-out $(BUILD)/bench/soak,$(BENCHES))

bench: $(BUILD)/cloister $(BENCH_RUN)
	@for b in $(BENCH_RUN); do echo "== $$b"; $$b || exit 1; done

# Bounded KBS soak, not part of check: SOAK_FLOWS full flows (default 10000)
# against `cloister kbs serve` with client aborts, slow clients, an admin
# writer and a SIGKILL + restart every 1,000 flows (docs/kbs.md).
soak: $(BUILD)/cloister $(BUILD)/bench/soak
	$(BUILD)/bench/soak $(BUILD)/cloister

FORMAT_SRC = $(LIB_SRC) $(CLI_SRC) $(sort $(wildcard tests/unit/*.c tests/unit/*.h)) $(FUZZ_SRC) \
	     $(BENCH_SRC) $(wildcard bench/*.h) include/cloister/*.h src/*/*.h

format:
	clang-format -i $(FORMAT_SRC)

# Every C file as the checked-in .clang-format writes it; names what differs.
format-check:
	@bad=$$(for f in $(FORMAT_SRC); do clang-format --dry-run -Werror "$$f" >/dev/null 2>&1 || echo "$$f"; done); \
	if [ -n "$$bad" ]; then echo "format-check: not formatted (run make format):" $$bad >&2; exit 1; fi; \
	echo "format-check: ok"

clean:
	rm -rf build
