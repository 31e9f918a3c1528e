"""Encodes texts with sentencepiece for the tokenizer package's tests.

    /usr/bin/python3 spm_encode.py MODEL < texts.json

stdin: a JSON array of strings. stdout: a JSON array of id lists, one per
text, without BOS or EOS. Exit status 3 when the sentencepiece module is
missing.
"""
import json
import sys

try:
    import sentencepiece
except ImportError:
    sys.exit(3)

proc = sentencepiece.SentencePieceProcessor(model_file=sys.argv[1])
json.dump([proc.encode(text) for text in json.load(sys.stdin)], sys.stdout)
sys.stdout.write("\n")
