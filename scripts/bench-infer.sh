#!/usr/bin/env bash
# Inference speed of qtool against llama.cpp (node-llama-cpp 3.22.1, its
# prebuilt CPU binary) on a synthetic Llama-3.2-1B-shaped model, both on the
# same files, the same prompt ids and the same number of threads.
#
#   scripts/bench-infer.sh            # after `make build` and `make deps`
#
# Once, into a cache folder reused by later runs (BENCH_DIR, default
# ${TMPDIR:-/tmp}/qtool-bench/infer; about 6 GB, 8.5 GB while it fills), it
# writes the fixtures generator's "1b" preset as an f16 GGUF and quantizes it
# with bin/qtool: Q8_0 and Q4_0 with llama-quantize's default type mix (which
# stores the tied embedding/output matrix as Q6_K for Q4_0), and Q4_0 --pure
# ("q4_0-pure": every matrix Q4_0), and Q4_K_M (llama-quantize's mix of
# Q4_K with Q6_K for the output and some attn_v/ffn_down). For NF4 it converts the GGUF to an f16
# Hugging Face folder (qtool convert: the same weights, tokenizer included)
# and quantizes that with `qtool quantize --type nf4` into a bitsandbytes
# folder (the f16 folder is deleted after).
#
# Then, per type: qtool generate --json (greedy, a PROMPT_TOKENS-token prompt
# with BOS, GEN_TOKENS new tokens) REPS times, each a fresh process, and
# convert/testdata/node/bench.mjs on the same file with qtool's prompt ids,
# REPS times in one process. The best rep of each phase is kept:
#
#   prompt t/s  = prompt tokens / time to evaluate the prompt and pick the first token
#   gen t/s     = (tokens − 1) / time of the single-token decodes after it
#
# llama.cpp has no bitsandbytes loader, so NF4 is set against its Q4_0 (the
# default mix), the nearest type. A type qtool cannot load is reported as
# n/a and the run goes on. The ratio columns are qtool / llama.cpp (above 1:
# qtool is faster); "greedy agree" counts the leading generated ids both
# pick (the synthetic model's logits are nearly flat, so rounding
# differences soon change a pick). The load average is printed before and
# after: on a shared machine, ggml's spinning worker threads are hit hard by
# other processes, and figures can move by several times between runs.
#
# Knobs (environment): QTOOL (bin/qtool), BENCH_DIR, THREADS (2),
# PROMPT_TOKENS (128), GEN_TOKENS (32), REPS (2),
# TYPES ("f16 q8_0 q4_0 q4_0-pure q4_k_m nf4"), PRESET (1b; "small" makes a quick
# trial of the script itself), QTOOL_BASE (unset; another qtool binary, for
# example a build of an earlier commit: each type then runs it REPS times
# right after QTOOL, so that before/after figures share the machine's
# conditions, and the table gains its columns and QTOOL's speed-up over it).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
QTOOL=${QTOOL:-bin/qtool}
BENCH_DIR=${BENCH_DIR:-${TMPDIR:-/tmp}/qtool-bench/infer}
THREADS=${THREADS:-2}
PROMPT_TOKENS=${PROMPT_TOKENS:-128}
GEN_TOKENS=${GEN_TOKENS:-32}
REPS=${REPS:-2}
TYPES=${TYPES:-f16 q8_0 q4_0 q4_0-pure q4_k_m nf4}
PRESET=${PRESET:-1b}
NODE_DIR=$ROOT/convert/testdata/node

die() { echo "bench-infer: $*" >&2; exit 1; }
say() { echo "bench-infer: $*" >&2; }

# --- prerequisites --------------------------------------------------------
[[ -x $QTOOL ]] || die "$QTOOL not found or not executable: run 'make build' first (or set QTOOL)"
QTOOL=$(cd "$(dirname "$QTOOL")" && pwd)/$(basename "$QTOOL")
QTOOL_BASE=${QTOOL_BASE:-}
if [[ -n $QTOOL_BASE ]]; then
	[[ -x $QTOOL_BASE ]] || die "QTOOL_BASE=$QTOOL_BASE is not an executable"
	QTOOL_BASE=$(cd "$(dirname "$QTOOL_BASE")" && pwd)/$(basename "$QTOOL_BASE")
fi
command -v node >/dev/null || die "node is not installed"
[[ -f $NODE_DIR/node_modules/node-llama-cpp/package.json ]] ||
	die "node-llama-cpp is missing in $NODE_DIR: run 'make deps'"
command -v go >/dev/null || die "go is not on PATH (needed once, to generate the model)"
for v in THREADS PROMPT_TOKENS GEN_TOKENS REPS; do
	[[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer, not '${!v}'"
done
((GEN_TOKENS >= 2)) || die "GEN_TOKENS must be at least 2 (the first token closes the prompt phase)"
GGUF_TYPES=""
for t in $TYPES; do
	case $t in
	f16 | q8_0 | q4_0 | q4_0-pure | q4_k_m) GGUF_TYPES+=" $t" ;;
	nf4) GGUF_TYPES+=" q4_0" ;; # llama.cpp's stand-in for NF4
	*) die "unknown type '$t' in TYPES (have f16 q8_0 q4_0 q4_0-pure q4_k_m nf4)" ;;
	esac
done
mkdir -p "$BENCH_DIR"
RUN_DIR=$BENCH_DIR/run-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN_DIR"

# json FILE EXPR: evaluate a JavaScript expression over the parsed JSON `j`.
json() { node -e 'const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); const v = ('"$2"'); console.log(typeof v === "string" ? v : JSON.stringify(v));' "$1"; }

# --- models (cached) ------------------------------------------------------
F16=$BENCH_DIR/$PRESET-f16.gguf
HF16=$BENCH_DIR/$PRESET-f16-hf
NF4=$BENCH_DIR/$PRESET-nf4
if [[ ! -f $F16 ]]; then
	say "generating the $PRESET preset as an f16 GGUF into $F16 …"
	rm -f "$F16.tmp"
	go run ./fixtures/cmd/genmodel --preset "$PRESET" --dtype f16 --format gguf -o "$F16.tmp" ||
		{ rm -f "$F16.tmp"; die "genmodel failed"; }
	mv "$F16.tmp" "$F16"
fi
for q in $GGUF_TYPES; do
	out=$BENCH_DIR/$PRESET-$q.gguf
	[[ $q == f16 || -f $out ]] && continue
	say "quantizing to $q …"
	args=(--type "${q%-pure}")
	[[ $q == *-pure ]] && args+=(--pure)
	"$QTOOL" quantize "$F16" -o "$out" "${args[@]}" --quiet >"$BENCH_DIR/quantize-$q.log" ||
		die "qtool quantize ${args[*]} failed (see $BENCH_DIR/quantize-$q.log)"
done
if [[ " $TYPES " == *" nf4 "* && ! -d $NF4 ]]; then
	if [[ ! -d $HF16 ]]; then
		# qtool convert, not genmodel --format hf: the folder then carries the
		# GGUF's vocabulary as a tokenizer, which generate needs.
		say "converting the f16 GGUF to a Hugging Face folder …"
		"$QTOOL" convert "$F16" -o "$HF16" --quiet >"$BENCH_DIR/convert-hf.log" 2>&1 ||
			die "qtool convert to a Hugging Face folder failed: $(tail -n 3 "$BENCH_DIR/convert-hf.log")"
	fi
	say "quantizing the HF folder to nf4 …"
	# qtool writes the folder atomically: it appears only when complete.
	if "$QTOOL" quantize "$HF16" -o "$NF4" --type nf4 --quiet >"$BENCH_DIR/quantize-nf4.log" 2>&1; then
		rm -rf "$HF16"
	else
		say "qtool quantize --type nf4 failed, NF4 will be n/a: $(tail -n 3 "$BENCH_DIR/quantize-nf4.log")"
	fi
fi

model_of() { # TYPE → path
	case $1 in
	nf4) echo "$NF4" ;;
	*) echo "$BENCH_DIR/$PRESET-$1.gguf" ;;
	esac
}
ref_of() { # TYPE → the GGUF llama.cpp runs for it
	case $1 in nf4) echo "$BENCH_DIR/$PRESET-q4_0.gguf" ;; *) model_of "$1" ;; esac
}

# --- the prompt: PROMPT_TOKENS−1 two-letter words after BOS --------------
# In the fixtures' filler vocabulary every "▁xy" is one token, for any
# preset's vocabulary size; qtool's count is checked below.
words=(he is up so we go to it as my ox an in at me by or do no be of us if on)
PROMPT=""
for ((i = 0; i < PROMPT_TOKENS - 1; i++)); do
	PROMPT+="${PROMPT:+ }${words[i % ${#words[@]}]}"
done

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
say "threads $THREADS, prompt $PROMPT_TOKENS tokens, $GEN_TOKENS generated, best of $REPS; load average $LOAD_BEFORE; results in $RUN_DIR"

# --- measurements ---------------------------------------------------------
# Per type, qtool's reps and then llama.cpp's, so that a change in the
# machine's load hits both sides of a row alike.
declare -A Q_PP Q_TG Q_IDS PROMPT_IDS L_PP L_TG L_IDS DONE B_PP B_TG

run_qtool() { # TYPE [base]: QTOOL's reps, or with "base" QTOOL_BASE's
	local t=$1 bin=$QTOOL name=qtool m f r pp tg bpp=n/a btg=n/a
	[[ ${2:-} == base ]] && bin=$QTOOL_BASE name=base
	m=$(model_of "$t")
	if [[ $name == qtool ]]; then Q_PP[$t]=n/a Q_TG[$t]=n/a; else B_PP[$t]=n/a B_TG[$t]=n/a; fi
	if [[ ! -e $m ]]; then
		say "$t: no model at $m: n/a"
		return
	fi
	for ((r = 1; r <= REPS; r++)); do
		f=$RUN_DIR/$name-$t-$r.json
		if ! "$bin" generate --model "$m" --prompt "$PROMPT" -n "$GEN_TOKENS" --temp 0 -t "$THREADS" --json >"$f" 2>"$f.err"; then
			say "$t: $name generate failed (n/a): $(tail -n 3 "$f.err")"
			return
		fi
		got=$(json "$f" 'j.prompt_tokens')
		[[ $got == "$PROMPT_TOKENS" ]] || die "$t: the prompt encodes to $got tokens, not $PROMPT_TOKENS"
		pp=$(json "$f" 'j.prompt_tokens / j.prompt_seconds')
		tg=$(json "$f" 'j.tokens > 1 ? (j.tokens - 1) / j.generation_seconds : 0')
		say "$t: $name rep $r: prompt $(printf %.1f "$pp") t/s, generation $(printf %.2f "$tg") t/s (load $(cut -d' ' -f1 /proc/loadavg))"
		[[ $bpp == n/a ]] || pp=$(node -p "Math.max($pp, $bpp)")
		[[ $btg == n/a ]] || tg=$(node -p "Math.max($tg, $btg)")
		bpp=$pp btg=$tg
	done
	if [[ $name == base ]]; then
		B_PP[$t]=$bpp B_TG[$t]=$btg
		return
	fi
	Q_PP[$t]=$bpp Q_TG[$t]=$btg
	Q_IDS[$t]=$(json "$f" 'j.ids')
	PROMPT_IDS[$t]=$(json "$f" 'j.prompt_ids')
}

run_llamacpp() { # TYPE: bench.mjs on the GGUF that stands for it, with qtool's prompt ids
	local t=$1 ref ids name jf out err
	ref=$(ref_of "$t")
	[[ -n ${DONE[$ref]:-} ]] && return
	if [[ ! -f $ref ]]; then
		say "$t: no GGUF at $ref for llama.cpp: n/a"
		return
	fi
	# NF4 runs against the Q4_0 file with NF4's prompt ids when Q4_0's are
	# missing: the folder's tokenizer is the GGUF's vocabulary, converted.
	ids=${PROMPT_IDS[$(basename "$ref" .gguf | sed "s/^$PRESET-//")]:-${PROMPT_IDS[$t]:-}}
	if [[ -z $ids ]]; then
		say "$t: no prompt ids from qtool, so no llama.cpp run either"
		return
	fi
	DONE[$ref]=1
	name=$(basename "$ref" .gguf)
	jf=$RUN_DIR/llamacpp-$name-job.json out=$RUN_DIR/llamacpp-$name.json
	printf '[{"model": "%s", "prompt_ids": %s, "n": %d, "threads": %d, "reps": %d}]\n' \
		"$ref" "$ids" "$GEN_TOKENS" "$THREADS" "$REPS" >"$jf"
	(cd "$NODE_DIR" && NODE_LLAMA_CPP_SKIP_DOWNLOAD=true node bench.mjs "$jf") >"$out" 2>"$out.err" ||
		die "node bench.mjs failed on $ref: $(tail -n 5 "$out.err")"
	err=$(json "$out" "j[0].error ?? ''")
	if [[ -n $err ]]; then
		say "llama.cpp refused $ref: $err"
		return
	fi
	L_PP[$ref]=$(json "$out" 'j[0].prompt_tokens_per_s')
	L_TG[$ref]=$(json "$out" 'j[0].gen_tokens_per_s')
	L_IDS[$ref]=$(json "$out" 'j[0].generated_ids')
	say "$t: llama.cpp on $name: prompt+generation $(json "$out" "j[0].runs.map(r => r.prompt_seconds.toFixed(2) + '+' + r.gen_seconds.toFixed(2) + ' s').join(', ')") (load $(cut -d' ' -f1 /proc/loadavg))"
}

for t in $TYPES; do
	run_qtool "$t"
	[[ -z $QTOOL_BASE ]] || run_qtool "$t" base
	run_llamacpp "$t"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# --- table ----------------------------------------------------------------
fmt() { [[ $1 == n/a ]] && echo n/a || printf '%.2f' "$1"; }
ratio() { [[ $1 == n/a || $2 == n/a ]] && echo n/a || node -p "($1 / $2).toFixed(2)"; }
agree() { # qtool ids, llama.cpp ids → leading tokens that agree
	[[ -z $1 || -z $2 ]] && { echo -; return; }
	node -p "const a = $1, b = $2; let k = 0; while (k < a.length && k < b.length && a[k] === b[k]) k++; k + '/' + Math.min(a.length, b.length)"
}
echo
echo "qtool vs llama.cpp (node-llama-cpp 3.22.1), synthetic $PRESET preset, $THREADS threads, prompt $PROMPT_TOKENS tokens, $GEN_TOKENS generated, best of $REPS"
echo "$(nproc) cores; load average before $LOAD_BEFORE, after $LOAD_AFTER"
printf '%-9s %-9s %10s %10s %6s   %10s %10s %6s   %s\n' type "llama.cpp" "qtool pp" "l.cpp pp" ratio "qtool tg" "l.cpp tg" ratio "greedy agree"
for t in $TYPES; do
	ref=$(ref_of "$t")
	lp=${L_PP[$ref]:-n/a} lt=${L_TG[$ref]:-n/a}
	lname=$(basename "$ref" .gguf)
	lname=${lname#"$PRESET"-}
	ag=-
	[[ $t != nf4 ]] && ag=$(agree "${Q_IDS[$t]:-}" "${L_IDS[$ref]:-}")
	printf '%-9s %-9s %10s %10s %6s   %10s %10s %6s   %s\n' "$t" "$lname" "$(fmt "${Q_PP[$t]}")" "$(fmt "$lp")" \
		"$(ratio "${Q_PP[$t]}" "$lp")" "$(fmt "${Q_TG[$t]}")" "$(fmt "$lt")" "$(ratio "${Q_TG[$t]}" "$lt")" "$ag"
done
echo "(pp: prompt tokens/s; tg: generated tokens/s; ratio: qtool / llama.cpp; raw JSON in $RUN_DIR)"
if [[ -n $QTOOL_BASE ]]; then
	echo
	echo "qtool against QTOOL_BASE=$QTOOL_BASE, same run"
	printf '%-9s %10s %10s %8s   %10s %10s %8s\n' type "base pp" "qtool pp" speedup "base tg" "qtool tg" speedup
	for t in $TYPES; do
		printf '%-9s %10s %10s %8s   %10s %10s %8s\n' "$t" "$(fmt "${B_PP[$t]:-n/a}")" "$(fmt "${Q_PP[$t]}")" \
			"$(ratio "${Q_PP[$t]}" "${B_PP[$t]:-n/a}")" "$(fmt "${B_TG[$t]:-n/a}")" "$(fmt "${Q_TG[$t]}")" "$(ratio "${Q_TG[$t]}" "${B_TG[$t]:-n/a}")"
	done
fi
