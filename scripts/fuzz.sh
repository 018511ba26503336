#!/bin/sh
# Run every Go fuzz target of the repository for a short bounded time
# (FUZZTIME, default 10s each). A crasher is written by `go test` under
# the package's testdata/fuzz/<Target>/: commit it, it becomes a
# regression test run by every plain `go test`.
set -eu
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-10s}"
GO="${GO:-go}"
status=0
for f in $(grep -rl --include='*_test.go' '^func Fuzz' daemon hal platform 2>/dev/null | sort); do
	pkg="./$(dirname "$f")"
	for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
		echo "fuzz: $pkg $target ($FUZZTIME)"
		corpus="$pkg/testdata/fuzz/$target"
		before=$(ls "$corpus" 2>/dev/null | wc -l)
		if ! "$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg"; then
			# A failure that wrote no crasher is the fuzzing engine's
			# own (on a busy host its workers can miss the -fuzztime
			# deadline: "context deadline exceeded"): run it once more.
			if [ "$(ls "$corpus" 2>/dev/null | wc -l)" -eq "$before" ]; then
				echo "fuzz: $pkg $target failed without a crasher; once more" >&2
				"$GO" test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "$pkg" && continue
			fi
			echo "fuzz: $pkg $target FAILED (crasher under $corpus)" >&2
			status=1
		fi
	done
done
exit $status
