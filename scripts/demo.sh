#!/usr/bin/env bash
# The qtool demo on the bundled stories260K model. Each step prints the
# exact command it runs, so this doubles as a tutorial. Outputs go to
# ${DEMO_DIR:-demo-out}.
set -euo pipefail
cd "$(dirname "$0")/.."
qtool="${1:-bin/qtool}"
out="${DEMO_DIR:-demo-out}"
rm -rf "$out"
mkdir -p "$out"

step() {
	local shown="$*"
	printf '\n$ %s\n' "${shown//$qtool/qtool}"
	eval "$@"
}

step "$qtool version"
step "$qtool inspect fixtures/stories260K/stories260K.gguf --tensors 'blk.0.*'"
step "$qtool inspect fixtures/stories260K-hf --no-metadata --tensors 'model.layers.0.self_attn.*'"
step "$qtool copy fixtures/stories260K-hf -o $out/stories260K-sharded --max-shard-size 400KB"
step "ls $out/stories260K-sharded"
step "$qtool inspect $out/stories260K-sharded --json > $out/sharded.json && grep -A4 '\"totals\"' $out/sharded.json"
step "$qtool copy $out/stories260K-sharded -o $out/stories260K.safetensors"
step "$qtool copy fixtures/stories260K/stories260K.gguf -o - | sha256sum"
step "sha256sum fixtures/stories260K/stories260K.gguf"
step "go run ./fixtures/cmd/genmodel --preset tiny --dtype f16 --format gguf -o $out/synthetic-tiny.gguf --force"
step "$qtool inspect $out/synthetic-tiny.gguf --no-metadata --tensors 'blk.1.*'"
a=$($qtool copy fixtures/stories260K/stories260K.gguf -o - | sha256sum | cut -d' ' -f1)
b=$(sha256sum fixtures/stories260K/stories260K.gguf | cut -d' ' -f1)
if [ "$a" != "$b" ]; then
	echo "demo: GGUF copy is not byte-identical" >&2
	exit 1
fi
echo
echo "demo: ok (outputs in $out/)"
