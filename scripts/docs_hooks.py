"""MkDocs hooks: the reference sections that are generated from the code, never copied by hand.

A page holds a marker; the hook puts the generated text in its place when the site is built:
    <!-- generated: parameters -->   template.yaml's Parameters, as a table
    <!-- generated: exit-codes -->   the CLI's one exit-code table (lambdaserve.cli.exit_codes)
    <!-- generated: json-shapes -->  each command's --json shape (lambdaserve.cli.context)
    <!-- generated: bench NAME -->   docs/performance/NAME.md, the published bench results
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!-- generated: ([a-z-]+)(?: ([a-z_]+))? -->")


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def parameters() -> str:
    """template.yaml's Parameters: name, type, default, allowed values, what it does."""
    from lambdaserve.local.template import load_template

    params = load_template(ROOT / "template.yaml")["Parameters"]
    rows = ["| parameter | type | default | allowed | what it does |", "|---|---|---|---|---|"]
    for name, spec in params.items():
        allowed = spec.get("AllowedValues")
        if allowed is None and ("MinValue" in spec or "MaxValue" in spec):
            allowed = f"{spec.get('MinValue', '')}..{spec.get('MaxValue', '')}"
        elif allowed is not None:
            allowed = ", ".join(str(v) for v in allowed)
        default = spec.get("Default", "")
        rows.append(
            f"| `{name}` | {spec.get('Type', '')} | `{_cell(default)}` | {_cell(allowed or '')} "
            f"| {_cell(spec.get('Description', ''))} |"
        )
    return "\n".join(rows)


def exit_codes() -> str:
    """The CLI's exit codes, from the one table every command ends in."""
    from lambdaserve.cli.exit_codes import TABLE

    rows = ["| code | meaning | raised as |", "|---|---|---|"]
    for row in TABLE:
        errors = ", ".join(f"`{e.__name__}`" for e in row.errors)
        rows.append(f"| {row.code} | {_cell(row.meaning)} | {errors} |")
    return "\n".join(rows)


def json_shapes() -> str:
    """Each command's `--json` output, from the shapes the CLI states for itself."""
    from lambdaserve.cli.output import JSON_SHAPES

    rows = ["| command | `--json` prints |", "|---|---|"]
    rows += [f"| `lambdaserve {cmd}` | {_cell(shape)} |" for cmd, shape in JSON_SHAPES.items()]
    return "\n".join(rows)


def bench(name: str) -> str:
    """A published bench result (`make bench-publish`), with the date and machine it states."""
    folder = ROOT / "docs" / "performance"
    path, data = folder / f"{name}.md", folder / f"{name}.json"
    if not path.exists() and data.exists():  # a bench that writes figures only
        figures = json.loads(data.read_text(encoding="utf-8"))
        said = f"_Measured {figures.get('measured_at', '?')} on {figures.get('machine', '?')}._"
        return f"{said}\n\n```json\n{json.dumps(figures, indent=2)}\n```"
    if not path.exists():
        return f"_No published results for `{name}` yet: run its bench, then `make bench-publish`._"
    text = path.read_text(encoding="utf-8")
    if (folder / f"{name}.png").exists():
        text += f"\n\n![{name}](performance/{name}.png)\n"
    # Their own headings sit one level under the page's section.
    return re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + 2) + " ", text, flags=re.M)


def on_page_markdown(markdown: str, **_: Any) -> str:
    def fill(match: re.Match[str]) -> str:
        kind, arg = match.group(1), match.group(2)
        if kind == "parameters":
            return parameters()
        if kind == "exit-codes":
            return exit_codes()
        if kind == "json-shapes":
            return json_shapes()
        if kind == "bench" and arg:
            return bench(arg)
        raise ValueError(f"unknown generated section {match.group(0)}")

    return MARKER.sub(fill, markdown)
