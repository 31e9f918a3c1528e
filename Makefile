# qtool — see README.md. `make demo` runs the main job on the bundled model;
# `make test` runs every test (Go unit tests, reference-client interop tests,
# short fuzzing of every parser).
GO        ?= go
BIN       ?= bin/qtool
FUZZTIME  ?= 10s
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/qtool-dev/qtool/cmd/internal/cli.Version=$(VERSION)
# npm folders of the reference clients the tests drive (versions pinned in
# each package.json / package-lock.json).
NPM_CI    := formats/interop/node formats/vocab/testdata/node tokenizer/chat/testdata/node
# node-llama-cpp's lock cannot list the other platforms' binaries (the
# registry mirror lacks them), so this one is installed, not ci'd.
NPM_INST  := convert/testdata/node

.PHONY: all build test unit vet fuzz bench bench-gemm bench-infer bench-finetune scale-train demo deps fixtures clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/qtool

# Reference clients the interop tests drive (pinned in package-lock.json).
deps:
	@for d in $(NPM_CI); do \
		echo "npm ci in $$d"; \
		(cd $$d && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || exit 1; \
	done
	@for d in $(NPM_INST); do \
		echo "npm install in $$d"; \
		npm install --ignore-scripts --no-audit --no-fund --omit=optional --loglevel=error --prefix $$d || exit 1; \
	done
	@/usr/bin/python3 -c 'import sentencepiece' 2>/dev/null || echo "note: python3-sentencepiece missing (apt-get install -y python3-sentencepiece); vocab tests will skip"

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	@scripts/check-deps.sh

unit:
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -tags noasm ./kernels

# Run every fuzz target for FUZZTIME each.
fuzz:
	@scripts/fuzz-all.sh $(FUZZTIME)

test: deps vet unit fuzz

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Comparisons against the reference tools, each in one script run (minutes;
# they generate synthetic models under /tmp and reuse them):
# GEMM and fused weight types against OpenBLAS;
bench-gemm:
	@scripts/bench-gemm.sh
# prompt/generation tokens/s on a 1B-shaped model against llama.cpp;
bench-infer: build deps
	@scripts/bench-infer.sh
# seconds per fine-tuning step against PyTorch, and peak RSS split;
bench-finetune: build
	@scripts/bench-finetune.sh
# QLoRA on a 7B-shaped model and LoRA on a 13B-shaped one larger than RAM.
scale-train:
	@scripts/scale-train.sh

demo: build
	@scripts/demo.sh $(BIN)

fixtures:
	$(GO) run ./fixtures/cmd/genmodel --preset tiny --format gguf -o fixtures/synthetic/tiny.gguf --force

clean:
	rm -rf bin
