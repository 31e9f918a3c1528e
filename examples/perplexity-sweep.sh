#!/usr/bin/env bash
# How much perplexity does each quantization type cost? Quantize a GGUF
# model to each TYPE, evaluate every file on the same text, and print a
# table (plus one JSON line per model in OUTDIR/results.jsonl).
#
#   examples/perplexity-sweep.sh MODEL.gguf TEXT OUTDIR [TYPE...]
#
# Eval settings: windows of 128 tokens, at most 20 of them (env CTX and
# CHUNKS change that). The script stops at the first failing qtool command
# and exits with its code (3: bad input, 4: unsupported, …).
# qtool comes from $QTOOL or PATH; python3 reads the JSON.
set -euo pipefail
qtool() { command "${QTOOL:-qtool}" "$@"; }

[ $# -ge 3 ] || { echo "usage: $0 MODEL.gguf TEXT OUTDIR [TYPE...]" >&2; exit 2; }
model=$1 text=$2 outdir=$3
shift 3
[ $# -gt 0 ] || set -- q8_0 q5_0 q4_k_m iq4_nl q4_0
mkdir -p "$outdir"
: >"$outdir/results.jsonl"

# evaluate LABEL FILE: one JSON line {type, bytes, bits_per_param, mean_nll, perplexity}.
evaluate() {
	local label=$1 file=$2 size ev
	size=$(qtool inspect "$file" --json | python3 -c 'import json,sys; t=json.load(sys.stdin)["totals"]; print(t["bytes"], t["bits_per_param"])')
	ev=$(qtool eval --model "$file" --data "$text" --ctx "${CTX:-128}" --max-chunks "${CHUNKS:-20}" --json)
	python3 -c 'import json,sys; b, bits = sys.argv[2].split(); e = json.loads(sys.argv[3])
print(json.dumps({"type": sys.argv[1], "bytes": int(b), "bits_per_param": float(bits), "mean_nll": e["mean_nll"], "perplexity": e["perplexity"]}))' \
		"$label" "$size" "$ev" >>"$outdir/results.jsonl"
	echo "$label: done" >&2
}

evaluate base "$model"
for t in "$@"; do
	qtool quantize "$model" -o "$outdir/$t.gguf" --type "$t" --force -q >/dev/null
	evaluate "$t" "$outdir/$t.gguf"
done

python3 - "$outdir/results.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
base = rows[0]["mean_nll"]
print(f"{'type':<8} {'bytes':>9} {'bits/param':>10} {'perplexity':>10} {'Δ NLL':>8}")
for r in rows:
    print(f"{r['type']:<8} {r['bytes']:>9} {r['bits_per_param']:>10.3f} {r['perplexity']:>10.3f} {r['mean_nll'] - base:>+8.4f}")
PY
