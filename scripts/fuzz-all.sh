#!/usr/bin/env bash
# Runs each fuzz target of the module for a bounded time (default 10s).
#
# Go's fuzzing engine can end a clean run with "context deadline exceeded"
# when -fuzztime runs out while a worker is still handing over a new
# corpus entry (no failing input is written then). Such a run is repeated,
# up to twice; a real failure (a "Failing input written to" line) is never retried.
set -euo pipefail
fuzztime="${1:-10s}"
cd "$(dirname "$0")/.."
status=0
while IFS= read -r file; do
	pkg="./$(dirname "$file")"
	for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]*)' "$file" | awk '{print $2}'); do
		echo "fuzz $pkg $target ($fuzztime)"
		for try in 1 2 3; do
			log=$(mktemp)
			if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 2s "$pkg" 2>&1 | tee "$log"; then
				rm -f "$log"
				break
			fi
			if [ "$try" != 3 ] && grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log"; then
				echo "fuzz $pkg $target: the engine timed out handing over an input (no failure found); running it again"
				rm -f "$log"
				continue
			fi
			rm -f "$log"
			status=1
			break
		done
	done
done < <(grep -rl --include='*_test.go' -E '^func Fuzz' . | sort)
exit $status
