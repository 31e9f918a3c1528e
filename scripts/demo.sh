#!/usr/bin/env bash
# The qtool demo: the whole QLoRA story on the bundled stories260K model and
# a slice of tiny-shakespeare, on the CPU, in well under a minute.
#
#   inspect → convert GGUF → HF → quantize to NF4 (double quantization)
#   → QLoRA fine-tune → generate with and without the adapter
#   → merge into a 16-bit and into a re-quantized model → eval perplexity
#   → export the adapter as a GGUF LoRA for llama.cpp and lint it
#
# Each step prints the exact command it runs, so this doubles as a tutorial.
# At the end the demo checks its key outcomes and exits 1 if one fails.
#
# Usage: scripts/demo.sh [path/to/qtool]      (make demo builds and runs it)
# Outputs go to ${DEMO_DIR:-demo-out}; needs python3 to summarise --json output.
set -euo pipefail
cd "$(dirname "$0")/.."
qtool="${1:-bin/qtool}"
out="${DEMO_DIR:-demo-out}"
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
command -v "$py" >/dev/null || { echo "demo: python3 is needed to read qtool's --json output" >&2; exit 1; }
"$qtool" version >/dev/null || { echo "demo: cannot run $qtool (make build)" >&2; exit 1; }

gguf=fixtures/stories260K/stories260K.gguf
text=train/testdata/shakespeare-30k.txt # first 30,000 bytes of tiny-shakespeare (public domain)
prompt="First Citizen:"
# Tolerance for "the merged model scores what the adapter scores at run time":
# mean negative log-likelihood on the held-out text, in nats per token. A
# 16-bit merge of the f32 base only rounds each merged weight to f16
# (measured difference ~2e-5).
tol=1e-4
started=$SECONDS

rm -rf "$out"
mkdir -p "$out/eval"

bold='' plain=''
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; fi
section() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
step() {
	local shown="$*"
	printf '\n$ %s\n' "${shown//$qtool/qtool}"
	eval "$@"
}

section "0. the tool"
step "$qtool version"

section "1. inspect the GGUF (header only: metadata, tensors, totals)"
step "$qtool inspect $gguf --tensors 'blk.0.*'"

section "2. convert GGUF → Hugging Face folder (safetensors + config.json + tokenizer)"
step "$qtool convert $gguf -o $out/stories260K-hf"
step "ls $out/stories260K-hf"

section "3. quantize the HF folder to NF4 with double quantization (bitsandbytes layout)"
step "$qtool quantize $out/stories260K-hf -o $out/stories260K-nf4 --type nf4 --double-quant --stats --json > $out/quantize-nf4.json"
"$py" - "$out/quantize-nf4.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
t, q = d["totals"], [x for x in d["tensors"] if x.get("rmse") is not None]
params = sum(x["bytes_out"] * 8 / x["bits_per_param"] for x in q)
bits = sum(x["bytes_out"] * 8 for x in q) / params
print(f"  {len(q)} weight matrices → nf4+dq: {bits:.3f} bits/param (4-bit codes + 8-bit block scales")
print(f"    + per-tensor quant state; tiny matrices pay more for it than a 1B model's would)")
print(f"  whole model: {t['bytes_in']} → {t['bytes_out']} bytes, {t['bits_per_param']:.3f} bits/param "
      f"(embedding, lm_head and norms stay f32)")
print(f"  RMSE per matrix: mean {sum(x['rmse'] for x in q)/len(q):.4f}, worst {max(x['rmse'] for x in q):.4f}; "
      f"largest abs error {max(x['max_abs_err'] for x in q):.3f}")
EOF
step "$qtool inspect $out/stories260K-nf4 --no-metadata --tensors 'model.layers.0.*'"

section "4. QLoRA fine-tune on tiny-shakespeare (train on 24 KB, hold out the last 6 KB)"
step "head -c 24000 $text > $out/train.txt"
step "tail -c 6000 $text > $out/heldout.txt"
ft="--model $out/stories260K-hf --quantize nf4 --data $out/train.txt --val $out/heldout.txt -o $out/qlora --rank 8 --alpha 16 --seq-len 128 --batch 4 --max-steps 120"
echo "(--quantize nf4 re-encodes the frozen weights to NF4, blocks of 64 with f32 scales, into a"
echo " memory-mapped temporary file;"
echo " only the LoRA matrices A and B train)"
step "$qtool finetune $ft --dry-run"
step "$qtool finetune $ft --lr 3e-3 --warmup 10 --eval-every 20 --seed 42 --threads 2 --json > $out/finetune.jsonl"
"$py" - "$out/finetune.jsonl" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
steps = [l for l in lines if "loss" in l and not l.get("eval") and not l.get("done")]
evals = {l["step"]: l["val_loss"] for l in lines if l.get("eval")}
done = next(l for l in lines if l.get("done"))
top = max(l["loss"] for l in steps)
print("  step  train loss                                      held-out loss")
for l in steps:
    if l["step"] == 1 or l["step"] % 10 == 0:
        bar = "█" * round(40 * l["loss"] / top)
        val = f"{evals[l['step']]:.3f}" if l["step"] in evals else ""
        print(f"  {l['step']:4d}  {l['loss']:.3f} {bar:<40}  {val}")
print(f"  held-out loss {done['initial_val_loss']:.3f} → {done['final_val_loss']:.3f} "
      f"({done['steps']} steps, {done['tokens']} tokens, {done['seconds']:.1f} s, {done['trainable_params']} trainable params)")
EOF
step "ls $out/qlora"

section "5. generate with and without the adapter (same prompt, same sampling seed)"
step "$qtool generate --model $out/stories260K-hf --prompt '$prompt' -n 64 --temp 0.7 --seed 3 -q > $out/generate-base.txt"
step "$qtool generate --model $out/stories260K-hf --adapter $out/qlora --prompt '$prompt' -n 64 --temp 0.7 --seed 3 -q > $out/generate-qlora.txt"
"$py" - "$prompt" "$out/generate-base.txt" "$out/generate-qlora.txt" <<'EOF'
import sys, textwrap, itertools
prompt, files = sys.argv[1], sys.argv[2:]
cols = []
for f in files:
    rows = []
    for line in (prompt + open(f).read()).strip("\n").split("\n"):
        if line.strip() or (rows and rows[-1]):  # no runs of blank lines
            rows += textwrap.wrap(line, 36) or [""]
    cols.append(rows)
w = 38
print(f"\n  {'base model (TinyStories)':<{w}}| with the QLoRA adapter")
print(f"  {'-' * (w - 1)} + {'-' * (w - 1)}")
for a, b in itertools.zip_longest(*cols, fillvalue=""):
    print(f"  {a:<{w}}| {b}")
EOF

section "6. merge the adapter: into a 16-bit model, and into the re-quantized NF4 model"
report="grep -E '^  name|layers\.0\.|^merged'" # the report's header, layer 0 and summary
step "$qtool merge-adapter --model $out/stories260K-hf --adapter $out/qlora -o $out/merged-f16.gguf --dtype f16 | $report"
step "$qtool merge-adapter --model $out/stories260K-nf4 --adapter $out/qlora --requantize -o $out/merged-nf4 | $report"

section "7. eval perplexity on the held-out text"
echo "(eval reads the bitsandbytes folders in place: NF4 codes through the fused kernels)"
ev="--data $out/heldout.txt --ctx 128 --json"
step "$qtool eval --model $out/stories260K-hf $ev > $out/eval/base-f32.json"
step "$qtool eval --model $out/stories260K-hf --adapter $out/qlora $ev > $out/eval/base-f32+qlora.json"
step "$qtool eval --model $out/merged-f16.gguf $ev > $out/eval/merged-f16.json"
step "$qtool eval --model $out/stories260K-nf4 $ev > $out/eval/base-nf4.json"
step "$qtool eval --model $out/stories260K-nf4 --adapter $out/qlora $ev > $out/eval/base-nf4+qlora.json"
step "$qtool eval --model $out/merged-nf4 $ev > $out/eval/merged-nf4.json"
"$py" - "$out/eval" <<'EOF'
import json, os, sys
rows = [
    ("base-f32", "base (stories260K, f32)"),
    ("base-f32+qlora", "base f32 + adapter at run time"),
    ("merged-f16", "merged into f16 (merged-f16.gguf)"),
    ("base-nf4", "base NF4+dq (step 3, read in place)"),
    ("base-nf4+qlora", "base NF4+dq + adapter at run time"),
    ("merged-nf4", "merged, re-quantized NF4+dq"),
]
print(f"\n  {'model':<36} {'mean NLL':>9} {'perplexity':>11}")
for key, label in rows:
    d = json.load(open(os.path.join(sys.argv[1], key + ".json")))
    print(f"  {label:<36} {d['mean_nll']:9.4f} {d['perplexity']:11.2f}")
d = json.load(open(os.path.join(sys.argv[1], "base-f32.json")))
print(f"  ({d['tokens']} tokens scored: {d['chunks']} windows of {d['ctx']})")
EOF

section "8. export the adapter as a GGUF LoRA for llama.cpp, and lint it"
step "$qtool convert-adapter $out/qlora -o $out/qlora.gguf --base $gguf"
step "$qtool lint-adapter --model $gguf --adapter $out/qlora.gguf"
step "$qtool eval --model $gguf --adapter $out/qlora.gguf $ev > $out/eval/gguf+qlora-gguf.json"
echo "(llama.cpp: llama-cli -m $gguf --lora $out/qlora.gguf, or llama-export-lora to merge)"

section "9. checks"
fail=0
quiet() { "$@" >/dev/null; }
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then
		printf '  ok    %s\n' "$what"
	else
		printf '  FAIL  %s\n' "$what"
		fail=1
	fi
}
for p in stories260K-hf stories260K-nf4 qlora merged-f16.gguf merged-nf4 qlora.gguf; do
	check "$out/$p exists and passes qtool inspect" quiet "$qtool" inspect "$out/$p" --json
done
check "fine-tuning lowered the held-out loss by over 0.5 nats" "$py" -c '
import json, sys
d = [json.loads(l) for l in open(sys.argv[1]) if "done" in l][-1]
a, b = d["initial_val_loss"], d["final_val_loss"]
print(f"        held-out loss {a:.4f} → {b:.4f}")
sys.exit(b > a - 0.5)' "$out/finetune.jsonl"
nll() { # nll A B TOL: prints both; true when |A-B| <= TOL (TOL "<": A < B)
	"$py" -c '
import json, sys
a, b = (json.load(open(sys.argv[i]))["mean_nll"] for i in (1, 2))
print(f"        {a:.6f} vs {b:.6f} (Δ {a - b:+.2e})")
sys.exit(not (a < b if sys.argv[3] == "<" else abs(a - b) <= float(sys.argv[3])))' "$out/eval/$1.json" "$out/eval/$2.json" "$3"
}
check "the adapter lowers held-out NLL (f32 base)" nll base-f32+qlora base-f32 "<"
check "the adapter lowers held-out NLL (NF4 base)" nll base-nf4+qlora base-nf4 "<"
check "merged f16 model scores as base + adapter (|Δ| ≤ $tol nats/token)" nll merged-f16 base-f32+qlora "$tol"
check "re-quantized NF4 merge still beats the NF4 base" nll merged-nf4 base-nf4 "<"
check "GGUF adapter on the GGUF base scores as PEFT on HF (|Δ| ≤ $tol)" nll gguf+qlora-gguf base-f32+qlora "$tol"
check "the GGUF adapter lints clean (0 errors, 0 warnings)" "$py" -c '
import json, subprocess, sys
r = subprocess.run(sys.argv[1:], capture_output=True, text=True)
d = json.loads(r.stdout)
sys.exit(r.returncode != 0 or not d["ok"] or d["errors"] or d["warnings"])' "$qtool" lint-adapter --model "$gguf" --adapter "$out/qlora.gguf" --json

echo
if [ "$fail" != 0 ]; then
	echo "demo: FAILED (outputs in $out/)" >&2
	exit 1
fi
echo "demo: ok in $((SECONDS - started)) s (outputs in $out/)"
