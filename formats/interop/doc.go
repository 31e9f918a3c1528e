// Package interop checks qtool's GGUF and safetensors files with readers
// nobody on the project wrote. It holds only tests (and this comment).
//
// The independent readers:
//
//   - node/dump-gguf.mjs runs the npm package @huggingface/gguf (pinned in
//     node/package.json and node/package-lock.json) and prints a GGUF's
//     metadata, value types and tensor infos as JSON.
//   - check_safetensors.py parses a safetensors file with Python's standard
//     library alone (json, struct, hashlib), validates it (known dtypes,
//     sizes matching shapes, no gap or overlap, exact file size) and prints
//     its header, tensors and per-tensor sha256 as JSON.
//
// The tests write files with qtool's writers — synthetic models from
// package fixtures in the GGUF and sharded Hugging Face layouts, the real
// stories260K GGUF rewritten through gguf.Open and gguf.Write, and a
// safetensors file holding every dtype and awkward names and shapes — and
// require the independent reader to see exactly what qtool's own reader
// sees: every tensor's name, type, shape and offset, and every metadata key
// with its type and value.
//
// Setup: `npm ci --no-audit --no-fund --prefix formats/interop/node` (node
// 20 or later) and Debian's /usr/bin/python3. When either is missing the
// tests skip with a message, unless the environment variable CI is set, in
// which case they fail.
//
// Benchmarks (bench_test.go), run explicitly:
//
//	go test ./formats/interop -run '^$' -bench InspectSparse -benchtime 20x
//	go test ./formats/interop -run '^$' -bench WriteStreamingRSS -benchtime 1x
//
// BenchmarkInspectSparse20GB opens sparse 20.5 GB GGUF and safetensors files
// (a Llama-2-7B-shaped header, no data written) and walks their tensor
// lists; BenchmarkWriteStreamingRSS writes a generated model to disk and
// reports the peak resident set size against the file size
// (QTOOL_RSS_PRESET picks the preset, default "small").
package interop
