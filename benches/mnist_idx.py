"""MNIST's gzipped IDX files as numpy arrays, for the side-by-side scripts under benches/ (numpy only; the
project itself reads MNIST in Rust: trainer/src/data)."""

import gzip
import struct

import numpy as np


def idx(path):
    """The array stored in one gzipped IDX file (unsigned bytes, its own shape)."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = struct.unpack(">" + "I" * dims, data[4 : 4 + 4 * dims])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)

