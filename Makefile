# daxwio build, test and demo entry points. Every target works on a fresh
# Debian machine after .ci/run (or the README's set-up line) has installed
# the toolchain and packages.

GO      ?= go
GOFLAGS ?=
export CGO_ENABLED ?= 0

.PHONY: all build test test-race test-short bench demo vet fmt fuzz clean soak

all: build

build:
	$(GO) build ./...

vet:
	$(GO) vet ./...

fmt:
	gofmt -l -w $$(git ls-files '*.go')

# test: everything CI runs. Sized for a 2-core machine.
test: vet
	$(GO) test -count=1 -timeout 20m ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -timeout 20m ./...

bench:
	$(GO) test -run '^$$' -bench . -benchtime 1s ./...

clean:
	rm -rf bin demo-report
