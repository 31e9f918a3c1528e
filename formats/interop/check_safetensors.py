#!/usr/bin/python3
"""Independent safetensors parser for qtool's interop tests (standard library only).

Usage: check_safetensors.py FILE.safetensors [--no-hash]

Reads the file with nothing but json, struct and hashlib, validates it against
the safetensors format, and prints one JSON object on stdout:

  {"file_size": …, "header_length": N, "data_start": 8 + N,
   "metadata": {…} or null,
   "tensors": [{"name", "dtype", "shape", "data_offsets": [begin, end],
                "sha256"}, …]   (sorted by begin offset),
   "errors": [ … ]}             (empty when the file is valid)

Checks: the header length fits the file; the header is UTF-8 JSON holding an
object; every entry other than __metadata__ has a known dtype, a list of
non-negative integer dims and two offsets; end - begin equals the element
count times the dtype size; no key repeats; the byte ranges, sorted, start at 0, touch each
other with no gap and no overlap, and end exactly at the end of the file.
The exit status is 0 when the file is valid, 1 when it is not, 2 on usage
errors.
"""

import hashlib
import json
import os
import struct
import sys

# Element sizes in bits, from the safetensors specification.
DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "F8_E4M3": 8, "F8_E5M2": 8,
    "F8_E8M0": 8, "F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
    "I16": 16, "U16": 16, "F16": 16, "BF16": 16,
    "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64,
    "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}

MAX_HEADER = 100_000_000


def nbytes(dtype, shape):
    n = 1
    for d in shape:
        n *= d
    bits = n * DTYPE_BITS[dtype]
    if bits % 8:
        return None
    return bits // 8


def check(path, want_hash):
    errors = []
    size = os.path.getsize(path)
    out = {"file_size": size, "header_length": None, "data_start": None,
           "metadata": None, "tensors": [], "errors": errors}
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) < 8:
            errors.append("file shorter than the 8-byte header length")
            return out
        (n,) = struct.unpack("<Q", raw)
        out["header_length"] = n
        if n > MAX_HEADER or 8 + n > size:
            errors.append("header length %d does not fit a file of %d bytes" % (n, size))
            return out
        out["data_start"] = 8 + n
        dups = []

        def pairs(kvs):
            seen = {}
            for k, v in kvs:
                if k in seen:
                    dups.append(k)
                seen[k] = v
            return seen

        try:
            header = json.loads(f.read(n).decode("utf-8"), object_pairs_hook=pairs)
        except (UnicodeDecodeError, ValueError) as e:
            errors.append("header is not UTF-8 JSON: %s" % e)
            return out
        if not isinstance(header, dict):
            errors.append("header is not a JSON object")
            return out
        for k in dups:
            errors.append("%s: key appears more than once" % k)
        meta = header.pop("__metadata__", None)
        if meta is not None:
            if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
                errors.append("__metadata__ is not an object of strings")
            out["metadata"] = meta
        tensors = []
        for name, info in header.items():
            if not isinstance(info, dict):
                errors.append("%s: entry is not an object" % name)
                continue
            dtype, shape, offs = info.get("dtype"), info.get("shape"), info.get("data_offsets")
            if dtype not in DTYPE_BITS:
                errors.append("%s: unknown dtype %r" % (name, dtype))
                continue
            if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
                errors.append("%s: bad shape %r" % (name, shape))
                continue
            if (not isinstance(offs, list) or len(offs) != 2
                    or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offs)
                    or offs[0] > offs[1]):
                errors.append("%s: bad data_offsets %r" % (name, offs))
                continue
            want = nbytes(dtype, shape)
            if want is None or offs[1] - offs[0] != want:
                errors.append("%s: %d bytes for %s%r, expected %r" % (name, offs[1] - offs[0], dtype, shape, want))
            tensors.append({"name": name, "dtype": dtype, "shape": shape, "data_offsets": offs})
        tensors.sort(key=lambda t: (t["data_offsets"][0], t["data_offsets"][1], t["name"]))
        pos = 0
        for t in tensors:
            b, e = t["data_offsets"]
            if b > pos:
                errors.append("%s: gap of %d bytes before it" % (t["name"], b - pos))
            elif b < pos:
                errors.append("%s: overlaps the previous tensor by %d bytes" % (t["name"], pos - b))
            pos = max(pos, e)
        if 8 + n + pos != size:
            errors.append("data ends at %d but the file has %d bytes" % (8 + n + pos, size))
        for t in tensors:
            b, e = t["data_offsets"]
            if not want_hash or 8 + n + e > size:
                continue
            h = hashlib.sha256()
            f.seek(8 + n + b)
            left = e - b
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
            t["sha256"] = h.hexdigest()
        out["tensors"] = tensors
    return out


def main(argv):
    args = [a for a in argv[1:] if not a.startswith("--")]
    if len(args) != 1:
        sys.stderr.write("usage: check_safetensors.py FILE.safetensors [--no-hash]\n")
        return 2
    out = check(args[0], "--no-hash" not in argv)
    json.dump(out, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
    return 1 if out["errors"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
