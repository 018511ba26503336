#!/usr/bin/env bash
# make bench: SIPp load through sipedge and through Kamailio's dispatcher,
# the same way in the same run, on loopback. Bounded in calls and time
# (about 20 minutes with the TCP and TLS rows; -stream-only: only those, a few;
# -overload-only RATE -rounds 3: a few). Figures, logs, profiles and plot.png go to one
# results folder. Extra arguments go to the bench program
# (e.g. scripts/bench.sh -steps 1000,2000 -sustain 30s -dialogs 0).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/test-deps.sh
out="results/bench-$(date -u +%Y%m%dT%H%M%SZ)"
go run ./scripts/bench -out "$out" -bin bin/sipedge "$@"
