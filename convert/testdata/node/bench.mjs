// Times llama.cpp (node-llama-cpp's prebuilt CPU binary, offline) on prompt
// processing and greedy generation, for scripts/bench-infer.sh, which runs
// qtool on the same files and prompt ids and prints the two side by side.
//
//   NODE_LLAMA_CPP_SKIP_DOWNLOAD=true node bench.mjs JOBS.json
//
// JOBS.json is a list of {"model": PATH, "prompt_ids": [ids, BOS included],
// "n": N, "threads": T, "reps": R}. For each job the model is loaded once
// (weights memory-mapped, as llama.cpp does by default), one context of
// exactly T threads is made, and R times: the sequence is cleared, the
// prompt ids are evaluated in one batch and the first token sampled
// greedily (the prompt phase), then N−1 more tokens are generated one
// decode each (the generation phase), or fewer when an end-of-generation
// token comes first. Each phase is timed on the wall clock
// (performance.now) around node-llama-cpp's evaluate() generator, so the
// sampling and the JS↔native hops are counted, as qtool's own timing counts
// its sampling.
//
// stdout: one JSON list, one entry per job: {"model", "error"} or
//
//	{"model", "threads", "prompt_tokens", "generated_ids",
//	 "runs": [{"prompt_seconds", "gen_seconds", "gen_decodes"}] per rep,
//	 "prompt_tokens_per_s": best prompt_tokens / prompt_seconds,
//	 "gen_tokens_per_s":    best gen_decodes / gen_seconds}
//
// gen_decodes is the number of single-token decodes timed (tokens − 1).
import {readFileSync} from "node:fs";
import {performance} from "node:perf_hooks";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

if (process.argv.length !== 3) {
  console.error("usage: node bench.mjs JOBS.json");
  process.exit(2);
}
const jobs = JSON.parse(readFileSync(process.argv[2], "utf8"));
const maxThreads = Math.max(1, ...jobs.map((j) => j.threads ?? 2));
const llama = await getLlama({
  gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true,
  maxThreads, logLevel: LlamaLogLevel.error,
});

async function timeOnce(seq, promptIds, n) {
  await seq.clearHistory();
  const ids = [];
  const t0 = performance.now();
  let t1 = t0;
  for await (const tok of seq.evaluate(promptIds, {temperature: 0})) {
    if (ids.length === 0) t1 = performance.now();
    ids.push(Number(tok));
    if (ids.length >= n) break;
  }
  const t2 = performance.now();
  return {
    ids,
    run: {prompt_seconds: (t1 - t0) / 1000, gen_seconds: (t2 - t1) / 1000, gen_decodes: Math.max(ids.length - 1, 0)},
  };
}

async function run(job) {
  const promptIds = job.prompt_ids ?? [];
  const n = job.n ?? 32;
  const threads = job.threads ?? 2;
  const reps = Math.max(1, job.reps ?? 1);
  if (promptIds.length === 0 || n < 2) throw new Error("need prompt_ids and n ≥ 2");
  const model = await llama.loadModel({modelPath: job.model, gpuLayers: 0});
  try {
    const size = promptIds.length + n + 8;
    const context = await model.createContext({
      contextSize: size, batchSize: promptIds.length, threads: {ideal: threads, min: threads},
    });
    try {
      const seq = context.getSequence();
      const runs = [];
      let generated = [];
      for (let r = 0; r < reps; r++) {
        const {ids, run} = await timeOnce(seq, promptIds, n);
        runs.push(run);
        generated = ids;
      }
      const best = (f) => Math.max(...runs.map(f));
      return {
        model: job.model, threads, prompt_tokens: promptIds.length, generated_ids: generated, runs,
        prompt_tokens_per_s: best((r) => promptIds.length / r.prompt_seconds),
        gen_tokens_per_s: best((r) => (r.gen_seconds > 0 ? r.gen_decodes / r.gen_seconds : 0)),
      };
    } finally {
      await context.dispose();
    }
  } finally {
    await model.dispose();
  }
}

const out = [];
for (const job of jobs) {
  try {
    out.push(await run(job));
  } catch (e) {
    out.push({model: job.model, error: String(e?.message ?? e)});
  }
}
console.log(JSON.stringify(out));
await llama.dispose();
