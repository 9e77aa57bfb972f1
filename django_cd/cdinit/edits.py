"""Text edits of a settings file at the places ``ast`` found: an element added to a
list literal, in the file's own layout and quote style."""

from __future__ import annotations

import ast
import re

from django_cd.cdinit.source import SettingsSource


def quote(source: SettingsSource, node: ast.List | ast.Tuple) -> str:
    """The quote character the list's strings are written with (startproject: ')."""
    for element in node.elts:
        segment = ast.get_source_segment(source.text, element) or ""
        if segment[:1] in ("'", '"'):
            return segment[0]
    return '"'


def offset(lines: list[str], line: int, column: int) -> int:
    """The character offset of ``ast``'s (1-based line, UTF-8 byte column)."""
    before = "".join(lines[: line - 1])
    return len(before) + len(lines[line - 1].encode()[:column].decode())


def append_element(source: SettingsSource, node: ast.List | ast.Tuple, value: str) -> str:
    """The text with ``value`` last in the list: on a line of its own like the last
    element's when the list has one element per line, else inline."""
    lines, text, q = source.lines, source.text, quote(source, node)
    assert node.end_lineno is not None and node.end_col_offset is not None
    close = offset(lines, node.end_lineno, node.end_col_offset) - 1
    item = f"{q}{value}{q}"
    if node.elts and node.elts[-1].lineno != node.end_lineno:
        # One element per line: a new line like the last element's, before the bracket.
        last = node.elts[-1]
        indent = re.match(r"\s*", lines[last.lineno - 1])
        assert last.end_lineno is not None and last.end_col_offset is not None
        end = offset(lines, last.end_lineno, last.end_col_offset)
        comma = "" if text[end:close].lstrip().startswith(",") else ","
        line_end = text.index("\n", end) + 1
        head = text[:end] + comma + text[end:line_end]
        return head + f"{indent.group() if indent else '    '}{item},\n" + text[line_end:]
    inner = text[offset(lines, node.lineno, node.col_offset) + 1 : close].rstrip()
    separator = "" if not inner or inner.endswith(",") else ","
    joined = f"{separator} {item}" if inner else item
    start = offset(lines, node.lineno, node.col_offset) + 1
    return text[:start] + inner + joined + text[close:]


def first_element(source: SettingsSource, node: ast.List | ast.Tuple, value: str) -> str | None:
    """The text with ``value`` first in the list; None when moving it is not certain."""
    lines, text, q = source.lines, source.text, quote(source, node)
    elements = [e for e in node.elts if isinstance(e, ast.Constant) and e.value == value]
    if elements:
        # Already listed, not first: remove its line when it stands alone on it.
        element = elements[0]
        line = lines[element.lineno - 1]
        segment = ast.get_source_segment(text, element)
        if element.lineno == node.lineno or line.strip().rstrip(",") != segment:
            return None
        start = offset(lines, element.lineno, 0)
        text = text[:start] + text[start + len(line) :]
        source = SettingsSource(source.path, text)
        found = source.list_literal(name_of(source, node))
        if found is None:
            return None
        node, lines = found.node, source.lines
    open_at = offset(lines, node.lineno, node.col_offset) + 1
    item = f"{q}{value}{q}"
    if node.elts and node.elts[0].lineno != node.lineno:
        indent = re.match(r"\s*", lines[node.elts[0].lineno - 1])
        line_end = text.index("\n", open_at) + 1
        prefix = indent.group() if indent else "    "
        return text[:line_end] + f"{prefix}{item},\n" + text[line_end:]
    separator = ", " if node.elts else ""
    return text[:open_at] + item + separator + text[open_at:]


def name_of(source: SettingsSource, node: ast.List | ast.Tuple) -> str:
    for name in ("MIDDLEWARE", "INSTALLED_APPS"):
        if source.defines(name):
            literal = source.list_literal(name)
            if literal is not None and literal.node.lineno == node.lineno:
                return name
    return "MIDDLEWARE"
