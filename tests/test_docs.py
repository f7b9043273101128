"""Every example in the documentation runs: Python blocks and command lines of README.md and
docs/*.md (issue 14). A broken example, or a public signature changed without updating its
examples, fails here.

How a document's examples run
-----------------------------
- The ```python blocks of one file run in order, as ONE script in a fresh interpreter (a
  later block may use names from an earlier one), in a temporary working directory.
- In ```bash blocks, every line that starts with ``moreauctl``, ``python -m moreauctl`` or
  ``python demos/`` (or ``python benchmarks/``) runs on its own, with this checkout's
  interpreter and scripts, in a temporary working directory, and must exit with status 0.
  Other lines (``make ...``) are what the README's set-up runs; CI runs them itself.
- A directive in an HTML comment right before a block changes how it runs:

  ``<!-- doctest: skip REASON -->``   not run (the reason says where it is tested instead);
  ``<!-- doctest: slow -->``          run in the slow tier only;
  ``<!-- doctest: sub OLD => NEW -->`` run with the text OLD replaced by NEW (smaller
  sizes for the test; several allowed). The document shows the real sizes.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import List

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
BIN = Path(sys.executable).parent
_DIRECTIVE = re.compile(r"<!--\s*doctest:\s*(skip|slow|sub)\b(.*?)-->", re.S)
_COMMAND = re.compile(r"^(moreauctl\b|python -m moreauctl\b|python (demos|benchmarks)/)")


@dataclass
class Block:
    path: Path
    line: int            # 1-based line of the opening fence
    lang: str
    text: str
    skip: str = ""
    slow: bool = False
    subs: List[tuple] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def source(self) -> str:
        text = self.text
        for old, new in self.subs:
            if old not in text:
                raise AssertionError(f"{self.where}: doctest sub {old!r} not found in the block")
            text = text.replace(old, new)
        return text


def blocks(path: Path) -> List[Block]:
    """The fenced python/bash blocks of a markdown file, with their directives."""
    out, pending = [], []
    lines = path.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        pending += _DIRECTIVE.findall(line)
        m = re.match(r"^\s*```(\w+)\s*$", line)
        if m:
            lang, start, body = m.group(1), i + 1, []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                body.append(lines[i])
                i += 1
            b = Block(path, start, lang, textwrap.dedent("\n".join(body)) + "\n")
            for kind, arg in pending:
                arg = arg.strip()
                if kind == "skip":
                    b.skip = arg or "no reason given"
                elif kind == "slow":
                    b.slow = True
                else:
                    old, sep, new = arg.partition("=>")
                    assert sep, f"{path}:{start}: doctest sub needs 'OLD => NEW'; got {arg!r}"
                    b.subs.append((old.strip(), new.strip()))
            pending = []
            if lang in ("python", "bash"):
                out.append(b)
        elif line.strip() and not _DIRECTIVE.search(line):
            pending = []  # a directive applies to the next block only
        i += 1
    return out


def _env():
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("MPLBACKEND", "Agg")
    return env


def _python_params():
    """One quick run per file (its blocks not marked slow) and, for a file with slow blocks,
    one slow-tier run of all of them (later blocks may need earlier ones)."""
    out = []
    for path in DOCS:
        bs = [b for b in blocks(path) if b.lang == "python" and not b.skip]
        name = str(path.relative_to(ROOT))
        if any(not b.slow for b in bs):
            out.append(pytest.param(path, False, id=name))
        if any(b.slow for b in bs):
            out.append(pytest.param(path, True, id=name + "-all", marks=pytest.mark.slow))
    return out


@pytest.mark.parametrize("path,with_slow", _python_params())
def test_python_blocks_run(path, with_slow, tmp_path):
    parts = []
    for b in blocks(path):
        if b.lang != "python" or b.skip or (b.slow and not with_slow):
            continue
        parts.append(f"# ---- {b.where} ----\n{b.source()}")
    script = tmp_path / "doc_examples.py"
    # the guard: examples that start process pools re-import the main module
    script.write_text("if __name__ == '__main__':\n"
                      + textwrap.indent("\n".join(parts) or "pass\n", "    "))
    r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=_env(),
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"examples of {path.name} failed:\n{r.stderr[-3000:]}"


def _command_params():
    out = []
    for path in DOCS:
        for b in blocks(path):
            if b.lang != "bash":
                continue
            for k, line in enumerate(b.source().splitlines()):
                cmd = line.split("  #")[0].split(" # ")[0].strip()
                if not _COMMAND.match(cmd):
                    continue
                marks = [pytest.mark.slow] if b.slow else []
                if b.skip:
                    marks.append(pytest.mark.skip(reason=b.skip))
                out.append(pytest.param(cmd, id=f"{b.where}+{k}", marks=marks))
    return out


@pytest.mark.parametrize("cmd", _command_params())
def test_command_lines_run(cmd, tmp_path):
    argv = shlex.split(cmd)
    if argv[0] == "python":
        argv[0] = sys.executable
        if argv[1].startswith(("demos/", "benchmarks/")):
            argv[1] = str(ROOT / argv[1])
    else:
        argv[0] = str(BIN / argv[0])
    r = subprocess.run(argv, cwd=tmp_path, env=_env(), capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, f"{cmd!r} exited {r.returncode}:\n{r.stderr[-3000:]}"


def test_the_directive_parser(tmp_path):
    md = tmp_path / "x.md"
    md.write_text("<!-- doctest: sub a => b -->\n<!-- doctest: slow -->\n```python\nx = 'a'\n```\n"
                  "text\n```bash\nmoreauctl --help  # a comment\nmake demo\n```\n"
                  "<!-- doctest: skip needs a GPU -->\n\n```python\ny = 1\n```\n")
    bs = blocks(md)
    assert [b.lang for b in bs] == ["python", "bash", "python"]
    assert bs[0].slow and bs[0].source() == "x = 'b'\n" and not bs[1].slow
    assert bs[2].skip == "needs a GPU" and not bs[2].slow
