"""Encodes texts with sentencepiece for formats/vocab's tests.

    /usr/bin/python3 spm_encode.py A.model [B.model ...] < texts.json

stdin: a JSON array of strings. stdout: a JSON array with, per model, an
array of id lists (one per text, no BOS/EOS). Exit status 3 when the
sentencepiece module is missing, so the test can tell that from a failure.
"""
import json
import sys

try:
    import sentencepiece as spm
except ImportError:
    sys.exit(3)

texts = json.load(sys.stdin)
out = []
for path in sys.argv[1:]:
    sp = spm.SentencePieceProcessor(model_file=path)
    out.append([sp.encode(t) for t in texts])
json.dump(out, sys.stdout)
sys.stdout.write("\n")
