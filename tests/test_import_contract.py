"""The layering of the package, checked on the source text (``ast`` for Python, ``#include`` lines for C++/CUDA):
nothing is imported or compiled, so the test takes a fraction of a second.

Python layers (imports anywhere in a module count, function-local ones too; relative imports are resolved):

- ``fastssl/reference``: the specification in plain PyTorch; it imports none of the layers built on it
  (``fastssl.ops``, ``fastssl.triton``), nor the view recipes or the data pipeline.
- ``fastssl/triton``: kernels; the ops dispatch to them, never the other way round.
- ``fastssl/ops``: tensor ops; they know nothing of the data pipeline, the pretext tasks or training.
- ``fastssl/data``: the data pipeline; it knows nothing of the pretext tasks or training.

Native layers:

- ``kernels/``: framework-free kernels (the native tests compile them without PyTorch): no torch, ATen, c10,
  pybind11 or Python header, and nothing from ``csrc/``.
- ``kernels/cuda``: nothing from ``kernels/cpu`` (the two share ``kernels/common``).
- ``csrc/`` (the PyTorch bindings) may include anything under ``kernels/``.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class PythonRule:
    name: str
    layer: str  #: package whose modules the rule covers, e.g. "fastssl.reference"
    forbidden: tuple[str, ...]  #: module prefixes they may not import


PYTHON_RULES = (
    PythonRule("the reference imports no op, kernel, view recipe or data module", "fastssl.reference",
               ("fastssl.ops", "fastssl.triton", "fastssl.views", "fastssl.recipes", "fastssl.data")),
    PythonRule("the Triton kernels import no op module", "fastssl.triton", ("fastssl.ops",)),
    PythonRule("the ops import nothing from data, tasks or train", "fastssl.ops",
               ("fastssl.data", "fastssl.tasks", "fastssl.train")),
    PythonRule("the data pipeline imports nothing from tasks or train", "fastssl.data",
               ("fastssl.tasks", "fastssl.train")),
)

# Imports that break a rule today and are being moved by their owners: (file, imported module).
# An entry that no longer matches a violation fails the test, so the list only ever shrinks.
ALLOWED_PYTHON: set[tuple[str, str]] = set()

FRAMEWORK_HEADER = re.compile(r"^(torch|ATen|c10|pybind11)/|^Python\.h$")
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def module_name(path: Path, root: Path) -> tuple[str, bool]:
    """("fastssl.ops.lab", False) for fastssl/ops/lab.py; ("fastssl.ops", True) for fastssl/ops/__init__.py."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file. ``from a import b`` yields both ``a`` and ``a.b``
    (``b`` may be a submodule); relative imports are resolved against the file's package."""
    module, is_package = module_name(path, root)
    package = module.split(".") if is_package else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package[: len(package) - (node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names if alias.name != "*"]
    return found


def is_within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def python_violations(root: Path = ROOT) -> list[tuple[str, int, str, str]]:
    """(file, line, imported module, rule) for every import that breaks a rule."""
    violations = []
    for path in sorted((root / "fastssl").rglob("*.py")):
        module, _ = module_name(path, root)
        file = path.relative_to(root).as_posix()
        for rule in PYTHON_RULES:
            if not is_within(module, rule.layer):
                continue
            for line, imported in imported_modules(path, root):
                bad = next((p for p in rule.forbidden if is_within(imported, p)), None)
                if bad and (file, line, bad, rule.name) not in violations:
                    violations.append((file, line, bad, rule.name))
    return violations


def resolve_include(source: Path, header: str, root: Path) -> Path:
    """Where a quoted ``#include`` points: next to the including file, else under kernels/ (the include path)."""
    for base in (source.parent, root / "kernels", root):
        candidate = (base / header).resolve()
        if candidate.exists():
            return candidate
    return (source.parent / header).resolve()


def native_violations(root: Path = ROOT) -> list[tuple[str, int, str, str]]:
    """(file, line, included header, rule) for every ``#include`` under kernels/ that breaks a rule."""
    violations = []
    cpu, csrc = root / "kernels" / "cpu", root / "csrc"
    for path in sorted((root / "kernels").rglob("*")):
        if path.suffix not in (".h", ".hpp", ".c", ".cc", ".cpp", ".cu", ".cuh"):
            continue
        file = path.relative_to(root).as_posix()
        in_cuda = path.is_relative_to(root / "kernels" / "cuda")
        for line, text in enumerate(path.read_text().splitlines(), start=1):
            match = INCLUDE.match(text)
            if not match:
                continue
            quote, header = match.groups()
            if FRAMEWORK_HEADER.search(header):
                violations.append((file, line, header, "kernels/ includes no torch, ATen, c10, pybind11 or Python header"))
                continue
            if quote != '"':
                continue
            target = resolve_include(path, header, root)
            if target.is_relative_to(csrc):
                violations.append((file, line, header, "kernels/ includes nothing from csrc/"))
            if in_cuda and target.is_relative_to(cpu):
                violations.append((file, line, header, "kernels/cuda includes nothing from kernels/cpu"))
    return violations


def describe(violations) -> str:
    return "\n".join(f"{file}:{line}: {what} breaks the rule: {rule}" for file, line, what, rule in violations)


def test_python_layers():
    violations = python_violations()
    unexpected = [v for v in violations if (v[0], v[2]) not in ALLOWED_PYTHON]
    assert not unexpected, "imports across layers:\n" + describe(unexpected)


def test_allowed_python_imports_still_exist():
    present = {(file, imported) for file, _, imported, _ in python_violations()}
    stale = sorted(ALLOWED_PYTHON - present)
    assert not stale, f"these imports are gone: remove them from ALLOWED_PYTHON: {stale}"


def test_native_layers():
    violations = native_violations()
    assert not violations, "includes across layers:\n" + describe(violations)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    "file, source, expected",
    [
        ("fastssl/reference/x.py", "from ..ops import lab", ["fastssl.ops", "fastssl.ops.lab"]),
        ("fastssl/reference/x.py", "from . import lab", ["fastssl.reference", "fastssl.reference.lab"]),
        ("fastssl/reference/x.py", "from .. import random", ["fastssl", "fastssl.random"]),
        ("fastssl/reference/__init__.py", "from .lab import f", ["fastssl.reference.lab", "fastssl.reference.lab.f"]),
        ("fastssl/ops/x.py", "def f():\n    import fastssl.data.loader", ["fastssl.data.loader"]),
    ],
)
def test_imports_are_resolved(tmp_path, file, source, expected):
    write(tmp_path, {file: source})
    assert [module for _, module in imported_modules(tmp_path / file, tmp_path)] == expected


def test_messages_name_file_line_and_rule(tmp_path):
    write(tmp_path, {
        "fastssl/reference/lab.py": "import torch\nfrom ..views import Recipe\n",
        "fastssl/triton/lab.py": "from ..reference import lab\n",  # allowed: kernels may use the reference
        "kernels/cpu/lab.h": "#pragma once\n",
        "kernels/cuda/lab.cu": '#include "../common/x.h"\n#include <torch/types.h>\n#include "../cpu/lab.h"\n',
    })
    python = describe(python_violations(tmp_path))
    assert python == ("fastssl/reference/lab.py:2: fastssl.views breaks the rule: "
                      "the reference imports no op, kernel, view recipe or data module")
    native = describe(native_violations(tmp_path)).splitlines()
    assert native == [
        "kernels/cuda/lab.cu:2: torch/types.h breaks the rule: "
        "kernels/ includes no torch, ATen, c10, pybind11 or Python header",
        "kernels/cuda/lab.cu:3: ../cpu/lab.h breaks the rule: kernels/cuda includes nothing from kernels/cpu",
    ]
