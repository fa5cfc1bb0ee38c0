"""Architecture report: the package's own import graph, read with the standard library's
``ast`` (no import of invlab, so a broken tree can be measured too).

- ``cycles``: one cycle per strongly connected component of the module import graph
  (imports inside functions count: they are how cycles hide).
- ``back_arrows``: imports against a ``layers`` contract of ``pyproject.toml``
  (``[tool.importlinter]``, the layer order of ``docs/architecture.md``): a module of a
  lower layer importing one of a higher layer of the same container.
- ``largest_modules``: the five largest files under ``src/`` (lines).
- ``method_registries``: module-level dicts that map method names to method classes or
  :class:`MethodSpec` s: a literal or ``.update`` whose values are method classes (classes of
  ``invlab/methods/`` derived from ``SSLMethod`` / ``LightningModule``) or ``MethodSpec(...)``
  calls, a dict annotated with those types, or one a function fills with ``NAME[key] = spec``
  where ``spec`` is annotated as such.

    python benchmarks/architecture_report.py [--src src] [--out benchmarks/results/architecture]

Writes ``<out>.json`` and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli is the same parser (pip install tomli)
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
METHOD_BASES = {"SSLMethod", "LightningModule"}
SPEC_TYPES = {"MethodSpec"}


# -- the import graph ------------------------------------------------------------------------
def module_files(src: Path, package: str = "invlab") -> dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` under ``src/package``."""
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The module ``name`` refers to: itself, or the nearest module above it (a name
    imported from a package's ``__init__``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_edges(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """``{importer: {imported: first line}}`` over modules of the package."""
    edges: dict[str, dict[str, int]] = {m: {} for m in modules}
    for module, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = module.split(".")
                    anchor = anchor if is_package else anchor[:-1]
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" for a in node.names]
            for target in targets:
                found = _resolve(target, modules)
                if found is not None and found != module:
                    edges[module].setdefault(found, node.lineno)
    return edges


def cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (``[a, b, ..., a]``) per strongly connected component (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = [0]
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                components.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return [_cycle_in(comp, edges) for comp in sorted(components)]


def _cycle_in(component: list[str], edges: dict[str, dict[str, int]]) -> list[str]:
    """A shortest cycle through the first module of a strongly connected component (BFS)."""
    members = set(component)
    start = component[0]
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(edges[v]):
                if w not in members:
                    continue
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start] if len(path) > 1 else [start, v, start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    return component


# -- layers -----------------------------------------------------------------------------------
def layer_contracts(pyproject: Path) -> list[dict]:
    config = tomllib.loads(pyproject.read_text()).get("tool", {}).get("importlinter", {})
    return [c for c in config.get("contracts", []) if c.get("type") == "layers"]


def back_arrows(edges: dict[str, dict[str, int]], contracts: list[dict]) -> list[dict]:
    """Imports from a lower layer to a higher one, per container of each layers contract."""
    out = []
    for contract in contracts:
        for container in contract["containers"]:
            rank = {}
            for level, layer in enumerate(contract["layers"]):
                for name in layer.replace(":", "|").split("|"):
                    rank[f"{container}.{name.strip()}"] = level  # 0 = top

            def level_of(module: str, rank: dict[str, int] = rank) -> int | None:
                for prefix, level in rank.items():
                    if module == prefix or module.startswith(prefix + "."):
                        return level
                return None

            for importer, imported in edges.items():
                a = level_of(importer)
                for target, line in imported.items():
                    b = level_of(target)
                    if a is not None and b is not None and b < a:
                        out.append({"contract": contract.get("id", contract.get("name")), "importer": importer,
                                    "imported": target, "line": line})
    return out


# -- method registries ----------------------------------------------------------------------
def method_classes(modules: dict[str, Path]) -> set[str]:
    """Classes of ``invlab.methods`` derived (by name, transitively) from a method base."""
    bases: dict[str, set[str]] = {}
    for module, path in modules.items():
        if not module.startswith("invlab.methods"):
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.ClassDef):
                bases[node.name] = {b.attr if isinstance(b, ast.Attribute) else getattr(b, "id", "") for b in node.bases}
    found = set(METHOD_BASES)
    changed = True
    while changed:
        changed = False
        for name, parents in bases.items():
            if name not in found and parents & found:
                found.add(name)
                changed = True
    return found - METHOD_BASES


def _names_in(node: ast.AST | None) -> set[str]:
    if node is None:
        return set()
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(node) if isinstance(n, ast.Attribute)} | {
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def _is_method_value(node: ast.AST, classes: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in classes
    if isinstance(node, ast.Call):
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
        return name in SPEC_TYPES
    return False


def method_registries(modules: dict[str, Path]) -> list[str]:
    classes = method_classes(modules)
    kinds = classes | SPEC_TYPES
    found = []
    for module, path in modules.items():
        tree = ast.parse(path.read_text())
        dicts: dict[str, ast.AST] = {}
        annotated: set[str] = set()
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                dicts[node.targets[0].id] = node.value
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                dicts[node.target.id] = node.value
                if "dict" in _names_in(node.annotation) and _names_in(node.annotation) & kinds:
                    annotated.add(node.target.id)
        hits = set(annotated)
        for name, value in dicts.items():
            if isinstance(value, ast.Dict) and any(_is_method_value(v, classes) for v in value.values):
                hits.add(name)
            if isinstance(value, ast.Call) and getattr(value.func, "id", "") == "dict" and any(
                    _is_method_value(k.value, classes) for k in value.keywords):
                hits.add(name)
        for node in ast.walk(tree):
            # NAME.update(key=MethodClass) / NAME.update({...})
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id in dicts):
                values = [k.value for k in node.keywords] + [
                    v for a in node.args if isinstance(a, ast.Dict) for v in a.values]
                if any(_is_method_value(v, classes) for v in values):
                    hits.add(node.func.value.id)
            # def register(spec: MethodSpec): NAME[spec.name] = spec
            if isinstance(node, ast.FunctionDef):
                typed = {a.arg for a in node.args.args + node.args.kwonlyargs if _names_in(a.annotation) & kinds}
                for inner in ast.walk(node):
                    if isinstance(inner, ast.Assign):
                        for target in inner.targets:
                            if (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                                    and target.value.id in dicts
                                    and (_names_in(inner.value) & typed or _is_method_value(inner.value, classes))):
                                hits.add(target.value.id)
        found += [f"{module}.{name}" for name in sorted(hits)]
    return found


# -- report -----------------------------------------------------------------------------------
def largest(src: Path, n: int = 5) -> list[dict]:
    sizes = [(len(p.read_text().splitlines()), p) for p in src.rglob("*.py")]
    sizes.sort(key=lambda t: (-t[0], str(t[1])))
    return [{"path": str(p.relative_to(src.parent)), "lines": lines} for lines, p in sizes[:n]]


def report(src: Path, pyproject: Path) -> dict:
    modules = module_files(src)
    edges = import_edges(modules)
    registries = method_registries(modules)
    return {
        "source": str(src.relative_to(ROOT)) if src.is_relative_to(ROOT) else str(src),
        "modules": len(modules),
        "imports": sum(len(v) for v in edges.values()),
        "cycles": cycles(edges),
        "back_arrows": back_arrows(edges, layer_contracts(pyproject)),
        "largest_modules": largest(src),
        "method_registries": len(registries),
        "method_registry_locations": registries,
    }


def markdown(result: dict) -> str:
    lines = ["# Architecture report", "",
             f"`{result['source']}`: {result['modules']} modules, {result['imports']} import edges "
             "(module to module, inside functions included).", "",
             "| measure | value | expected |", "|---|---|---|",
             f"| import cycles | {len(result['cycles'])} | 0 |",
             f"| back-arrows against the layer contracts | {len(result['back_arrows'])} | 0 |",
             f"| method registries | {result['method_registries']} | 1 |", ""]
    for cycle in result["cycles"]:
        lines.append(f"- cycle: {' -> '.join(cycle)}")
    for arrow in result["back_arrows"]:
        lines.append(f"- back-arrow ({arrow['contract']}): {arrow['importer']} -> {arrow['imported']} (line {arrow['line']})")
    lines.append(f"- method registries: {', '.join(result['method_registry_locations']) or 'none'}")
    lines += ["", "| largest module | lines |", "|---|---|"]
    lines += [f"| `{m['path']}` | {m['lines']} |" for m in result["largest_modules"]]
    verdict = "clean" if not result["cycles"] and not result["back_arrows"] and result["method_registries"] == 1 else "NOT clean"
    lines += ["", f"Verdict: {verdict} ({len(result['cycles'])} cycles, {len(result['back_arrows'])} back-arrows, "
              f"{result['method_registries']} method registr{'y' if result['method_registries'] == 1 else 'ies'})."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--pyproject", type=Path, default=ROOT / "pyproject.toml")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "architecture")
    args = parser.parse_args(argv)
    result = report(args.src.resolve(), args.pyproject)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
