// Encodes texts with Hugging Face tokenizers (npm `tokenizers`, the Node
// binding of the Rust library) for the tokenizer package's tests.
//
//   node hf_encode.mjs NODE_MODULES_PARENT A/tokenizer.json [B/tokenizer.json …] < texts.json
//
// NODE_MODULES_PARENT is a folder whose node_modules holds `tokenizers`.
// stdin: a JSON array of strings. stdout: a JSON array with, per file,
// {"ids": [[…] per text], "plain": [[…] per text], "decoded": [text per text]}:
// ids with the file's post-processor (BOS etc.), plain without it
// (addSpecialTokens false), decoded = decode(plain, skipSpecialTokens true).
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const require = createRequire(join(resolve(process.argv[2]), "package.json"));
const { Tokenizer } = require("tokenizers");

const texts = JSON.parse(readFileSync(0, "utf8"));
const out = [];
for (const file of process.argv.slice(3)) {
  const tok = Tokenizer.fromFile(file);
  const ids = [], plain = [], decoded = [];
  for (const t of texts) {
    ids.push(Array.from((await tok.encode(t)).getIds()));
    const p = Array.from((await tok.encode(t, null, { addSpecialTokens: false })).getIds());
    plain.push(p);
    decoded.push(await tok.decode(p, true));
  }
  out.push({ ids, plain, decoded });
}
process.stdout.write(JSON.stringify(out) + "\n");
