"""Reads a TensorFlow frozen graph (a `GraphDef` protobuf) without TensorFlow: its nodes and constants.

A frozen graph keeps every weight as a `Const` node. This reader walks the protobuf wire format
directly (the few fields needed, from TensorFlow's `graph.proto`, `node_def.proto`, `attr_value.proto`,
`tensor.proto` and `tensor_shape.proto`), so neither TensorFlow nor OpenCV's TensorFlow importer (gone
from OpenCV 5) is needed to load the offline SSD's weights into torch.

>>> graph = read_graph(Path("frozen_inference_graph.pb"))          # doctest: +SKIP
>>> graph.constant("BoxPredictor_0/BoxEncodingPredictor/biases").shape  # doctest: +SKIP
(12,)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pixelsift.errors import WeightsInvalidError

# TensorFlow's DataType enum values this reader turns into numpy arrays.
_DTYPES = {1: np.float32, 2: np.float64, 3: np.int32, 4: np.uint8, 9: np.int64, 10: np.bool_}


class GraphFormatError(WeightsInvalidError):
    """The file is not a readable TensorFlow GraphDef (truncated, damaged or another format)."""


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise GraphFormatError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise GraphFormatError("varint too long")


def fields(data: memoryview) -> Iterator[tuple[int, int, int | memoryview]]:
    """(field number, wire type, value) of each field of one message: an int for varints and fixed
    widths, the bytes for length-delimited fields."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire == 2:
            size, pos = _varint(data, pos)
            if pos + size > end:
                raise GraphFormatError("a field runs past the end of its message")
            yield number, wire, data[pos : pos + size]
            pos += size
        elif wire == 5:
            yield number, wire, int.from_bytes(data[pos : pos + 4], "little")
            pos += 4
        elif wire == 1:
            yield number, wire, int.from_bytes(data[pos : pos + 8], "little")
            pos += 8
        else:
            raise GraphFormatError(f"unsupported wire type {wire}")


def _signed(value: int) -> int:
    """A varint-encoded int32 / int64: negative values are sent as 64-bit two's complement."""
    return value - (1 << 64) if value >= 1 << 63 else value


def _tensor(data: memoryview) -> np.ndarray:
    """A TensorProto: dtype 1, tensor_shape 2, tensor_content 4, float_val 5, int_val 7 (packed or not)."""
    dtype_id, shape, content = 1, [], None
    floats: list[float] = []
    ints: list[int] = []
    for number, _, value in fields(data):
        if number == 1 and isinstance(value, int):
            dtype_id = value
        elif number == 2 and isinstance(value, memoryview):
            for n, _, dim in fields(value):
                if n == 2 and isinstance(dim, memoryview):
                    shape.append(
                        next((int(v) for k, _, v in fields(dim) if k == 1 and isinstance(v, int)), 0)
                    )
        elif number == 4 and isinstance(value, memoryview):
            content = bytes(value)
        elif number == 5:
            if isinstance(value, memoryview):
                floats.extend(np.frombuffer(bytes(value), "<f4").tolist())
            else:
                floats.append(float(np.array([value], np.uint32).view(np.float32)[0]))
        elif number == 7:
            if isinstance(value, memoryview):
                pos = 0
                while pos < len(value):
                    v, pos = _varint(value, pos)
                    ints.append(_signed(v))
            else:
                ints.append(_signed(int(value)))
    dtype = _DTYPES.get(dtype_id)
    if dtype is None:
        return np.zeros(0, np.float32)  # strings and other kinds: not weights
    count = int(np.prod(shape)) if shape else 1
    arr: np.ndarray
    if content is not None:
        arr = np.frombuffer(content, dtype).copy()
    elif floats or ints:
        arr = np.asarray(floats or ints, dtype)
    else:
        arr = np.zeros(0, dtype)
    if arr.size == 1 and count > 1:  # a splat: one value stands for the whole tensor
        arr = np.full(count, arr[0], dtype)
    if arr.size != count:
        raise GraphFormatError(f"a tensor holds {arr.size} values for shape {shape}")
    return arr.reshape(shape)


@dataclass
class Node:
    name: str
    op: str


@dataclass
class Graph:
    """The nodes of a GraphDef (name -> op and inputs) and the values of its Const nodes."""

    nodes: dict[str, Node]
    constants: dict[str, np.ndarray]

    def constant(self, name: str) -> np.ndarray:
        try:
            return self.constants[name]
        except KeyError:
            raise GraphFormatError(f"the graph has no constant {name!r}") from None


def read_graph(path: Path) -> Graph:
    """Every node of the GraphDef at `path`, with the values of its constants."""
    try:
        data = memoryview(path.read_bytes())
    except OSError as exc:
        raise GraphFormatError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    nodes: dict[str, Node] = {}
    constants: dict[str, np.ndarray] = {}
    try:
        for number, _, node_bytes in fields(data):
            if number != 1 or not isinstance(node_bytes, memoryview):
                continue  # versions, library: not needed
            node = Node("", "")
            value_attr = None
            for n, _, v in fields(node_bytes):
                if not isinstance(v, memoryview):
                    continue
                if n == 1:
                    node.name = bytes(v).decode()
                elif n == 2:
                    node.op = bytes(v).decode()
                elif n == 5:  # map<string, AttrValue> entry: key 1, value 2
                    entry = {k: val for k, _, val in fields(v)}
                    key = entry.get(1)
                    if isinstance(key, memoryview) and bytes(key) == b"value":
                        value_attr = entry.get(2)
            nodes[node.name] = node
            if node.op == "Const" and isinstance(value_attr, memoryview):
                tensor = next((t for k, _, t in fields(value_attr) if k == 8), None)  # AttrValue.tensor
                if isinstance(tensor, memoryview):
                    constants[node.name] = _tensor(tensor)
    except (GraphFormatError, UnicodeDecodeError, ValueError) as exc:
        raise GraphFormatError(f"{path}: not a readable TensorFlow graph ({exc})") from None
    if not nodes:
        raise GraphFormatError(f"{path}: not a TensorFlow graph (no nodes)")
    return Graph(nodes, constants)
