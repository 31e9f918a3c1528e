#!/usr/bin/env bash
# Ship a LoRA adapter: lint it against its base, export it as a GGUF LoRA for
# llama.cpp, lint that, and merge it into a 16-bit GGUF, stopping at the first
# problem with qtool's exit code and a one-line reason.
#
#   examples/adapter-pipeline.sh BASE ADAPTER OUTDIR [TEXT]
#
# BASE is a GGUF file or a Hugging Face folder; ADAPTER a PEFT or MLX folder
# (or a GGUF LoRA). With TEXT, the merged model's perplexity is compared with
# the base + adapter applied at run time; they must agree to 1e-3 nats/token.
# Writes OUTDIR/adapter.gguf and OUTDIR/merged-f16.gguf.
# qtool comes from $QTOOL or PATH; python3 reads the JSON.
set -uo pipefail
qtool() { command "${QTOOL:-qtool}" "$@"; }

[ $# -ge 3 ] || { echo "usage: $0 BASE ADAPTER OUTDIR [TEXT]" >&2; exit 2; }
base=$1 adapter=$2 outdir=$3 text=${4:-}
mkdir -p "$outdir" || exit 1

# run STEP CMD...: runs qtool CMD with --json, keeps stdout in $json; on a
# non-zero exit prints what the exit code means and the error, and exits.
run() {
	local step=$1 rc=0
	shift
	json=$(qtool "$@" --json 2>/dev/null) || rc=$?
	[ $rc -eq 0 ] && return 0
	case $rc in
	2) why="usage error" ;;
	3) why="bad input" ;;
	4) why="unsupported input" ;;
	130) why="interrupted" ;;
	*) why="failure" ;;
	esac
	msg=$(printf '%s' "$json" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("error", ""))' 2>/dev/null)
	echo "$step: exit $rc ($why): ${msg:-no JSON error}" >&2
	# lint-adapter lists its problems: show the first few.
	printf '%s' "$json" | python3 -c '
import json, sys
for p in json.load(sys.stdin).get("problems", [])[:3]:
    print("  " + ": ".join(p[k] for k in ("severity", "target", "message")))' >&2 2>/dev/null
	exit $rc
}
field() { printf '%s' "$json" | python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

run "lint $adapter" lint-adapter --model "$base" --adapter "$adapter"
echo "lint: $(field 'd["pairs"]') pairs, $(field 'd["warnings"]') warnings"

run "convert-adapter" convert-adapter "$adapter" -o "$outdir/adapter.gguf" --base "$base" --force
run "lint adapter.gguf" lint-adapter --model "$base" --adapter "$outdir/adapter.gguf"
echo "adapter.gguf: $(field 'd["matched"]') of $(field 'd["pairs"]') pairs match the base"

run "merge-adapter" merge-adapter --model "$base" --adapter "$adapter" -o "$outdir/merged-f16.gguf" --dtype f16 --force
echo "merged: $(field 'd["report"]["merged"]') tensors, smallest share of the update kept $(field 'round(d["report"]["min_survived"], 4)'), $(field 'd["report"]["warnings"]') warnings"
run "inspect merged" inspect "$outdir/merged-f16.gguf"
echo "merged-f16.gguf: $(field 'd["totals"]["bytes"]') bytes"

if [ -n "$text" ]; then
	run "eval base+adapter" eval --model "$base" --adapter "$adapter" --data "$text" --ctx 128 --max-chunks 20
	a=$(field 'd["mean_nll"]')
	run "eval merged" eval --model "$outdir/merged-f16.gguf" --data "$text" --ctx 128 --max-chunks 20
	b=$(field 'd["mean_nll"]')
	if ! python3 -c 'import sys; a, b = map(float, sys.argv[1:]); sys.exit(abs(a - b) > 1e-3)' "$a" "$b"; then
		echo "merged model scores $b nats/token, base + adapter $a: they differ by more than 1e-3" >&2
		exit 1
	fi
	echo "perplexity check: base + adapter $a, merged $b nats/token"
fi
echo "ok: $outdir/adapter.gguf $outdir/merged-f16.gguf"
