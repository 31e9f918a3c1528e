"""NFC-normalizes texts with Python's unicodedata for the tokenizer
package's tests.

    /usr/bin/python3 nfc.py < texts.json

stdin: a JSON array of strings; stdout: the array of their NFC forms and,
last, the Unicode version of unicodedata.
"""
import json
import sys
import unicodedata

out = [unicodedata.normalize("NFC", t) for t in json.load(sys.stdin)]
out.append(unicodedata.unidata_version)
json.dump(out, sys.stdout)
sys.stdout.write("\n")
