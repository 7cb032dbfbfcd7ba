#!/usr/bin/python3
"""Converts a PyTorch state_dict saved with torch.save to a safetensors file
that igrc reads (`MODEL eval --ckpt`, `MODEL train --init-from`,
`igrc exec --params`).

    /usr/bin/python3 scripts/pt_to_safetensors.py IN.pt OUT.safetensors

IN.pt holds a state_dict (name -> tensor), or a checkpoint dict holding one
under 'state_dict' or 'model' (other entries, such as an optimizer's state,
are left out). Tensors keep their dtype (F32, F64, F16, BF16, I64, ...);
igrc converts floats to the program's type when it loads them. The file is
written by hand (an 8-byte little-endian header length, a JSON header, the
raw little-endian data), so the safetensors package is not needed, and
atomically: OUT never exists half-written.

The module also serves tests: save_safetensors and load_safetensors write
and read the format for a dict of tensors.
"""
import argparse
import json
import os
import pickle
import struct
import sys

import torch

# torch dtype -> safetensors name, for the dtypes igrc reads.
DTYPES = {
    torch.float32: "F32",
    torch.float64: "F64",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}
NAMES = {v: k for k, v in DTYPES.items()}


class ConvertError(Exception):
    """A problem with the input, reported as one line naming the file."""


def state_dict_of(obj, path):
    """The name -> tensor dict inside what torch.load returned."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict):
        raise ConvertError(f"{path}: holds a {type(obj).__name__}, not a state_dict (a dict of "
                           "tensors, or a checkpoint dict with one under 'state_dict' or 'model')")
    bad = [f"'{k}' ({type(v).__name__})" for k, v in obj.items() if not torch.is_tensor(v)]
    if bad:
        shown = ", ".join(bad[:8]) + (f", ... ({len(bad) - 8} more)" if len(bad) > 8 else "")
        raise ConvertError(f"{path}: entries that are not tensors: {shown}; save "
                           "model.state_dict() rather than the model or a training state")
    for k, v in obj.items():
        if not isinstance(k, str):
            raise ConvertError(f"{path}: key {k!r} is not a string")
        if v.dtype not in DTYPES:
            raise ConvertError(f"{path}: tensor '{k}' has dtype {v.dtype}, which igrc does not "
                               f"read (it reads {', '.join(DTYPES.values())})")
    return obj


def tensor_bytes(t):
    """The tensor's elements, row-major, little-endian (this host's order)."""
    flat = t.detach().cpu().contiguous().reshape(-1)
    if flat.numel() == 0:
        return b""
    return flat.view(torch.uint8).numpy().tobytes()


def save_safetensors(tensors, path, metadata=None):
    """Writes {name: tensor} (in the dict's order) to path, atomically."""
    if sys.byteorder != "little":
        raise ConvertError("safetensors data is little-endian: this host is not")
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, t in tensors.items():
        data = tensor_bytes(t)
        header[name] = {"dtype": DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the data section starts 8-aligned
    tmp = f"{path}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            for b in blobs:
                f.write(b)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_safetensors(path):
    """({name: tensor}, metadata) of a safetensors file."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ConvertError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ConvertError(f"{path}: header length {n} beyond the end of the file")
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", None) or {}
    data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if e["dtype"] not in NAMES:
            raise ConvertError(f"{path}: tensor '{name}' has dtype {e['dtype']}, not one of "
                               f"{', '.join(NAMES)}")
        begin, end = e["data_offsets"]
        buf = bytearray(data[begin:end])
        t = torch.frombuffer(buf, dtype=torch.uint8) if buf else torch.empty(0, dtype=torch.uint8)
        out[name] = t.view(NAMES[e["dtype"]]).reshape(e["shape"]).clone()
    return out, meta


def load_pt(path, trust_pickle):
    """torch.load, by default restricted to tensors and plain containers."""
    try:
        if trust_pickle:
            return torch.load(path, map_location="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ConvertError(f"{path}: no such file") from None
    except (pickle.UnpicklingError, RuntimeError) as e:
        text = str(e).strip() or type(e).__name__
        restricted = "WeightsUnpickler error:" in text
        if restricted:  # torch's own advice runs long; keep what it found
            text = "it holds more than tensors and plain containers (" + \
                text.split("WeightsUnpickler error:", 1)[1].strip() + "); if you trust the " \
                "file, pass --trust-pickle (unpickling runs code from it)"
        raise ConvertError(f"{path}: cannot load: {text.splitlines()[0]}") from None


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", metavar="IN.pt", help="a file written by torch.save")
    ap.add_argument("output", metavar="OUT.safetensors")
    ap.add_argument("--strip-prefix", metavar="P", default="",
                    help="remove P from the start of every name (e.g. 'module.' of DataParallel)")
    ap.add_argument("--trust-pickle", action="store_true",
                    help="load IN.pt with full pickle (needed for files holding other objects)")
    args = ap.parse_args(argv)
    try:
        sd = state_dict_of(load_pt(args.input, args.trust_pickle), args.input)
        p = args.strip_prefix
        sd = {(k[len(p):] if p and k.startswith(p) else k): v for k, v in sd.items()}
        save_safetensors(sd, args.output, {"format": "pt",
                                           "source": os.path.basename(args.input)})
    except (ConvertError, OSError) as e:
        print(f"pt_to_safetensors: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {len(sd)} tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
