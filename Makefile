# sipedge: `make run` starts the daemon on the embedded default;
# `make test` installs what the tests need (if missing) and runs them all.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# The build number orders builds (tags vMAJOR.MINOR.PATCH, then this).
BUILD    ?= $(shell git rev-list --count HEAD 2>/dev/null || echo 0)
# The source date stamps the image's file systems and the bundle.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
export SOURCE_DATE_EPOCH
# UPDATE_PUBKEY names the file with the public key (base64) that verifies
# update bundles (`go run ./scripts/mkupdate -keygen PRIV PUB`); UPDATE_KEY
# the private key that `make update` signs with.
UPDATE_PUBKEY ?=
UPDATE_KEY ?=
LDFLAGS  := -s -w -X github.com/sipedge/sipedge/daemon/version.Version=$(VERSION) -X github.com/sipedge/sipedge/daemon/version.Build=$(BUILD) \
	$(if $(UPDATE_PUBKEY),-X github.com/sipedge/sipedge/platform/bundle.ReleaseKey=$(shell cat $(UPDATE_PUBKEY)))
BIN      := bin/sipedge
# One package at a time: the timing tests (VIP takeover, watchdog) stay
# honest on a 2-core machine.
TESTFLAGS ?= -count=1 -timeout 40m -p 1

.PHONY: all build run test test-short fuzz deps bench pgo image update qemu lab lab-down vet clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./daemon

# Runs the daemon in the foreground on the embedded default configuration
# (single profile, SIP on 127.0.0.1:5060, web on 127.0.0.1:8080, data in ./var).
run: build
	./$(BIN) run

deps:
	bash scripts/test-deps.sh

test: deps
	$(GO) vet ./...
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh
	$(GO) test $(TESTFLAGS) ./...
	SIPEDGE_BALANCER_FULLPATH=1 $(GO) test $(TESTFLAGS) -run '$(FULLPATH_TESTS)' ./daemon/balancer/

# The balancer's behaviour tests run a second time with every message on
# the full path (sip.raw_paths: false): both readings of a request must
# behave the same. The raw paths' own tests (TestFast*) and the load
# tests are left out.
FULLPATH_TESTS ?= ^Test(CallsSpreadPerAlgorithm|CoreKilledMidRun|CoreComesBack|DrainedCore|MaxCalls503|Cancel|Intake|NoCore503|TCPCaller|RingingCallMovesWhenCoreDies|MaxForwardsNotDigits|NextHopGoneAnswered|OwnAnswersNotAmplified|NoDNSOnPacketPath|DualStackCalls|FinalRetransmittedUntilAck|FinalUnackedEndsAtTimerH|Core503Becomes500|LateAnswerEnded|TimerCRestartsOnProvisional|RequestRetransmittedUntilAttemptTimer|Relay.*|TCP.*)$$

# Each fuzz target runs this long in `make test` (crashers become
# regression cases under testdata/fuzz/).
FUZZTIME ?= 10s

# Unit tests only: no root, no peers.
test-short:
	$(GO) test -short -count=1 ./...

fuzz:
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

vet:
	$(GO) vet ./...

bench: build
	bash scripts/bench.sh

# The compiler optimises the daemon for daemon/default.pgo (Go's
# profile-guided optimisation, used by every build of ./daemon). This
# refreshes it from the CPU profile of the latest `make bench`, taken at
# the sustained rate; commit it with the change it was measured on.
pgo:
	cp "$$(ls results/bench-*/sipedge/cpu-*.pb.gz | tail -1)" daemon/default.pgo

# out/vmlinuz, out/initramfs-*.cpio.gz, and out/disk.img (GRUB, slots A
# and B, /data) with out/slot.img.
image: build
	bash scripts/image.sh

# out/sipedge-update.bundle: out/slot.img signed with UPDATE_KEY.
update: image
	go run ./scripts/mkupdate -slot out/slot.img -version '$(VERSION)' -build '$(BUILD)' -key '$(UPDATE_KEY)' -out out/sipedge-update.bundle

qemu: image
	bash scripts/qemu.sh

lab: build
	bash scripts/lab.sh up

lab-down:
	bash scripts/lab.sh down

clean:
	rm -rf bin out
