"""Read a legacy (pre-1.6, non-zip) ``torch.save`` state dict with numpy only.

The file is five pickles in a row (magic number, protocol version, system info,
the state dict, the list of storage keys) followed by the raw storages, each an
int64 element count and little-endian data. Tensors inside the state dict are
``torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`` calls
whose storages are persistent ids. A restricted unpickler accepts exactly those
globals, so an untrusted file can name no other callable.
"""

from __future__ import annotations

import collections
import pickle
from pathlib import Path

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class TorchFileError(ValueError):
    """The file is not a legacy torch state dict this reader understands."""


class _StorageType:
    def __init__(self, name: str):
        self.name = name
        self.dtype = _STORAGE_DTYPES[name]


class _Storage:
    def __init__(self, dtype: np.dtype, numel: int):
        self.dtype = dtype
        self.numel = numel
        self.data: np.ndarray | None = None


class _TensorRef:
    def __init__(self, storage: _Storage, offset: int, size: tuple, stride: tuple):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    def to_numpy(self) -> np.ndarray:
        flat = self.storage.data
        if not self.size:
            return flat[self.offset].copy()
        itemsize = flat.dtype.itemsize
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if last >= flat.size:
            raise TorchFileError("a tensor reaches past the end of its storage")
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset :],
            shape=self.size,
            strides=tuple(s * itemsize for s in self.stride),
            writeable=False,
        )
        return np.ascontiguousarray(view)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *_):
    return _TensorRef(storage, int(offset), tuple(size), tuple(stride))


class _Unpickler(pickle.Unpickler):
    def __init__(self, file, storages: dict):
        super().__init__(file)
        self._storages = storages

    def find_class(self, module, name):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise TorchFileError(f"refusing to load {module}.{name} from a weights file")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise TorchFileError(f"unexpected persistent id {pid!r}")
        storage_type, key, _location, numel = pid[1:5]
        if key not in self._storages:
            self._storages[key] = _Storage(storage_type.dtype, int(numel))
        return self._storages[key]


def _plain_load(f):
    """Load one of the header pickles, which hold only plain values."""
    return _Unpickler(f, {}).load()


def read_legacy_state_dict(path: str | Path) -> collections.OrderedDict[str, np.ndarray]:
    """Return the tensors of a legacy torch.save state dict as numpy arrays."""
    storages: dict = {}
    with open(path, "rb") as f:
        try:
            magic = _plain_load(f)
            protocol = _plain_load(f)
            _plain_load(f)  # system info: endianness and type sizes
        except (pickle.UnpicklingError, EOFError) as exc:
            raise TorchFileError(f"{path} is not a legacy torch.save file: {exc}") from exc
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
            raise TorchFileError(f"{path} is not a legacy torch.save file (magic {magic!r})")
        state = _Unpickler(f, storages).load()
        keys = _plain_load(f)
        for key in keys:
            storage = storages[key]
            count = np.frombuffer(f.read(8), "<i8")
            if count.size != 1 or int(count[0]) != storage.numel:
                raise TorchFileError(f"storage {key} is truncated or inconsistent")
            raw = f.read(storage.numel * storage.dtype.itemsize)
            if len(raw) != storage.numel * storage.dtype.itemsize:
                raise TorchFileError(f"storage {key} is truncated")
            storage.data = np.frombuffer(raw, storage.dtype)
    if not isinstance(state, dict):
        raise TorchFileError(f"{path} does not hold a state dict")
    return collections.OrderedDict((name, ref.to_numpy()) for name, ref in state.items())
