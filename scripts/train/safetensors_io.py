"""Minimal safetensors reader/writer (Debian ships no python3-safetensors).

Format: 8-byte little-endian header length n, n bytes of JSON header
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}, then the raw
little-endian tensor bytes (offsets relative to the end of the header). Only the dtypes a Zamba2
checkpoint uses: F32, F16, BF16 (BF16 read and written through its 16-bit pattern).
"""
import json
import struct

import torch

_DTYPES = {'F32': torch.float32, 'F16': torch.float16, 'BF16': torch.bfloat16}
_NAMES = {v: k for k, v in _DTYPES.items()}
_ITEM = {'F32': 4, 'F16': 2, 'BF16': 2}


def read_safetensors(path):
    """name -> tensor (in the stored dtype), and the __metadata__ dict."""
    with open(path, 'rb') as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f'{path}: too short for a safetensors file')
    (n,) = struct.unpack('<Q', raw[:8])
    if 8 + n > len(raw):
        raise ValueError(f'{path}: header length {n} exceeds the file')
    header = json.loads(raw[8:8 + n].decode('utf-8'))
    meta = header.pop('__metadata__', {}) or {}
    base = 8 + n
    out = {}
    for name, e in header.items():
        dt = e['dtype']
        if dt not in _DTYPES:
            raise ValueError(f'{path}: tensor {name} has unsupported dtype {dt}')
        b, end = e['data_offsets']
        shape = list(e['shape'])
        count = 1
        for d in shape:
            count *= d
        if end - b != count * _ITEM[dt] or base + end > len(raw):
            raise ValueError(f'{path}: tensor {name} byte range does not match dtype and shape')
        buf = bytearray(raw[base + b:base + end])
        if dt == 'BF16':
            t = torch.frombuffer(buf, dtype=torch.int16).view(torch.bfloat16) if count else torch.empty(0, dtype=torch.bfloat16)
        else:
            t = torch.frombuffer(buf, dtype=_DTYPES[dt]) if count else torch.empty(0, dtype=_DTYPES[dt])
        out[name] = t.reshape(shape)
    return out, meta


def write_safetensors(path, tensors, metadata=None):
    """tensors: ordered name -> tensor (F32/F16/BF16). Offsets follow the given order, 8-byte aligned header."""
    header = {}
    blobs = []
    off = 0
    for name, t in tensors.items():
        if t.dtype not in _NAMES:
            raise ValueError(f'tensor {name}: unsupported dtype {t.dtype}')
        t = t.detach().contiguous().cpu()
        data = (t.view(torch.int16) if t.dtype == torch.bfloat16 else t).numpy().tobytes()
        header[name] = {'dtype': _NAMES[t.dtype], 'shape': list(t.shape), 'data_offsets': [off, off + len(data)]}
        blobs.append(data)
        off += len(data)
    if metadata is not None:
        header = {'__metadata__': {k: str(v) for k, v in metadata.items()}, **header}
    hjson = json.dumps(header, separators=(',', ':')).encode('utf-8')
    hjson += b' ' * ((8 - len(hjson) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)
