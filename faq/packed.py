"""Compact, lazily decoded forms of a built FAQ index (what faq/indexcache.py keeps on disk).

Owns the containers a matcher read from the on-disk cache uses instead of the dicts and lists a
fresh build makes: postings per term packed as machine arrays and decoded when a message first
uses that term, and one packed record per entry decoded when the entry is first scored. Values
come back exactly as the fresh build made them (the same ints, the same float bits, the same
order), so a cached matcher ranks and scores like a fresh one. Nothing here reads files.
"""

from __future__ import annotations

import marshal
from array import array
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")


def pack_positions(positions: Iterable[int]) -> bytes:
    """Entry positions as 32-bit machine ints."""
    return array("i", positions).tobytes()


def unpack_positions(blob: bytes) -> list[int]:
    values = array("i")
    values.frombytes(blob)
    return values.tolist()


def pack_weighted(postings: Iterable[tuple[int, float]]) -> bytes:
    """(position, weight) pairs as the positions' ints followed by the weights' doubles."""
    items = list(postings)
    return array("i", [p for p, _ in items]).tobytes() + array("d", [w for _, w in items]).tobytes()


def unpack_weighted(blob: bytes) -> list[tuple[int, float]]:
    count = len(blob) // 12
    positions, weights = array("i"), array("d")
    positions.frombytes(blob[: 4 * count])
    weights.frombytes(blob[4 * count :])
    return list(zip(positions.tolist(), weights.tolist(), strict=True))


class LazyMap(Generic[T]):
    """key -> value, decoded from packed bytes on first use (then kept)."""

    __slots__ = ("_decode", "_done", "_packed")

    def __init__(self, packed: Mapping[str, bytes], decode: Callable[[bytes], T]) -> None:
        self._packed = packed
        self._decode = decode
        self._done: dict[str, T] = {}

    def get(self, key: str, default: T | None = None) -> T | None:
        found = self._done.get(key)
        if found is None:
            blob = self._packed.get(key)
            if blob is None:
                return default
            found = self._done[key] = self._decode(blob)
        return found

    def __contains__(self, key: object) -> bool:
        return key in self._packed

    def __len__(self) -> int:
        return len(self._packed)


class LazyRows(Sequence[T]):
    """position -> value, decoded from one packed record per position on first use."""

    __slots__ = ("_decode", "_done", "_packed")

    def __init__(self, packed: list[bytes], decode: Callable[[bytes], T]) -> None:
        self._packed = packed
        self._decode = decode
        self._done: list[T | None] = [None] * len(packed)

    @overload
    def __getitem__(self, position: int) -> T: ...

    @overload
    def __getitem__(self, position: slice) -> Sequence[T]: ...

    def __getitem__(self, position: int | slice) -> T | Sequence[T]:
        if isinstance(position, slice):
            return [self[i] for i in range(*position.indices(len(self)))]
        found = self._done[position]
        if found is None:
            found = self._done[position] = self._decode(self._packed[position])
        return found

    def __len__(self) -> int:
        return len(self._packed)


def dumps(value: Any) -> bytes:
    """Plain data (str, int, float, bytes, tuple, list, dict, frozenset) as bytes."""
    return marshal.dumps(value)


def loads(blob: bytes) -> object:
    return marshal.loads(blob)
