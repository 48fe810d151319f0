#!/usr/bin/env python3
"""Size and documentation of the code, per crate: lines outside tests (code
lines of src/, with `#[cfg(test)]` modules left out, blank lines and
comment-only lines not counted) and the share of named struct fields that
carry a doc comment. For comparing before and after a restructuring:
`scripts/house-stats.py [repo]`."""

import re
import sys
from pathlib import Path

root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)


def without_tests(text: str) -> str:
    """The file without its `#[cfg(test)] mod … { … }` blocks."""
    out, i = [], 0
    marker = re.compile(r"#\[cfg\(test\)\]\s*(pub(\(crate\))?\s+)?mod\s+\w+\s*\{")
    while True:
        m = marker.search(text, i)
        if not m:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i : m.start()])
        depth, j = 1, m.end()
        while depth and j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            j += 1
        i = j


def code_lines(text: str) -> int:
    return sum(
        1
        for line in text.splitlines()
        if line.strip() and not line.strip().startswith("//")
    )


FIELD = re.compile(r"^\s*(pub(\([a-z]+\))?\s+)?[a-z_][a-z0-9_]*\s*:\s*[^:]")


def field_docs(text: str):
    """(documented, all) named fields of structs (and struct variants)."""
    documented = total = 0
    lines = text.splitlines()
    depth_stack = []  # True where the block is a struct/enum body
    for n, line in enumerate(lines):
        s = line.strip()
        in_struct = bool(depth_stack) and depth_stack[-1]
        if in_struct and FIELD.match(line) and not s.startswith("//"):
            total += 1
            k = n - 1
            # Skip the field's attributes, those over several lines too
            # (`#[arg(\n long,\n)]`): back to the line that opens each.
            while k >= 0:
                t = lines[k].strip()
                if t.startswith("#["):
                    k -= 1
                elif t.endswith(")]") or t == "]":
                    while k >= 0 and not lines[k].strip().startswith("#["):
                        k -= 1
                    k -= 1
                else:
                    break
            if k >= 0 and lines[k].strip().startswith("///"):
                documented += 1
        opens, closes = line.count("{"), line.count("}")
        starts_type = re.search(r"\b(struct|enum)\s+\w+", line) is not None
        variant = in_struct and re.match(r"^\s*[A-Z]\w*\s*\{", line) is not None
        for _ in range(opens):
            depth_stack.append(starts_type or variant)
            starts_type = variant = False
        for _ in range(closes):
            if depth_stack:
                depth_stack.pop()
    return documented, total


rows = []
for manifest in sorted(root.glob("*/*/Cargo.toml")):
    crate = manifest.parent
    if not (crate / "src").is_dir():
        continue
    lines = documented = fields = 0
    for f in sorted((crate / "src").rglob("*.rs")):
        if f.name == "tests.rs":
            continue
        text = without_tests(f.read_text())
        lines += code_lines(text)
        d, t = field_docs(text)
        documented += d
        fields += t
    rows.append((str(crate.relative_to(root)), lines, documented, fields))

print(f"{'crate':<22} {'lines':>7} {'fields':>7} {'documented':>11}")
for name, lines, d, t in rows:
    share = f"{100 * d / t:.0f} %" if t else "-"
    print(f"{name:<22} {lines:>7} {t:>7} {share:>11}")
all_lines = sum(r[1] for r in rows)
all_d = sum(r[2] for r in rows)
all_t = sum(r[3] for r in rows)
print(f"{'all':<22} {all_lines:>7} {all_t:>7} {100 * all_d / max(all_t, 1):>9.0f} %")
