"""The search tree as JSON that grows by deltas: a step writes only what it changed.

The stored value is a plain dict (so checkpointers and LangGraph Studio store and show it)::

    {"size": N, "nodes": [[node, ...], ...],           # node dicts in chunks of CHUNK
     "lists": {name: {"head": h, "size": n, "items": [[id, ...], ...]}},   # a strategy's queue, stack or beam
     "meta": {key: value}}

Strategies and evaluators never touch it: they work on a ``Tree`` view, which reads the stored value
through an overlay of its own changes and records them as ops. The graph returns the ops as the step's
write, and ``apply_ops`` (the channel's reducer) builds the next value. The reducer never changes a value
it was given: it copies the outer chunk list and the chunks it touches (a few hundred references at
most), so LangGraph may copy, replay or snapshot values freely, a step costs what it changed rather than
the size of the tree, and a checkpointer stores deltas. Replaying the same ops gives the same tree, which
is how a checkpointed search resumes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

CHUNK = 64
Op = list[Any]  # ["add", node] | ["update", id, fields] | ["push", name, ids] | ["pop_front", name, n]
#                 | ["pop_back", name, n] | ["set", name, ids] | ["meta", key, value]


def empty_tree() -> dict[str, Any]:
    return {"size": 0, "nodes": [], "lists": {}, "meta": {}}


class _Chunks:
    """A chunked list being edited: copies the outer list once and each chunk it writes once."""

    def __init__(self, chunks: list[list[Any]], size: int) -> None:
        self.chunks, self.size = list(chunks), size
        self.fresh: set[int] = set()  # chunks already copied in this edit

    def _own(self, c: int) -> list[Any]:
        if c not in self.fresh:
            self.chunks[c] = list(self.chunks[c])
            self.fresh.add(c)
        return self.chunks[c]

    def get(self, i: int) -> Any:
        return self.chunks[i // CHUNK][i % CHUNK]

    def set(self, i: int, value: Any) -> None:
        self._own(i // CHUNK)[i % CHUNK] = value

    def append(self, value: Any) -> None:
        if self.size % CHUNK == 0:
            self.chunks.append([])
            self.fresh.add(len(self.chunks) - 1)
        self._own(len(self.chunks) - 1).append(value)
        self.size += 1

    def pop(self) -> None:
        last = len(self.chunks) - 1
        self._own(last).pop()
        self.size -= 1
        if not self.chunks[last]:
            self.chunks.pop()
            self.fresh.discard(last)


def _list_chunks(items: Iterable[int]) -> list[list[int]]:
    items = list(items)
    return [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]


def apply_ops(value: dict[str, Any] | None, writes: Sequence[Sequence[Op]]) -> dict[str, Any]:
    """The tree channel's reducer: the value after each write (a list of ops), in order.

    Deterministic and batching-invariant, as LangGraph's ``DeltaChannel`` requires; never mutates ``value``.
    """
    base = value if value else empty_tree()
    nodes = _Chunks(base["nodes"], base["size"])
    lists: dict[str, Any] = dict(base["lists"])
    editing: dict[str, _Chunks] = {}
    heads: dict[str, int] = {}
    meta = dict(base["meta"])

    def edit(name: str) -> _Chunks:
        if name not in editing:
            stored = lists.get(name) or {"head": 0, "size": 0, "items": []}
            editing[name], heads[name] = _Chunks(stored["items"], stored["size"]), stored["head"]
        return editing[name]

    for ops in writes:
        for op in ops:
            kind = op[0]
            if kind == "add":
                if op[1]["id"] != nodes.size:
                    raise ValueError(f"node {op[1]['id']} added where node {nodes.size} was due")
                nodes.append(dict(op[1]))
            elif kind == "update":
                nodes.set(op[1], {**nodes.get(op[1]), **op[2]})
            elif kind == "push":
                items = edit(op[1])
                for item in op[2]:
                    items.append(item)
            elif kind == "pop_front":
                edit(op[1])
                heads[op[1]] += op[2]
            elif kind == "pop_back":
                items = edit(op[1])
                for _ in range(op[2]):
                    items.pop()
            elif kind == "set":
                editing[op[1]], heads[op[1]] = _Chunks(_list_chunks(op[2]), len(op[2])), 0
            elif kind == "meta":
                meta[op[1]] = op[2]
            else:
                raise ValueError(f"unknown tree op {kind!r}")
    for name, items in editing.items():
        lists[name] = {"head": heads[name], "size": items.size, "items": items.chunks}
    return {"size": nodes.size, "nodes": nodes.chunks, "lists": lists, "meta": meta}


def nodes_of(value: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Every node of a stored tree, in id order (for reading a finished search)."""
    return [node for chunk in (value or empty_tree())["nodes"] for node in chunk]


class _ListView:
    """A stored list seen through the pops and pushes of the current step."""

    __slots__ = ("chunks", "head", "end", "pushed")

    def __init__(self, stored: dict[str, Any] | None) -> None:
        self.chunks: list[list[int]] = stored["items"] if stored else []
        self.head = stored["head"] if stored else 0
        self.end = stored["size"] if stored else 0  # stored items at or past ``end`` were popped from the back
        self.pushed: list[int] = []

    def _base(self, i: int) -> int:
        return self.chunks[i // CHUNK][i % CHUNK]

    def __len__(self) -> int:
        return self.end - self.head + len(self.pushed)

    def __getitem__(self, i: int) -> int:
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        stored = self.end - self.head
        return self._base(self.head + i) if i < stored else self.pushed[i - stored]

    def __iter__(self) -> Iterator[int]:
        for i in range(self.head, self.end):
            yield self._base(i)
        yield from self.pushed


class Tree:
    """A view of the stored tree that records every change as an op (see the module docstring).

    ``Tree()`` alone is a standalone tree, for strategies and evaluators tested without a graph:
    ``commit()`` applies the recorded ops to its own stored value.
    """

    def __init__(self, stored: dict[str, Any] | None = None) -> None:
        self.stored = stored if stored else empty_tree()
        self._size = self.stored["size"]
        self._chunks = self.stored["nodes"]
        self._added: list[dict[str, Any]] = []
        self._updated: dict[int, dict[str, Any]] = {}
        self._lists: dict[str, _ListView] = {}
        self._meta: dict[str, Any] = {}
        self.ops: list[Op] = []

    # -- nodes ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._size + len(self._added)

    def __getitem__(self, node_id: int) -> dict[str, Any]:
        if node_id in self._updated:
            return self._updated[node_id]
        if 0 <= node_id < self._size:
            return self._chunks[node_id // CHUNK][node_id % CHUNK]
        if self._size <= node_id < len(self):
            return self._added[node_id - self._size]
        raise IndexError(f"no node {node_id} in a tree of {len(self)}")

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for node_id in range(len(self)):
            yield self[node_id]

    def add(self, node: dict[str, Any]) -> int:
        """Append a node (its ``id`` is assigned here) and return its id."""
        node = {**node, "id": len(self)}
        self._added.append(node)
        self.ops.append(["add", node])
        return node["id"]

    def update(self, node_id: int, **fields: Any) -> dict[str, Any]:
        """Replace some fields of a node; returns the node as it now is."""
        node = {**self[node_id], **fields}
        if node_id < self._size:
            self._updated[node_id] = node
        else:
            self._added[node_id - self._size] = node
        self.ops.append(["update", node_id, fields])
        return node

    def path(self, node_id: int) -> list[int]:
        """Node ids from the root to ``node_id``."""
        path = [node_id]
        while self[path[-1]]["parent"] is not None:
            path.append(self[path[-1]]["parent"])
        return path[::-1]

    # -- named lists (a strategy's queue, stack or beam) ----------------------------------------

    def items(self, name: str) -> _ListView:
        """The named list as it now is (read-only; change it with push/pop_front/pop_back/set_list)."""
        if name not in self._lists:
            self._lists[name] = _ListView(self.stored["lists"].get(name))
        return self._lists[name]

    def push(self, name: str, ids: Iterable[int]) -> None:
        ids = list(ids)
        if ids:
            self.items(name).pushed.extend(ids)
            self.ops.append(["push", name, ids])

    def pop_front(self, name: str) -> int | None:
        view = self.items(name)
        if not len(view):
            return None
        first = view[0]
        if view.head < view.end:
            view.head += 1
        else:
            view.pushed.pop(0)  # only items pushed in this same step: a handful at most
        self.ops.append(["pop_front", name, 1])
        return first

    def pop_back(self, name: str) -> int | None:
        view = self.items(name)
        if not len(view):
            return None
        if view.pushed:
            last = view.pushed.pop()
        else:
            view.end -= 1
            last = view._base(view.end)
        self.ops.append(["pop_back", name, 1])
        return last

    def set_list(self, name: str, ids: Iterable[int]) -> None:
        ids = list(ids)
        self._lists[name] = _ListView({"head": 0, "size": len(ids), "items": _list_chunks(ids)})
        self.ops.append(["set", name, ids])

    # -- strategy scalars ------------------------------------------------------------------------

    def meta(self, key: str, default: Any = None) -> Any:
        if key in self._meta:
            return self._meta[key]
        return self.stored["meta"].get(key, default)

    def set_meta(self, key: str, value: Any) -> None:
        self._meta[key] = value
        self.ops.append(["meta", key, value])

    # -- standalone use --------------------------------------------------------------------------

    def commit(self) -> list[Op]:
        """Apply the recorded ops to the stored value and start a fresh view; returns the ops applied."""
        ops = self.ops
        self.__init__(apply_ops(self.stored, [ops]))
        return ops
