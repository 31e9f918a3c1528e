#!/usr/bin/env bash
# Times `qtool finetune` against the same LoRA training step in PyTorch (CPU),
# and reports qtool's peak resident memory split into anonymous and
# file-backed pages.
#
#   scripts/bench-finetune.sh            # stories260K, 1B f16, 1B NF4
#   BENCH_CASES=stories scripts/bench-finetune.sh
#   BENCH_QTOOL=/path/to/qtool BENCH_TORCH=0 BENCH_RESULTS=old.jsonl scripts/bench-finetune.sh  # another build, qtool only
#
# Cases (BENCH_CASES, space-separated; default all three):
#   stories  stories260K (fixtures/stories260K-hf, f32), seq 128 × batch 4, 20 steps
#   1b-f16   a Llama-3.2-1B-shaped synthetic model (fixtures preset "1b",
#            stored f16: an HF folder of 2.5 GB generated once into
#            BENCH_DIR, default ${TMPDIR:-/tmp}/qtool-bench), seq 128 × batch 1, 3 steps
#   1b-nf4   the same model with --quantize nf4 (QLoRA); PyTorch has no NF4
#            on the CPU, so it is compared with the same step as 1b-f16
# Both tools: LoRA rank 8 (alpha 16) on all seven projections of every
# block, AdamW, clipping to global norm 1, BENCH_THREADS (2) threads. The
# PyTorch side is train/testdata/torch_bench.py, on the model of
# torch_ref.py (the reference train/torch_test.go checks qtool's gradients
# against), reading the same safetensors weights: stories260K in float32;
# the 1B shape in float32 and in bfloat16 (BENCH_TORCH_DTYPES), whose
# products oneDNN runs on AVX512-BF16/AMX where the CPU has them, while
# qtool computes in float32 from the f16 (or NF4) weights. Seconds per step
# are the median of the steps after the first (the first pays for
# allocation and first touch of the mapping), with the best of them beside
# it: on a shared machine the best step is the one least disturbed.
#
# Memory: the --json step lines give VmHWM and RssAnon/RssFile at step ends;
# the script also samples /proc/PID/status every BENCH_INTERVAL (0.1) s for
# the peaks in between (model loading and NF4 quantization included).
#
# Debian's PyTorch runs its matrix products on OpenBLAS, which on CPUs it
# does not know falls back to its generic SSE3 kernel (Prescott); on an
# AVX-512 machine the script then sets OPENBLAS_CORETYPE=SkylakeX (its best
# AVX-512 kernel, about 1.8× faster here) so PyTorch is measured at its best.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/usr/local/go/bin:$PATH"
py=/usr/bin/python3
threads=${BENCH_THREADS:-2}
interval=${BENCH_INTERVAL:-0.1}
cases=${BENCH_CASES:-stories 1b-f16 1b-nf4}
work=${BENCH_DIR:-${TMPDIR:-/tmp}/qtool-bench}
mkdir -p "$work"

if ! $py -c 'import torch, numpy' 2>/dev/null; then
	echo "bench-finetune: PyTorch missing (apt-get install python3-torch)" >&2
	exit 1
fi
# PyTorch's threads: OpenMP ones (torch.set_num_threads) that wait passively
# (BENCH_OMP_WAIT_POLICY; spinning ones lose several times over as soon as
# anything else runs on the machine), and OpenBLAS's own for its float32
# products. The bfloat16 products run in oneDNN on the OpenMP threads, and
# idle OpenBLAS threads only take CPU from them: bf16 runs get one.
export OMP_NUM_THREADS=$threads OMP_WAIT_POLICY=${BENCH_OMP_WAIT_POLICY:-PASSIVE}
unset OPENBLAS_L2_SIZE
core=$(OPENBLAS_NUM_THREADS=1 $py -c 'import ctypes, torch; l = ctypes.CDLL("libblas.so.3"); l.openblas_get_corename.restype = ctypes.c_char_p; print(l.openblas_get_corename().decode())' 2>/dev/null || echo unknown)
case "$core" in
Prescott | Core2 | Penryn | Nehalem | Sandybridge | Atom)
	if grep -qw avx512f /proc/cpuinfo; then
		export OPENBLAS_CORETYPE=${BENCH_OPENBLAS_CORETYPE:-SkylakeX}
		core="$core -> $OPENBLAS_CORETYPE"
	fi
	;;
esac

qtool=${BENCH_QTOOL:-}
if [ -z "$qtool" ]; then
	qtool=$work/finetune-qtool
	go build -o "$qtool" ./cmd/qtool
fi
echo "$("$qtool" version | head -1); PyTorch $($py -c 'import torch; print(torch.__version__)') (OpenBLAS core $core, OMP_WAIT_POLICY $OMP_WAIT_POLICY); $threads threads; $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs); load average $(cut -d' ' -f1-3 /proc/loadavg)"

need_1b() {
	local m=$work/1b-f16-hf
	if [ ! -f "$m/config.json" ]; then
		echo "generating the 1B-shaped model (f16) into $m"
		go run ./fixtures/cmd/genmodel --preset 1b --dtype f16 --format hf -o "$m.tmp" --force
		# The generated folder has no tokenizer; stories260K's (512 ids)
		# tokenizes the training text.
		cp fixtures/stories260K-hf/tokenizer.model "$m.tmp/"
		rm -rf "$m" && mv "$m.tmp" "$m"
	fi
}

results=${BENCH_RESULTS:-$work/finetune-results.jsonl}
: >"$results"

# sample PID OUT: the largest RssAnon and RssFile (bytes) seen in
# /proc/PID/status until PID exits, written to OUT as "anon file".
sample() {
	local pid=$1 out=$2 anon=0 file=0 k v
	while [ -r "/proc/$pid/status" ]; do
		while read -r k v _; do
			case $k in
			RssAnon:) ((v > anon)) && anon=$v ;;
			RssFile:) ((v > file)) && file=$v ;;
			esac
		done <"/proc/$pid/status" 2>/dev/null || true
		sleep "$interval"
	done
	echo "$((anon * 1024)) $((file * 1024))" >"$out"
}

# run_case NAME MODEL SEQ BATCH STEPS TORCH_CASE [qtool flags…]: times qtool
# and records that its step compares with PyTorch's of TORCH_CASE.
run_case() {
	local name=$1 model=$2 seq=$3 batch=$4 steps=$5 torch_case=$6
	shift 6
	local log=$work/finetune-$name.qtool.jsonl
	echo "== $name: qtool finetune ($steps steps of $batch × $seq)" >&2
	rm -rf "$work/finetune-$name.adapter"
	"$qtool" finetune --model "$model" --data train/testdata/shakespeare-30k.txt -o "$work/finetune-$name.adapter" \
		--seq-len "$seq" --batch "$batch" --max-steps "$steps" --rank 8 --alpha 16 --target all-linear \
		--lr 1e-3 --seed 1 --threads "$threads" --json "$@" >"$log" &
	local pid=$!
	sample "$pid" "$work/finetune-$name.mem" &
	local spid=$!
	wait "$pid"
	wait "$spid"
	read -r anon file <"$work/finetune-$name.mem"
	$py - "$log" "$name" "$seq" "$batch" "$anon" "$file" "$torch_case" >>"$results" <<'EOF'
import json, statistics, sys
log, name, seq, batch, anon, file, torch_case = sys.argv[1:]
steps = [json.loads(l) for l in open(log) if l.startswith('{"step"')]
done = [json.loads(l) for l in open(log) if '"done"' in l][0]
el = [s["elapsed"] for s in steps]
dts = [el[0]] + [b - a for a, b in zip(el, el[1:])]
sec = statistics.median(dts[1:] or dts)
print(json.dumps({"tool": "qtool", "case": name, "torch_case": torch_case, "seq_len": int(seq), "batch": int(batch),
    "rank": 8, "seconds_per_step": sec, "tokens_per_s": int(seq) * int(batch) / sec, "step_seconds": dts,
    "final_loss": done["final_loss"], "peak_rss": done["peak_rss"], "peak_rss_anon": done["peak_rss_anon"],
    "peak_rss_file": done["peak_rss_file"], "sampled_anon": int(anon), "sampled_file": int(file)}))
EOF
}

# run_torch NAME MODEL SEQ BATCH STEPS DTYPE…: times the same step in PyTorch
# with the frozen weights in each DTYPE (f32, bf16).
run_torch() {
	local name=$1 model=$2 seq=$3 batch=$4 steps=$5 dt
	shift 5
	[ "${BENCH_TORCH:-1}" != 0 ] || return 0
	for dt in "$@"; do
		echo "== $name: PyTorch, $dt weights ($steps steps of $batch × $seq)" >&2
		local blas=$threads
		[ "$dt" = f32 ] || blas=1
		OPENBLAS_NUM_THREADS=$blas $py train/testdata/torch_bench.py step --model "$model" --seq-len "$seq" \
			--batch "$batch" --steps "$steps" --rank 8 --alpha 16 --target all-linear --threads "$threads" \
			--dtype "$dt" 2>/dev/null >"$work/finetune-$name.torch-$dt.jsonl"
		tail -1 "$work/finetune-$name.torch-$dt.jsonl" | $py -c '
import json, sys
r = json.load(sys.stdin); name, seq, batch = sys.argv[1:]
r.update(tool="torch", case=name, seq_len=int(seq), batch=int(batch), rank=8)
print(json.dumps(r))' "$name" "$seq" "$batch" >>"$results"
	done
}

for c in $cases; do
	case $c in
	stories)
		run_case stories260K fixtures/stories260K-hf 128 4 "${BENCH_STORIES_STEPS:-20}" stories260K
		run_torch stories260K fixtures/stories260K-hf 128 4 "${BENCH_STORIES_STEPS:-20}" f32
		;;
	1b-f16)
		need_1b
		run_case 1B-f16 "$work/1b-f16-hf" 128 1 "${BENCH_1B_STEPS:-3}" 1B
		;;
	1b-nf4)
		need_1b
		run_case 1B-nf4 "$work/1b-f16-hf" 128 1 "${BENCH_1B_STEPS:-3}" 1B --quantize nf4
		;;
	*)
		echo "bench-finetune: unknown case $c (want stories, 1b-f16, 1b-nf4)" >&2
		exit 2
		;;
	esac
done
case " $cases " in
*" 1b-f16 "* | *" 1b-nf4 "*)
	# PyTorch has no NF4 on the CPU: both 1B cases compare with its step on
	# the same shapes, in float32 and in bfloat16.
	# shellcheck disable=SC2086
	run_torch 1B "$work/1b-f16-hf" 128 1 "${BENCH_1B_STEPS:-3}" ${BENCH_TORCH_DTYPES:-f32 bf16}
	;;
esac

echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
$py train/testdata/torch_bench.py table "$results" --interval "$interval"
