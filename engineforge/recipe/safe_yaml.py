"""YAML for untrusted input: bounded before it is parsed, plain data after.

Recipes arrive from users and, on workers, from anyone who can submit. PyYAML's safe loader still
recurses once per nesting level (deep nesting is a RecursionError), accepts duplicate keys (the last
silently wins), lets explicit tags force a type (`!!int abc` raises ValueError deep in the
constructor) and expands aliases without limit. Here the text is scanned first (the scanner is
iterative) to cap nesting, the node tree is walked once to refuse duplicates, tags and oversized
expansions, and only then is it turned into Python data. Every refusal is a `YamlProblem` with the
line and the key path, so callers can print `file:line: field: message`.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

MAX_BYTES = 1 << 20  # a recipe is a few KiB; 1 MiB still parses in well under a second
MAX_DEPTH = 32  # recipes nest 4 levels deep
MAX_VALUES = 20_000  # scalars as written, and values after aliases are expanded; recipes hold hundreds
MAX_NUMBER_CHARS = 64  # no recipe number needs more digits; Python refuses int() past 4300

# The C scanner and composer when PyYAML was built with libyaml (the wheels are), else pure Python.
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_OPENING = (yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken, yaml.FlowMappingStartToken,
            yaml.FlowSequenceStartToken)
_CLOSING = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)
_TAG = "tag:yaml.org,2002:"
_NUMBER_TAGS = {_TAG + "int", _TAG + "float"}


class _RecipeLoader(_Loader):
    """YAML 1.2 floats too: PyYAML (YAML 1.1) reads `1e3` and `1.5e3` as text, which strict numbers refuse."""


_RecipeLoader.add_implicit_resolver(
    _TAG + "float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789.")
)


class YamlProblem(Exception):
    """What is wrong, where: `line` is 1-based, `path` the keys leading to the value ('' at the top)."""

    def __init__(self, line: int, path: str, message: str):
        super().__init__(message)
        self.line, self.path, self.message = line, path, message


def load(text: str) -> tuple[Any, yaml.Node | None]:
    """The data and its node tree (for line numbers), or YamlProblem."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YamlProblem(1, "", f"larger than {MAX_BYTES // 1024} KiB; a recipe is a small YAML file")
    try:
        tagged = _scan(text)
        loader = _RecipeLoader(text)
        try:
            root = loader.get_single_node()
            if root is None:
                return None, None
            _check_nodes(root, tagged)
            return loader.construct_document(root), root
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        raise YamlProblem(mark.line + 1 if mark else 1, "", f"invalid YAML: {error.problem or error.context}") from None
    except yaml.YAMLError as error:  # reader errors (control characters) carry no mark
        raise YamlProblem(1, "", f"invalid YAML: {str(error).splitlines()[0]}") from None


def _scan(text: str) -> set[tuple[int, int]]:
    """Cap the nesting before anything recurses; return where explicit tags (`!!int`, `!x`) start."""
    depth = values = 0
    tagged = set()
    for token in yaml.scan(text, Loader=_Loader):
        if isinstance(token, yaml.ScalarToken):
            values += 1
            if values > MAX_VALUES:
                raise YamlProblem(token.start_mark.line + 1, "", f"more than {MAX_VALUES:,} values; a recipe holds a few hundred")
        elif isinstance(token, _OPENING):
            depth += 1
            if depth > MAX_DEPTH:
                raise YamlProblem(token.start_mark.line + 1, "", f"nested more than {MAX_DEPTH} levels deep")
        elif isinstance(token, _CLOSING):
            depth -= 1
        elif isinstance(token, yaml.TagToken):
            tagged.add((token.start_mark.line, token.start_mark.column))
    return tagged


def _check_nodes(root: yaml.Node, tagged: set[tuple[int, int]]) -> None:
    """One pass over the tree: tags, keys, numbers, and the size and depth aliases expand to.

    An alias is the same node object in two places, so each node is examined once and its
    expanded size and depth are remembered (a billion-laughs document is a small tree of aliases)."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    open_nodes: set[int] = set()  # examined, children not yet: meeting one again is a cycle
    stack: list[tuple[yaml.Node, str, list | None]] = [(root, "", None)]
    while stack:
        node, path, children = stack.pop()
        if children is None:  # first visit
            if id(node) in size:
                continue  # an alias of a node already examined
            if id(node) in open_nodes:
                raise YamlProblem(node.start_mark.line + 1, path, "an alias refers to a value that contains it")
            _check_node(node, path, tagged)
            if isinstance(node, yaml.ScalarNode):
                size[id(node)] = depth[id(node)] = 1
                continue
            children = _children(node, path)
            open_nodes.add(id(node))
            stack.append((node, path, children))
            stack.extend((child, child_path, None) for child, child_path in children if id(child) not in size)
            continue
        open_nodes.discard(id(node))
        size[id(node)] = 1 + sum(size[id(child)] for child, _ in children)
        depth[id(node)] = 1 + max((depth[id(child)] for child, _ in children), default=0)
        if size[id(node)] > MAX_VALUES:
            raise YamlProblem(node.start_mark.line + 1, path, f"expands to more than {MAX_VALUES:,} values (aliases?)")
        if depth[id(node)] > MAX_DEPTH:
            raise YamlProblem(node.start_mark.line + 1, path, f"nested more than {MAX_DEPTH} levels deep (aliases?)")


def _children(node: yaml.Node, path: str) -> list[tuple[yaml.Node, str]]:
    if isinstance(node, yaml.SequenceNode):
        return [(item, f"{path}.{index}" if path else str(index)) for index, item in enumerate(node.value)]
    if isinstance(node, yaml.MappingNode):
        found = []
        for key, value in node.value:
            name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
            found.append((key, path))
            found.append((value, f"{path}.{name}" if path else name))
        return found
    return []


def _check_node(node: yaml.Node, path: str, tagged: set[tuple[int, int]]) -> None:
    line = node.start_mark.line + 1
    if (node.start_mark.line, node.start_mark.column) in tagged:  # a node starts at its tag
        raise YamlProblem(line, path, f"YAML tag {node.tag.replace(_TAG, '!!')} not allowed; write the plain value")
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode):
                raise YamlProblem(key.start_mark.line + 1, path, "keys must be plain names, not lists or mappings")
            if key.tag == _TAG + "merge":
                continue  # `<<: *base` merges; the keys written here override it
            if key.value in seen:
                where = f"{path}.{key.value}" if path else key.value
                raise YamlProblem(key.start_mark.line + 1, where, "duplicate key; keep one of them")
            seen.add(key.value)
    elif isinstance(node, yaml.ScalarNode) and node.tag in _NUMBER_TAGS and len(node.value) > MAX_NUMBER_CHARS:
        raise YamlProblem(line, path, f"number with {len(node.value):,} characters; far outside any allowed range")
    elif isinstance(node, yaml.ScalarNode) and node.tag == _TAG + "timestamp":
        try:
            yaml.constructor.SafeConstructor().construct_yaml_timestamp(node)
        except ValueError as error:  # `2024-13-45` looks like a date to YAML; quote it to mean text
            raise YamlProblem(line, path, f"not a valid date ({error}); quote it if it is text") from None
