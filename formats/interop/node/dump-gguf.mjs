// dump-gguf.mjs prints, as JSON on stdout, what the independent GGUF parser
// @huggingface/gguf (pinned in package.json) reads from a local GGUF file:
//
//   { "metadata": {key: value},          values as the parser returns them
//     "types": {key: {type, subType}},   GGUF value type ids (subType for arrays)
//     "tensorInfos": [{name, n_dims, shape, dtype, offset}],
//     "tensorDataOffset": "…" }
//
// BigInt values (u64/i64 fields, shapes, offsets) are printed as decimal
// strings; non-finite floats as the strings "NaN", "Infinity", "-Infinity".
// Usage: node dump-gguf.mjs FILE.gguf
import { gguf } from "@huggingface/gguf";

const path = process.argv[2];
if (!path) {
  console.error("usage: node dump-gguf.mjs FILE.gguf");
  process.exit(2);
}

const out = await gguf(path, { allowLocalFile: true, typedMetadata: true });

const types = {};
for (const [key, entry] of Object.entries(out.typedMetadata)) {
  types[key] = entry.subType === undefined ? { type: entry.type } : { type: entry.type, subType: entry.subType };
}

const replacer = (_key, value) => {
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return value;
};

process.stdout.write(
  JSON.stringify(
    {
      metadata: out.metadata,
      types,
      tensorInfos: out.tensorInfos,
      tensorDataOffset: out.tensorDataOffset,
    },
    replacer,
  ),
);
process.stdout.write("\n");
