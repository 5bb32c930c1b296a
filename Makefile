# Wrappers over CMake. `make demo` and `make test` do all set-up on a fresh Debian 12.
BUILD ?= build
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
PREFIX ?= /usr/local
JOBS ?= $(shell nproc)
CONFIGURE = cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null

.PHONY: all deps demo-deps build guest product test test-kvm fuzz demo bench install clean

all: build

deps:
	scripts/install-deps.sh

demo-deps:
	scripts/install-deps.sh --demo

build: deps
	$(CONFIGURE)
	cmake --build $(BUILD) -j$(JOBS)

guest: deps
	$(CONFIGURE)
	cmake --build $(BUILD) --target guest

# What a user runs (the CLI, the shim, the guest image), without the tests: what `make demo`
# waits for (the tests' binaries are as much compiling again).
product: demo-deps
	$(CONFIGURE)
	cmake --build $(BUILD) -j$(JOBS) --target guest vessel vessel-shim

test: build
	cd $(BUILD) && ctest --output-on-failure

# Only the KVM tests: directly where this host's KVM runs the guest, and inside a nested L1 VM.
test-kvm: build
	cd $(BUILD) && ctest --output-on-failure -L kvm

# libFuzzer targets (tests/fuzz), built with clang, each run for FUZZ_SECONDS.
fuzz: deps
	cmake -S tests/fuzz -B $(FUZZ_BUILD) -DCMAKE_CXX_COMPILER=clang++ >/dev/null
	cmake --build $(FUZZ_BUILD) -j$(JOBS)
	scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

demo: product
	scripts/demo.sh $(BUILD)

bench: build
	python3 bench/start_latency.py --build $(BUILD)
	python3 bench/throughput.py --build $(BUILD)
	python3 bench/files.py --build $(BUILD)
	python3 bench/scale.py --build $(BUILD)

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(FUZZ_BUILD)
