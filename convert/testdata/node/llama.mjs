// Loads GGUF files in llama.cpp (node-llama-cpp's prebuilt CPU binary,
// offline), tokenizes strings and greedy-generates from a prompt; prints one
// JSON document on stdout.
//
//   NODE_LLAMA_CPP_SKIP_DOWNLOAD=true node llama.mjs JOBS.json
//
// JOBS.json is a list of {"model": PATH, "prompt": TEXT, "n": N,
// "texts": [TEXT, …]}; the output is a list, one entry per job:
// {"model", "bos", "eos", "tokens": {TEXT: [ids]}, "prompt_ids",
// "generated_ids", "generated_text"} or {"model", "error"} when llama.cpp
// refuses the file. The prompt is preceded by BOS when the model asks for it
// (add_bos_token). Greedy generation stops after N tokens or at EOS.
import {readFileSync} from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

if (process.argv.length !== 3) {
  console.error("usage: node llama.mjs JOBS.json");
  process.exit(2);
}
const jobs = JSON.parse(readFileSync(process.argv[2], "utf8"));
const llama = await getLlama({
  gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true,
  maxThreads: 2, logLevel: LlamaLogLevel.error,
});

async function run(job) {
  const model = await llama.loadModel({modelPath: job.model, gpuLayers: 0});
  try {
    const tokens = {};
    for (const t of job.texts ?? []) tokens[t] = Array.from(model.tokenize(t)).map(Number);
    const promptIds = Array.from(model.tokenize(job.prompt ?? "")).map(Number);
    if (model.tokens.bos != null && model.tokens.shouldPrependBosToken) promptIds.unshift(Number(model.tokens.bos));
    const generated = [];
    if ((job.n ?? 0) > 0) {
      // One thread: on a busy machine ggml's spinning worker threads cost seconds per token.
      const context = await model.createContext({contextSize: 256, threads: 1});
      try {
        const seq = context.getSequence();
        for await (const tok of seq.evaluate(promptIds, {temperature: 0})) {
          generated.push(Number(tok));
          if (generated.length >= job.n || tok === model.tokens.eos) break;
        }
      } finally {
        await context.dispose();
      }
    }
    return {
      model: job.model, bos: model.tokens.bos, eos: model.tokens.eos, tokens,
      prompt_ids: promptIds, generated_ids: generated, generated_text: model.detokenize(generated),
    };
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
