"""A search's large arrays and frames sent to each engine once, not with every batch of fits.

The client pickles each batch itself (`SharedData.prepare`): an array or frame of at least
`PUSH_THRESHOLD_BYTES` whose copy every engine already holds is pickled as a key, which the
engine's unpickling looks up in this module's store (`_fetch`). The first time the client meets
such an object (by identity: a search passes the same X, y and fold indices to every fit) it
sends it to every engine through a DirectView (the same authenticated channels as every task),
and until every engine has acknowledged it, batches still carry it inline. So no submit ever
waits for a push: joblib dispatches batches from the client's I/O thread, which a wait would
block. The engines drop their copies when the search ends (`SharedData.close`).

An engine keeps its copy read-only, as loky's memory-mapped arrays are: a fit that wrote into
its input would otherwise change the data of every later fit on that engine.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import logging
import pickle
import sys
import threading
import uuid
from dataclasses import dataclass

import cloudpickle

log = logging.getLogger(__name__)

# Smaller objects ride along with every batch: a push to each engine costs a round trip, and
# halving's and asha's smaller fold indices are new arrays on every rung.
PUSH_THRESHOLD_BYTES = 64 * 1024
DROP_TIMEOUT_SECONDS = 10

_STORE: dict[str, object] = {}  # on an engine: the data pushed to it, by key


def _keep(key: str, data) -> None:
    """On an engine: hold `data` under `key`, read-only."""
    if hasattr(data, "setflags"):
        data.setflags(write=False)
    _STORE[key] = data


def _fetch(key: str):
    """On an engine, while a batch is unpickled: the data stored under `key`."""
    try:
        return _STORE[key]
    except KeyError:
        raise LookupError(f"engine data {key} was never sent to this engine") from None


def _drop(keys: list[str]) -> None:
    for key in keys:
        _STORE.pop(key, None)


def _sparse_nbytes(matrix) -> int:
    parts = ("data", "indices", "indptr", "row", "col", "offsets")
    return sum(getattr(matrix, name).nbytes for name in parts if hasattr(matrix, name))


def _pandas_nbytes(frame) -> int:
    usage = frame.memory_usage(index=True, deep=False)
    return int(usage.sum()) if hasattr(usage, "sum") else int(usage)


_SIZERS: dict[type, object] = {}  # type -> its size function, or None: never pushed


def _sizer(kind: type):
    """How to measure an object of type `kind`: numpy arrays, pandas frames and series, scipy
    sparse matrices; None for any other type. Looked up once per type."""
    if kind in _SIZERS:
        return _SIZERS[kind]
    sizer = None
    numpy, pandas = sys.modules.get("numpy"), sys.modules.get("pandas")
    sparse = sys.modules.get("scipy.sparse")
    if numpy is not None and issubclass(kind, numpy.ndarray):
        sizer = lambda array: array.nbytes  # noqa: E731
    elif pandas is not None and issubclass(kind, pandas.DataFrame | pandas.Series):
        sizer = _pandas_nbytes
    elif sparse is not None and kind.__module__.startswith("scipy.sparse"):
        sizer = _sparse_nbytes if hasattr(kind, "nnz") else None
    _SIZERS[kind] = sizer
    return sizer


@dataclass
class _Entry:
    """One object met in batches: its key, the engines it was sent to, whether they all have
    it (`ready`), and the push in flight."""

    data: object  # held, so that its id is not reused while it is a key here
    key: str
    engines: frozenset = frozenset()
    ready: bool = False
    push: object = None  # the push's AsyncResult while in flight
    failed: bool = False


class _Pickler(cloudpickle.Pickler):
    """cloudpickle, with the data every engine holds pickled as a lookup of its key."""

    def __init__(self, file, shared: SharedData):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._shared = shared

    def reducer_override(self, obj):
        sizer = _sizer(type(obj))
        if sizer is not None:
            key = self._shared.stored_key(obj, sizer)
            if key is not None:
                return _fetch, (key,)
        return super().reducer_override(obj)


class _Prepickled:
    """A batch pickled by SharedData: unpickles on the engine as the batch itself."""

    def __init__(self, batch, payload: bytes):
        self._batch = batch
        self.payload = payload

    def __call__(self):  # the view only accepts callables; the engine calls the batch itself
        return self._batch()

    def __reduce__(self):
        return pickle.loads, (self.payload,)


class SharedData:
    """The data of one search's batches, each large object sent once to every engine of
    `client`; `pushes` and `pushed_bytes` count what was sent (one per object and engine)."""

    def __init__(self, client, threshold: int = PUSH_THRESHOLD_BYTES):
        self._client = client
        self._threshold = threshold
        self._lock = threading.Lock()
        self._entries: dict[int, _Entry] = {}
        self._keys = (f"{uuid.uuid4().hex[:12]}-{n}" for n in itertools.count())
        self.pushes = 0
        self.pushed_bytes = 0

    def prepare(self, batch) -> _Prepickled:
        """`batch`, for the view: pickled with the data every engine holds as keys."""
        buffer = io.BytesIO()
        _Pickler(buffer, self).dump(batch)
        return _Prepickled(batch, buffer.getvalue())

    def stored_key(self, obj, sizer) -> str | None:
        """The key of `obj` if every engine holds it; None (pickle it inline) if it is small
        or not yet everywhere, in which case it is sent to the engines that lack it."""
        with self._lock:
            entry = self._entries.get(id(obj))
            if entry is None or entry.data is not obj:
                size = sizer(obj)
                if size < self._threshold:
                    return None
                entry = self._entries[id(obj)] = _Entry(obj, next(self._keys))
            self._settle(entry)
            if entry.failed:
                return None
            engines = frozenset(self._client.ids)
            if entry.ready and engines <= entry.engines:
                return entry.key
            if entry.push is None:
                self._push(entry, engines - entry.engines)
            return None

    def _settle(self, entry: _Entry) -> None:
        push = entry.push
        if push is None or not push.done():
            return
        entry.push = None
        try:
            push.get(0)
        except Exception as error:  # an engine died or refused: this object stays inline
            log.warning(
                "could not send data to the engines (%s); sending it with each batch", error
            )
            entry.failed = True
            return
        entry.ready = True

    def _push(self, entry: _Entry, engines: frozenset) -> None:
        targets = sorted(engines)
        entry.ready = False  # until these engines acknowledge it too
        entry.push = self._client[targets].apply_async(_keep, entry.key, entry.data)
        entry.engines = entry.engines | engines
        self.pushes += len(targets)
        self.pushed_bytes += len(targets) * _sizer(type(entry.data))(entry.data)

    def close(self) -> None:
        """Drop every engine's copies and this side's references: the search is over."""
        with self._lock:
            keys = [entry.key for entry in self._entries.values()]
            self._entries.clear()
        if keys and self._client.ids:
            with contextlib.suppress(Exception):
                self._client[:].apply_async(_drop, keys).get(DROP_TIMEOUT_SECONDS)
