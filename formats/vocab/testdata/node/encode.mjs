// Encodes texts with Hugging Face tokenizers (the npm binding of the Rust
// library) for formats/vocab's tests.
//
//   node encode.mjs A/tokenizer.json [B/tokenizer.json …] < texts.json
//
// stdin: a JSON array of strings. stdout: a JSON array with, per file, an
// array of id lists (one per text, special tokens added as the file's
// post-processor says).
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(import.meta.url);
const { Tokenizer } = require("tokenizers");

const texts = JSON.parse(readFileSync(0, "utf8"));
const out = [];
for (const file of process.argv.slice(2)) {
  const tok = Tokenizer.fromFile(file);
  const ids = [];
  for (const t of texts) {
    ids.push(Array.from((await tok.encode(t)).getIds()));
  }
  out.push(ids);
}
process.stdout.write(JSON.stringify(out) + "\n");
