// Tokenizer check for qtool's convert tests: loads converted GGUF files in
// llama.cpp (node-llama-cpp's prebuilt CPU binary, offline), tokenizes texts
// both with and without special-token parsing, greedy-generates from a
// prompt, and, when a job names a Hugging Face tokenizer.json, encodes the
// same texts with the npm `tokenizers` binding, all in one process.
//
//   NODE_LLAMA_CPP_SKIP_DOWNLOAD=true node tokenize.mjs JOBS.json [TOKENIZERS_DIR]
//
// JOBS.json: a list of {"model": PATH, "prompt": TEXT, "n": N,
// "texts": [TEXT, …], "hf_tokenizer": PATH (optional)}. TOKENIZERS_DIR is a
// folder whose node_modules holds `tokenizers` (needed only when a job has
// hf_tokenizer).
//
// stdout: one JSON list, one entry per job, either {"model", "error"} or
//
//	{"model", "bos", "eos", "add_bos",
//	 "plain":   [[ids] per text]   tokenize(text), special text stays text,
//	 "special": [[ids] per text]   tokenize(text) parsing special-token text,
//	 "hf":      [[ids] per text]   tokenizers' encode(text) with the file's
//	                               post-processor (BOS etc.); only with
//	                               hf_tokenizer,
//	 "prompt_ids", "generated_ids", "generated_text"}
//
// llama.cpp's ids never include BOS; add_bos says whether the model asks
// for it. The prompt is preceded by BOS when it does. Greedy generation
// stops after N tokens or at EOS.
import {createRequire} from "node:module";
import {readFileSync} from "node:fs";
import {join, resolve} from "node:path";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

if (process.argv.length < 3 || process.argv.length > 4) {
  console.error("usage: node tokenize.mjs JOBS.json [TOKENIZERS_DIR]");
  process.exit(2);
}
const jobs = JSON.parse(readFileSync(process.argv[2], "utf8"));

let Tokenizer = null;
if (jobs.some((j) => j.hf_tokenizer)) {
  if (process.argv.length !== 4) {
    console.error("a job names hf_tokenizer: TOKENIZERS_DIR is required");
    process.exit(2);
  }
  const req = createRequire(join(resolve(process.argv[3]), "package.json"));
  ({Tokenizer} = req("tokenizers"));
}

const llama = await getLlama({
  gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true,
  maxThreads: 1, logLevel: LlamaLogLevel.error,
});

const ids = (xs) => Array.from(xs).map(Number);

async function hfEncode(file, texts) {
  const tok = Tokenizer.fromFile(file);
  const out = [];
  for (const t of texts) out.push(ids((await tok.encode(t)).getIds()));
  return out;
}

async function run(job) {
  const texts = job.texts ?? [];
  const hf = job.hf_tokenizer ? await hfEncode(job.hf_tokenizer, texts) : undefined;
  const model = await llama.loadModel({modelPath: job.model, gpuLayers: 0});
  try {
    const plain = texts.map((t) => ids(model.tokenize(t, false)));
    const special = texts.map((t) => ids(model.tokenize(t, true)));
    const bos = model.tokens.bos == null ? null : Number(model.tokens.bos);
    const eos = model.tokens.eos == null ? null : Number(model.tokens.eos);
    const addBos = bos != null && Boolean(model.tokens.shouldPrependBosToken);
    const promptIds = ids(model.tokenize(job.prompt ?? "", false));
    if (addBos) promptIds.unshift(bos);
    const generated = [];
    if ((job.n ?? 0) > 0) {
      // One thread: on a busy machine ggml's spinning workers cost seconds per token.
      const context = await model.createContext({contextSize: 128, threads: 1});
      try {
        const seq = context.getSequence();
        for await (const tok of seq.evaluate(promptIds, {temperature: 0})) {
          generated.push(Number(tok));
          if (generated.length >= job.n || Number(tok) === eos) break;
        }
      } finally {
        await context.dispose();
      }
    }
    return {
      model: job.model, bos, eos, add_bos: addBos, plain, special, hf,
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
