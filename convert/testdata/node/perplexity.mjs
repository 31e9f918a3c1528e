// Scores token windows in llama.cpp (node-llama-cpp's prebuilt CPU binary,
// offline), optionally with LoRA adapters applied, and prints the summed
// negative log-likelihood as one JSON document on stdout. Used by qtool's
// trainer test (train/llamacpp_test.go) to check that llama.cpp, loading a
// GGUF adapter written by `qtool finetune`, sees the trainer's held-out loss.
//
//   NODE_LLAMA_CPP_SKIP_DOWNLOAD=true node perplexity.mjs JOBS.json
//
// JOBS.json is a list of {"model": PATH, "lora": [{"path": PATH, "scale": S}]
// (optional), "windows": [{"inputs": [ids], "targets": [ids],
// "mask": [bools]}], "precise": true (optional: F32 KV cache and flash
// attention off, llama-perplexity's -ctk f32 -ctv f32 -fa off)}. Each
// window is evaluated from an empty context: inputs[i] is fed at position
// i and, where mask[i], the log-probability of targets[i] is read from the
// full logit row (log-softmax in float64).
// The output is a list, one entry per job: {"model", "nll", "count",
// "mean_nll", "ppl"} or {"model", "error"}.
import {readFileSync} from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

if (process.argv.length !== 3) {
  console.error("usage: node perplexity.mjs JOBS.json");
  process.exit(2);
}
const jobs = JSON.parse(readFileSync(process.argv[2], "utf8"));
const llama = await getLlama({
  gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true,
  maxThreads: 2, logLevel: LlamaLogLevel.error,
});

function logProb(logits, target) {
  let max = -Infinity;
  for (const v of logits.values()) if (v > max) max = v;
  let sum = 0;
  for (const v of logits.values()) sum += Math.exp(v - max);
  const t = logits.get(target);
  if (t === undefined) throw new Error(`no logit for token ${target}`);
  return t - max - Math.log(sum);
}

async function run(job) {
  const model = await llama.loadModel({modelPath: job.model, gpuLayers: 0});
  try {
    const longest = Math.max(1, ...job.windows.map((w) => w.inputs.length));
    const ctxOpts = {contextSize: Math.max(64, longest), batchSize: Math.max(64, longest), threads: 1};
    if (job.precise) {
      Object.assign(ctxOpts, {flashAttention: false, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"});
    }
    if (job.lora?.length) {
      ctxOpts.lora = {adapters: job.lora.map((a) => ({filePath: a.path, scale: a.scale ?? 1}))};
    }
    const context = await model.createContext(ctxOpts);
    try {
      const seq = context.getSequence();
      let nll = 0;
      let count = 0;
      for (const w of job.windows) {
        await seq.clearHistory();
        const input = w.inputs.map((id, i) => (w.mask[i] ? [id, {generateNext: {logits: true}}] : id));
        const out = await seq.controlledEvaluate(input);
        for (let i = 0; i < w.inputs.length; i++) {
          if (!w.mask[i]) continue;
          const logits = out[i]?.next?.logits;
          if (logits == null) throw new Error(`no logits at position ${i}`);
          nll -= logProb(logits, w.targets[i]);
          count++;
        }
      }
      return {model: job.model, nll, count, mean_nll: nll / Math.max(count, 1), ppl: Math.exp(nll / Math.max(count, 1))};
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
    out.push({model: job.model, error: String(e?.stack ?? e?.message ?? e)});
  }
}
console.log(JSON.stringify(out));
await llama.dispose();
