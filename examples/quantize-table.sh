#!/usr/bin/env bash
# Quantize one model to several types and collect the `--json` summaries
# into one table (and one JSON document, summary.json).
#
#   examples/quantize-table.sh MODEL OUTDIR [TYPE...]
#
# MODEL is a GGUF file (ggml types: q8_0, q6_k, q4_k_m, iq4_nl, …) or a
# Hugging Face folder (bitsandbytes types: nf4, fp4, int8; add "+dq" for
# double quantization, e.g. nf4+dq). A type the container cannot hold makes
# qtool exit 4 (unsupported): that row is marked "skipped" and the loop goes
# on. Any other failure stops the script with qtool's exit code.
# qtool comes from $QTOOL or PATH; python3 reads the JSON (jq would do too:
# `jq '.totals.bits_per_param' q8_0.json`).
set -euo pipefail
qtool() { command "${QTOOL:-qtool}" "$@"; }

[ $# -ge 2 ] || { echo "usage: $0 MODEL OUTDIR [TYPE...]" >&2; exit 2; }
model=$1 outdir=$2
shift 2
if [ $# -eq 0 ]; then
	if [ -d "$model" ]; then set -- nf4 nf4+dq fp4 int8; else set -- q8_0 q6_k q5_0 q4_k_m iq4_nl q4_0; fi
fi
mkdir -p "$outdir"
name=$(basename "${model%/}" .gguf)

for t in "$@"; do
	flags=(--type "${t%+dq}" --stats --json --force)
	[[ $t == *+dq ]] && flags+=(--double-quant)
	if [ -d "$model" ]; then dst="$outdir/$name-$t"; else dst="$outdir/$name-$t.gguf"; fi
	rc=0
	qtool quantize "$model" -o "$dst" "${flags[@]}" >"$outdir/$t.json" 2>/dev/null || rc=$?
	case $rc in
	0) echo "$t: ok → $dst" >&2 ;;
	4) echo "$t: skipped (exit 4, unsupported for this container)" >&2 ;;
	*)
		# With --json, a failure is a JSON document too: {"error": …, "exit_code": …}.
		echo "$t: qtool quantize failed (exit $rc): $(python3 -c 'import json,sys; print(json.load(sys.stdin)["error"])' <"$outdir/$t.json" 2>/dev/null || cat "$outdir/$t.json")" >&2
		exit "$rc"
		;;
	esac
done

# One JSON document for all types, and a table for people.
python3 - "$outdir" "$@" <<'PY' >"$outdir/summary.json"
import json, os, sys
outdir, rows = sys.argv[1], []
for t in sys.argv[2:]:
    d = json.load(open(os.path.join(outdir, t + ".json")))
    if "error" in d:
        rows.append({"type": t, "ok": False, "exit_code": d["exit_code"], "error": d["error"]})
        continue
    q = [x for x in d["tensors"] if x.get("rmse") is not None]
    rows.append({
        "type": t, "ok": True, "output": d["output"],
        "bytes": d["totals"]["bytes_out"], "bits_per_param": d["totals"]["bits_per_param"],
        "fallbacks": d["totals"]["fallbacks"],
        "max_rmse": max((x["rmse"] for x in q), default=0),
        "max_abs_err": max((x["max_abs_err"] for x in q), default=0),
    })
json.dump(rows, sys.stdout, indent=1)
PY
python3 - "$outdir/summary.json" <<'PY'
import json, sys
print(f"{'type':<8} {'bytes':>9} {'bits/param':>10} {'fallbacks':>9} {'max RMSE':>9} {'max |err|':>9}")
for r in json.load(open(sys.argv[1])):
    if r["ok"]:
        print(f"{r['type']:<8} {r['bytes']:>9} {r['bits_per_param']:>10.3f} {r['fallbacks']:>9} {r['max_rmse']:>9.4f} {r['max_abs_err']:>9.4f}")
    else:
        print(f"{r['type']:<8} skipped (exit {r['exit_code']})")
PY
