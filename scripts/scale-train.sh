#!/usr/bin/env bash
# Training at scale (issue 8): LoRA/QLoRA steps on synthetic Llama-shaped
# models far larger than the toy ones, with seconds per step, the peak
# memory split (anonymous vs file-backed) and the --dry-run estimate beside
# the measurement.
#
#   7b   Llama 2 7B shape, f16 GGUF (13.5 GB), --quantize nf4 (QLoRA: the
#        projections re-encoded to NF4 on the fly while the model opens)
#   13b  Llama 2 13B shape, f16 GGUF (26 GB, larger than the RAM of a
#        24 GiB machine): plain LoRA over the f16 weights, which are read
#        through the page cache
#
# Both: rank 8 on q_proj and v_proj, --seq-len 256, --batch 1,
# --grad-checkpoint, ${STEPS:-2} steps (STEPS_7B / STEPS_13B override), on
# train/testdata/shakespeare-30k.txt (the synthetic models' byte-level
# SentencePiece vocabulary takes any text).
#
# Usage: scripts/scale-train.sh [--only 7b|13b|small] [--dry-run-only] [--keep]
#
# (--only small runs the 7b recipe on the 15M-parameter "small" shape: a
# check of the script itself in seconds.)
#
# The generated models are cached in ${SCALE_DIR:-/tmp/qtool-scale} and reused
# by the next run; each needs its size free on disk (the 7B model is deleted
# first when the 13B one does not fit beside it). --keep leaves the models
# there; otherwise the 13B model is deleted at the end (the 7B one is kept).
# The peak anonymous RSS is sampled from /proc/PID/status every 0.5 s
# (Linux keeps a high-water mark for the total RSS only); the step lines'
# own figures (taken at each step's end) are printed beside it. The runs
# are niced; the machine can be shared. Needs go and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"

only=""
dry_only=0
keep=0
while [ $# -gt 0 ]; do
	case "$1" in
	--only) only="${2:-}"; shift 2 ;;
	--only=*) only="${1#--only=}"; shift ;;
	--dry-run-only) dry_only=1; shift ;;
	--keep) keep=1; shift ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "scale-train: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
done
case "$only" in
"") models="7b 13b" ;;
7b | 13b | small) models="$only" ;;
*) echo "scale-train: --only $only: want 7b, 13b or small" >&2; exit 2 ;;
esac

dir="${SCALE_DIR:-/tmp/qtool-scale}"
data="$PWD/train/testdata/shakespeare-30k.txt"
py=python3
[ -x /usr/bin/python3 ] && py=/usr/bin/python3
command -v "$py" >/dev/null || { echo "scale-train: python3 is needed to read qtool's --json output" >&2; exit 1; }
mkdir -p "$dir/bin"
go build -o "$dir/bin/qtool" ./cmd/qtool
go build -o "$dir/bin/genmodel" ./fixtures/cmd/genmodel
qtool="$dir/bin/qtool"

# bytes of the f16 GGUF of each preset (parameters × 2, plus the header).
declare -A need=([small]=31000000 [7b]=13500000000 [13b]=26100000000)

avail() { df --output=avail -B1 "$dir" | tail -1 | tr -d ' '; }

# model PRESET: the cached f16 GGUF, generated when missing.
model() {
	local p="$1" f="$dir/$1-f16.gguf"
	if [ ! -f "$f" ]; then
		if [ "$(avail)" -lt $((need[$p] + (1 << 30))) ] && [ "$p" = 13b ] && [ -f "$dir/7b-f16.gguf" ]; then
			echo "scale-train: $(($(avail) >> 30)) GiB free: deleting the 7B model to make room" >&2
			rm -f "$dir/7b-f16.gguf"
		fi
		if [ "$(avail)" -lt $((need[$p] + (1 << 30))) ]; then
			echo "scale-train: $p needs $((need[$p] >> 30)) GiB free in $dir, $(($(avail) >> 30)) GiB are" >&2
			exit 1
		fi
		local t0=$SECONDS
		nice -n 10 "$dir/bin/genmodel" --preset "$p" --dtype f16 --format gguf -o "$f" >&2
		echo "scale-train: generated $f in $((SECONDS - t0)) s" >&2
	fi
	echo "$f"
}

# sample PID OUT: the largest RssAnon, RssFile and VmHWM (kB) of PID, every
# 0.5 s until it exits, written to OUT.
sample() {
	local pid="$1" out="$2" anon=0 file=0 hwm=0 k v
	while [ -r "/proc/$pid/status" ]; do
		while read -r k v _; do
			case "$k" in
			RssAnon:) [ "$v" -gt "$anon" ] && anon=$v ;;
			RssFile:) [ "$v" -gt "$file" ] && file=$v ;;
			VmHWM:) [ "$v" -gt "$hwm" ] && hwm=$v ;;
			esac
		done <"/proc/$pid/status" 2>/dev/null || true
		sleep 0.5
	done
	echo "$anon $file $hwm" >"$out"
}

run_one() {
	local p="$1" m steps quant=() what
	m=$(model "$p")
	case "$p" in
	7b | small) steps="${STEPS_7B:-${STEPS:-2}}"; quant=(--quantize nf4); what="QLoRA (--quantize nf4)" ;;
	13b) steps="${STEPS_13B:-${STEPS:-2}}"; what="LoRA over the f16 weights" ;;
	esac
	local args=(finetune --model "$m" --data "$data" "${quant[@]}" --rank 8 --target q_proj,v_proj
		--seq-len 256 --batch 1 --grad-checkpoint --max-steps "$steps" --seed 1 --json)
	local log="$dir/$p"
	echo "== $p: $(basename "$m") ($(($(stat -c %s "$m") >> 20)) MiB), $what, rank 8 on q_proj,v_proj, seq 256, batch 1, grad checkpoint, $steps steps"
	echo "\$ qtool ${args[*]} --dry-run"
	local t0=$SECONDS
	nice -n 10 "$qtool" "${args[@]}" --dry-run >"$log.plan.json" &
	local pid=$!
	sample "$pid" "$log.plan.mem" &
	local spid=$!
	wait "$pid"
	wait "$spid"
	echo "   (dry run: $((SECONDS - t0)) s)"
	if [ "$dry_only" = 1 ]; then
		: >"$log.steps.jsonl"
		echo "0 0 0" >"$log.mem"
		echo "0 0" >"$log.wall"
	else
		echo "\$ qtool ${args[*]} -o $log-adapter --force"
		t0=$(date +%s%N)
		nice -n 10 "$qtool" "${args[@]}" -o "$log-adapter" --force >"$log.steps.jsonl" &
		pid=$!
		sample "$pid" "$log.mem" &
		spid=$!
		wait "$pid"
		wait "$spid"
		echo "$t0 $(date +%s%N)" >"$log.wall"
	fi
	"$py" - "$log" "$dry_only" <<'EOF'
import json, sys
log, dry_only = sys.argv[1], sys.argv[2] == "1"
MiB = 1 << 20
plan = json.load(open(log + ".plan.json"))
steps, done = [], None
for line in open(log + ".steps.jsonl"):
    m = json.loads(line)
    if m.get("done"):
        done = m
    elif "step" in m and not m.get("eval"):
        steps.append(m)
anon_kb, file_kb, hwm_kb = map(int, open(log + ".mem").read().split())
t0, t1 = map(int, open(log + ".wall").read().split())
wall = (t1 - t0) / 1e9
terms = [("adapter", "adapter_bytes"), ("optimizer", "optimizer_bytes"), ("activations", "activation_bytes"),
         ("buffers", "buffer_bytes"), ("model heap", "model_heap_bytes")]
parts = ", ".join(f"{n} {plan[k] / MiB:.1f}" for n, k in terms if plan.get(k))
est = plan["estimated_anon_bytes"]
headroom = est - plan["runtime_bytes"] - plan["live_heap_bytes"]
print(f"   trainable        {plan['trainable_params']} of {plan['model_params']} parameters")
print(f"   dry-run estimate anonymous {est / MiB:.0f} MiB = runtime {plan['runtime_bytes'] / MiB:.0f} + live heap "
      f"{plan['live_heap_bytes'] / MiB:.0f} ({parts}) + GC headroom {headroom / MiB:.0f} "
      f"(garbage {plan['step_garbage_bytes'] / MiB:.0f} MiB/step)")
q = plan.get("quantized_bytes", 0)
print(f"                    file-backed: weights {plan['mapped_weight_bytes'] / MiB:.0f} MiB mapped"
      + (f", NF4 codes {q / MiB:.0f} MiB in mapped temporary files (quantized with {plan['quantize_scratch_bytes'] / MiB:.0f} MiB of scratch)" if q else ""))
if dry_only:
    sys.exit(0)
if done is None:
    print("   the run did not finish: see " + log + ".steps.jsonl")
    sys.exit(1)
prev = 0.0
per = []
for s in steps:
    per.append(s["elapsed"] - prev)
    prev = s["elapsed"]
print(f"   open{' + quantize' if q else '           '} {wall - done['seconds']:.1f} s before the first step ({wall:.1f} s in all)")
print(f"   seconds/step     {done['seconds_per_step']:.1f} ({', '.join(f'{x:.1f}' for x in per)}); {done['tokens_per_s']:.2f} tokens/s")
print(f"   peak RSS         {hwm_kb * 1024 / MiB:.0f} MiB (VmHWM)")
print(f"   peak anonymous   {anon_kb * 1024 / MiB:.0f} MiB sampled every 0.5 s by this script; {done['peak_rss_anon'] / MiB:.0f} MiB by qtool (--json)")
print(f"   peak file-backed {file_kb * 1024 / MiB:.0f} MiB sampled; {done['peak_rss_file'] / MiB:.0f} MiB by qtool (mapped pages in the page cache)")
peak_anon = max(anon_kb * 1024, done["peak_rss_anon"])
print(f"   measured / dry-run estimate (anonymous): {peak_anon / est:.2f}")
print(f"   final loss       {done['final_loss']:.4f}")
EOF
}

for p in $models; do
	run_one "$p"
done
if [ "$keep" = 0 ] && [ -f "$dir/13b-f16.gguf" ]; then
	rm -f "$dir/13b-f16.gguf"
	echo "scale-train: deleted $dir/13b-f16.gguf (--keep keeps it)"
fi
