"""Where things are in a manifest: YAML composed safely into plain data plus a tree of positions.

PyYAML's `compose` gives a node tree with line and column marks. This module
turns it into plain Python values (dict, list, str, int, float, bool, None) and,
alongside, a `Pos` tree so that any JSON path into a value can be mapped back to
the line and column where it was written. Problems the YAML itself has
(duplicate keys, tags that would construct objects, complex keys, malformed
text) are collected as `Issue`s instead of raised, so one run reports them all.

Only the core scalar tags are constructed; anything else (`!!python/object`,
`!!binary`, custom `!tags`) is an issue, never a constructed object.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# libyaml's parser when present: the same marks, several times faster
_Loader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG = "tag:yaml.org,2002:"

#: most values that aliases (`*name`) may add to a document; stops "billion laughs"
MAX_ALIASED_VALUES = 100_000
#: deepest nesting of lists and mappings accepted (converting is recursive: "[[[[..." must not blow the stack)
MAX_DEPTH = 100


@dataclass(frozen=True, slots=True)
class Source:
    """A file issues can point at: the name shown to the user and the folder its relative paths start from."""

    display: str
    folder: Path
    #: rank of the file in the order it was read; sorts issues file by file
    rank: int = 0


@dataclass(frozen=True, slots=True)
class Where:
    """A 1-based line and column in a source; column 0 means "the whole line"."""

    source: Source
    line: int
    column: int = 0


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem with a manifest, where it was written, and in which job.

    `str(issue)` is the line a user reads, e.g.
    ``jobs.yaml:14:5: job 'portrait-turn' (happyhorse-1.0-i2v): duration 20 is above the maximum 15``.
    """

    file: str
    line: int
    column: int
    message: str
    job: str | None = None
    model: str | None = None
    #: JSON path of the offending value inside the job (or the manifest), "" when none
    path: str = ""
    #: how many other jobs have the very same problem at the very same place
    more_jobs: int = 0
    #: sort key: file rank, then position
    rank: int = field(default=0, compare=False, repr=False)

    @classmethod
    def at(cls, where: Where, message: str, **kwargs: Any) -> Issue:
        return cls(where.source.display, where.line, where.column, message, rank=where.source.rank, **kwargs)

    def __str__(self) -> str:
        place = f"{self.file}:{self.line}:{self.column}" if self.column else f"{self.file}:{self.line}"
        if not self.line:
            place = self.file
        if self.job is None:
            return f"{place}: {self.message}"
        who = f"job '{self.job}'" + (f" ({self.model})" if self.model else "")
        if self.more_jobs:
            who += f" and {self.more_jobs} more job{'s' if self.more_jobs > 1 else ''}"
        return f"{place}: {who}: {self.message}"

    def sort_key(self) -> tuple[int, int, int]:
        return (self.rank, self.line, self.column)


class Pos:
    """Where a value was written, and where each of its members was.

    For a mapping member, `where` is the key's position (where a reader looks
    for "duration: 20"); for a list item, the item's own position.
    """

    __slots__ = ("where", "children")

    def __init__(self, where: Where, children: dict[str, Pos] | list[Pos] | None = None) -> None:
        self.where = where
        self.children = children

    def has(self, key: str) -> bool:
        return isinstance(self.children, dict) and key in self.children

    def child(self, key: str | int) -> Pos | None:
        children = self.children
        if isinstance(children, dict) and isinstance(key, str):
            return children.get(key)
        if isinstance(children, list) and isinstance(key, int) and 0 <= key < len(children):
            return children[key]
        return None

    def locate(self, path: Iterable[str | int]) -> Where:
        """The position of the deepest member of `path` that exists."""
        pos: Pos = self
        for part in path:
            nxt = pos.child(part)
            if nxt is None:
                break
            pos = nxt
        return pos.where


def _where(source: Source, node: Node) -> Where:
    mark = node.start_mark
    return Where(source, mark.line + 1, mark.column + 1)


class _Composer:
    """Turns a composed node tree into values and positions, collecting issues."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.issues: list[Issue] = []
        self.flattener = SafeConstructor()
        # an alias refers to the same node: convert it once, so a "billion laughs"
        # document stays as small in memory as it is on disk
        self.done: dict[int, tuple[Any, Pos, int]] = {}
        self.aliased = 0
        #: set by a problem that makes the data meaningless (a forbidden tag)
        self.fatal = False

    def convert(self, node: Node, where: Where) -> tuple[Any, Pos]:
        memo = self.done.get(id(node))
        if memo is not None:
            self.aliased += memo[2]
            if self.aliased > MAX_ALIASED_VALUES and not self.fatal:
                self.fatal = True
                self.issues.append(
                    Issue.at(where, f"the value anchored here is repeated by aliases (*name) into more than {MAX_ALIASED_VALUES} values")
                )
            return memo[0], Pos(where, memo[1].children)
        if isinstance(node, ScalarNode):
            value, pos = self.scalar(node), Pos(where)
            size = 1
        elif isinstance(node, SequenceNode):
            value, pos = self.sequence(node, where)
            size = 1 + sum(self.done[id(item)][2] for item in node.value)
        elif isinstance(node, MappingNode):
            value, pos = self.mapping(node, where)
            size = 1 + sum(self.done[id(item)][2] for _, item in node.value if id(item) in self.done)
        else:  # pragma: no cover - yaml has no other node kinds
            value, pos, size = None, Pos(where), 1
        self.done[id(node)] = (value, pos, size)
        return value, pos

    def bad_tag(self, node: Node) -> None:
        tag = node.tag.replace(_TAG, "!!")
        self.fatal = True
        self.issues.append(
            Issue.at(
                _where(self.source, node),
                f"YAML tag '{tag}' is not allowed: a manifest holds plain data only "
                "(strings, numbers, booleans, lists and mappings)",
            )
        )

    def scalar(self, node: ScalarNode) -> Any:
        tag = node.tag
        if tag == _TAG + "str" or tag == _TAG + "timestamp":
            return node.value  # a date stays the text it was written as
        try:
            if tag == _TAG + "int":
                # YAML 1.1 reads 16:9 as the base-60 number 969: an aspect ratio is text
                return node.value if ":" in node.value else self.flattener.construct_yaml_int(node)
            if tag == _TAG + "float":
                return node.value if ":" in node.value else self.flattener.construct_yaml_float(node)
            if tag == _TAG + "bool":
                return self.flattener.construct_yaml_bool(node)
            if tag == _TAG + "null":
                return None
        except (ValueError, ConstructorError):  # pragma: no cover - the resolver already matched
            return node.value
        self.bad_tag(node)
        return None

    def sequence(self, node: SequenceNode, where: Where) -> tuple[list[Any], Pos]:
        if node.tag != _TAG + "seq":
            self.bad_tag(node)
        values: list[Any] = []
        positions: list[Pos] = []
        for item in node.value:
            value, pos = self.convert(item, _where(self.source, item))
            values.append(value)
            positions.append(pos)
        return values, Pos(where, positions)

    def mapping(self, node: MappingNode, where: Where) -> tuple[dict[str, Any], Pos]:
        if node.tag != _TAG + "map":
            self.bad_tag(node)
        first_seen: dict[str, Where] = {}
        for key_node, _ in node.value:
            if key_node.tag == _TAG + "merge" or not isinstance(key_node, ScalarNode):
                continue
            key_where = _where(self.source, key_node)
            if key_node.value in first_seen:
                earlier = first_seen[key_node.value]
                self.issues.append(
                    Issue.at(key_where, f"duplicate key '{key_node.value}' (first given at line {earlier.line})")
                )
            else:
                first_seen[key_node.value] = key_where
        try:
            self.flattener.flatten_mapping(node)  # `<<: *anchor` merge keys
        except ConstructorError as exc:
            mark = exc.problem_mark or node.start_mark
            self.issues.append(
                Issue.at(Where(self.source, mark.line + 1, mark.column + 1), f"YAML merge key: {exc.problem}")
            )
        values: dict[str, Any] = {}
        positions: dict[str, Pos] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                self.issues.append(
                    Issue.at(_where(self.source, key_node), "mapping keys must be plain text, not lists or mappings")
                )
                continue
            key = key_node.value  # `no:` is the key "no", not False
            value, pos = self.convert(value_node, _where(self.source, key_node))
            values[key] = value  # a later key wins, as in YAML merges
            positions[key] = pos
        return values, Pos(where, positions)


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [child for pair in node.value for child in pair]
    return []


def _too_deep(root: Node) -> Node | None:
    """A node nested deeper than MAX_DEPTH (aliases followed, as converting does); None when there is none.

    Heights are computed bottom-up without recursion and once per node, so an
    alias bomb costs its node count, not its expansion; a recursive alias
    (`&a [*a]`) is infinitely deep.
    """
    heights: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        if id(node) in heights:
            continue
        if finished:
            open_.discard(id(node))
            heights[id(node)] = 1 + max((heights[id(c)] for c in _children(node)), default=0)
            continue
        if id(node) in open_:  # met again while its own subtree is open: a cycle
            return node
        open_.add(id(node))
        stack.append((node, True))
        for child in _children(node):
            if id(child) in open_:
                return child
            if id(child) not in heights:
                stack.append((child, False))
    if heights[id(root)] <= MAX_DEPTH:
        return None
    node, depth = root, 1
    while depth <= MAX_DEPTH:  # follow the deepest branch down to where the limit is passed
        node = max(_children(node), key=lambda c: heights[id(c)])
        depth += 1
    return node


def compose(text: str, source: Source) -> tuple[Any, Pos, list[Issue]]:
    """Plain data, positions and issues for a YAML document.

    A malformed document yields (None, Pos at its start, [one issue at the
    error's line]); so does one with a forbidden tag (one issue per tag). An empty one yields (None, ...) with no issue: the caller
    decides what an empty manifest means.
    """
    start = Pos(Where(source, 1, 1))
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 0)
        problem = exc.problem or exc.context or "malformed YAML"
        context = f" ({exc.context})" if exc.context and exc.problem else ""
        return None, start, [Issue(source.display, line, column, f"invalid YAML: {problem}{context}", rank=source.rank)]
    except yaml.YAMLError as exc:
        text = " ".join(str(exc).split())  # one line: reader errors span two
        return None, start, [Issue(source.display, 1, 0, f"invalid YAML: {text}", rank=source.rank)]
    except RecursionError:  # the pure-Python parser recurses per nesting level
        return None, start, [Issue(source.display, 1, 0, f"the document is nested more than {MAX_DEPTH} levels deep",
                                   rank=source.rank)]
    if node is None:
        return None, start, []
    deep = _too_deep(node)
    if deep is not None:
        where = _where(source, deep)
        return None, start, [Issue(source.display, where.line, where.column,
                                   f"the document is nested more than {MAX_DEPTH} levels deep", rank=source.rank)]
    composer = _Composer(source)
    value, pos = composer.convert(node, _where(source, node))
    if composer.fatal:
        return None, start, composer.issues
    return value, pos, composer.issues
