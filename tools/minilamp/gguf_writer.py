"""A minimal GGUF v3 writer (numpy only): metadata key/values + F32 / Q8_0 tensors."""
import struct

import numpy as np

GGUF_MAGIC = b"GGUF"
GGUF_VERSION = 3
ALIGNMENT = 32

# metadata value types
T_UINT32, T_INT32, T_FLOAT32, T_BOOL, T_STRING, T_ARRAY, T_UINT64 = 4, 5, 6, 7, 8, 9, 10
# ggml tensor types
GGML_F32, GGML_Q8_0 = 0, 8
QK8_0 = 32


def _str(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _value(vtype, v):
    if vtype == T_UINT32:
        return struct.pack("<I", v)
    if vtype == T_INT32:
        return struct.pack("<i", v)
    if vtype == T_FLOAT32:
        return struct.pack("<f", v)
    if vtype == T_BOOL:
        return struct.pack("<B", 1 if v else 0)
    if vtype == T_STRING:
        return _str(v)
    if vtype == T_UINT64:
        return struct.pack("<Q", v)
    raise ValueError(f"unsupported value type {vtype}")


def quantize_q8_0(x):
    """x: float32 [rows, cols], cols % 32 == 0 -> bytes of Q8_0 blocks (fp16 d, 32 x int8)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    assert x.shape[-1] % QK8_0 == 0
    blocks = x.reshape(-1, QK8_0)
    amax = np.abs(blocks).max(axis=1)
    d = amax / 127.0
    inv = np.where(d > 0, 1.0 / np.where(d > 0, d, 1.0), 0.0).astype(np.float32)
    q = np.rint(blocks * inv[:, None]).astype(np.int8)  # rint = round half to even
    out = np.empty(blocks.shape[0], dtype=[("d", "<f2"), ("q", "i1", (QK8_0,))])
    out["d"] = d.astype(np.float16)
    out["q"] = q
    return out.tobytes()


def dequantize_q8_0(raw, shape):
    arr = np.frombuffer(raw, dtype=[("d", "<f2"), ("q", "i1", (QK8_0,))])
    return (arr["q"].astype(np.float32) * arr["d"].astype(np.float32)[:, None]).reshape(shape)


class GGUFWriter:
    def __init__(self):
        self.kv = []       # (key, type, value, elem_type)
        self.tensors = []  # (name, ne list, ggml type, bytes)

    def add(self, key, vtype, value):
        self.kv.append((key, vtype, value, None))

    def add_array(self, key, elem_type, values):
        self.kv.append((key, T_ARRAY, list(values), elem_type))

    def add_tensor(self, name, array, qtype=GGML_F32):
        """array is row-major numpy [..., ne0]; ggml ne is the reversed shape."""
        a = np.ascontiguousarray(array, dtype=np.float32)
        ne = list(reversed(a.shape))
        if qtype == GGML_Q8_0:
            data = quantize_q8_0(a.reshape(-1, ne[0]))
        else:
            data = a.tobytes()
        self.tensors.append((name, ne, qtype, data))

    def write(self, path):
        out = bytearray()
        out += GGUF_MAGIC + struct.pack("<IQQ", GGUF_VERSION, len(self.tensors), len(self.kv))
        for key, vtype, value, elem in self.kv:
            out += _str(key) + struct.pack("<I", vtype)
            if vtype == T_ARRAY:
                out += struct.pack("<IQ", elem, len(value))
                for v in value:
                    out += _value(elem, v)
            else:
                out += _value(vtype, value)
        offset = 0
        offsets = []
        for name, ne, qtype, data in self.tensors:
            offsets.append(offset)
            out += _str(name) + struct.pack("<I", len(ne)) + struct.pack(f"<{len(ne)}Q", *ne)
            out += struct.pack("<IQ", qtype, offset)
            offset += (len(data) + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT
        out += b"\x00" * ((-len(out)) % ALIGNMENT)
        for (name, ne, qtype, data), off in zip(self.tensors, offsets):
            out += data + b"\x00" * ((-len(data)) % ALIGNMENT)
        with open(path, "wb") as f:
            f.write(out)
