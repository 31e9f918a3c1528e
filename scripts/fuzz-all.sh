#!/usr/bin/env bash
# Runs each fuzz target of the module for a bounded time (default 10s).
set -euo pipefail
fuzztime="${1:-10s}"
cd "$(dirname "$0")/.."
status=0
while IFS= read -r file; do
	pkg="./$(dirname "$file")"
	for target in $(grep -oE '^func (Fuzz[A-Za-z0-9_]*)' "$file" | awk '{print $2}'); do
		echo "fuzz $pkg $target ($fuzztime)"
		if ! go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 2s "$pkg"; then
			status=1
		fi
	done
done < <(grep -rl --include='*_test.go' -E '^func Fuzz' . | sort)
exit $status
