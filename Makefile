# Occlumency: thin wrapper over CMake. See README.md.
BUILD        ?= build/release
BUILD_TEST   ?= build/asan
JOBS         ?= $(shell nproc)
ZOO_DIR      ?= build/zoo
DEPS_STAMP   := build/.deps-ok

.PHONY: all deps build test demo scale-demo check-zoo check-zoo-extra check-fmnist check-onnx check-deploy bench-native fuzz-build fuzz-smoke fuzz soak clean

all: build

# Installs what is missing (idempotent); re-run when the script changes.
$(DEPS_STAMP): scripts/install-deps.sh tools/ort/package.json
	bash scripts/install-deps.sh
	@mkdir -p build && touch $@

deps: $(DEPS_STAMP)

build: $(DEPS_STAMP)
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The test build: warnings as errors, AddressSanitizer + UBSan.
test: $(DEPS_STAMP)
	cmake -S . -B $(BUILD_TEST) -DCMAKE_BUILD_TYPE=Debug -DOCC_SANITIZE=ON >/dev/null
	cmake --build $(BUILD_TEST) -j $(JOBS)
	cd $(BUILD_TEST) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  ctest --output-on-failure -j $(JOBS)

demo: build
	bash scripts/demo.sh $(BUILD)/occ

# A key broker, 3 occ serve replicas of an encrypted pack behind HAProxy (TCP
# passthrough), attested load, one replica killed: "scale-demo: N answered, 0 lost, R retried".
scale-demo: build
	bash scripts/scale-demo.sh $(BUILD)/occ

# Exports the torchvision zoo, packs it, compares occ with PyTorch and ONNX Runtime.
check-zoo: build
	bash scripts/check-zoo.sh $(BUILD)/occ $(ZOO_DIR)

# Torchvision classifiers outside the zoo, exported and checked the same way
# (ZOO_EXTRA_DIR=/path reuses an export; it never falls back to the zoo's cache).
ZOO_EXTRA_DIR    ?= build/zoo-extra
ZOO_EXTRA_MODELS ?= shufflenet_v2_x1_0 mnasnet1_0 efficientnet_b0 densenet121 regnet_y_400mf \
                    mobilenet_v3_small convnext_tiny
check-zoo-extra: build
	MODELS="$(ZOO_EXTRA_MODELS)" OCC_ZOO_CACHE= WORK_DIR=build/check-zoo-extra \
	  bash scripts/check-zoo.sh $(BUILD)/occ $(ZOO_EXTRA_DIR)

# All 10,000 Fashion-MNIST test images: accuracy >= 90% and agreement with ONNX Runtime.
check-fmnist: build
	bash scripts/check-fmnist.sh $(BUILD)/occ

# The ONNX project's node tests (libonnx-testdata): pass/total, per-operator table,
# one reason per failure, crashes apart; writes docs/onnx-conformance.md.
check-onnx: build
	bash scripts/check-onnx.sh $(BUILD)/occ

# The real-SGX deployment files (deploy/): renders the kustomization with
# kubectl kustomize, validates the YAML and the Kubernetes contract, the
# Gramine manifest template (TOML, keys, trusted libraries = ldd of occ) and
# the Dockerfile. Nothing here can run SGX; docs/deploy.md says what is checked.
check-deploy: build
	python3 deploy/check.py --occ $(BUILD)/occ

bench-native: build
	bash bench/native.sh $(BUILD)/occ $(ZOO_DIR)

# libFuzzer targets (clang): every fuzz/fuzz_*.c, seeds in fuzz/corpus/<name>/.
FUZZ_BUILD   ?= build/fuzz
FUZZ_SECONDS ?= 600
FUZZ_SMOKE_SECONDS ?= 30
fuzz-build: $(DEPS_STAMP)
	CC=clang cmake -S . -B $(FUZZ_BUILD) -DCMAKE_BUILD_TYPE=Debug -DOCC_FUZZ=ON >/dev/null
	cmake --build $(FUZZ_BUILD) -j $(JOBS)

# Short run of each target (CI); `make fuzz FUZZ_SECONDS=600` for long runs.
fuzz-smoke: fuzz-build
	bash scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SMOKE_SECONDS)

fuzz: fuzz-build
	bash scripts/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# Soak: CONNECTIONS attested connections for MINUTES against occ serve --enclave emu on loopback;
# requests/s, p50/p99, failed requests, server RSS after warm-up and at the end (scripts/soak.sh).
CONNECTIONS ?= 32
MINUTES     ?= 10
MODEL       ?= mobilenet_v2
soak: build
	bash scripts/soak.sh $(BUILD)/occ $(CONNECTIONS) $(MINUTES) $(MODEL)

clean:
	rm -rf build
