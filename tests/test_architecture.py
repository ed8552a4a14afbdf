"""The house's rules, read from the source: the report reads what a run wrote (it imports nothing from
training), no two modules import each other, and one writer of a run's config.json."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "contraclust"


def imports_of(path: Path) -> set[str]:
    """Every contraclust module ``path`` imports, at its top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("contraclust"):
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("contraclust"))
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_the_report_imports_nothing_from_training():
    for name, path in MODULES.items():
        if name.startswith("contraclust.report"):
            upward = sorted(i for i in imports_of(path) if i.startswith("contraclust.training"))
            assert not upward, f"{name} imports {upward}"


def test_no_two_modules_import_each_other():
    graph = {name: {i for i in imports_of(path) if i in MODULES and i != name} for name, path in MODULES.items()}
    pairs = sorted({tuple(sorted((a, b))) for a, targets in graph.items() for b in targets
                    if a in graph.get(b, ()) and not (a.startswith(b + ".") or b.startswith(a + "."))})
    assert not pairs, pairs


def test_one_writer_of_config_json():
    writes = {"write_whole", "open_whole", "write_text", "write_json"}
    writers = []
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and node.args:
                called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                target = ast.unparse(node.func.value if called == "write_text" else node.args[0])
                if called in writes and "config.json" in target:
                    writers.append(name)
    assert writers == ["contraclust.run.folder"], writers
