"""The README's test command runs on two pytest-xdist workers (``--dist loadgroup``). A module-scoped fixture is
made once per worker that runs a reader of it, so readers spread over both workers make it twice: a minute of
GeNN counting or of busy-runner runs paid again, and not every time (it depends on how the queue falls). Every
module whose module-scoped fixture has two or more readers therefore keeps them in one ``xdist_group``, which
also puts that group ahead of the single tests in the queue (loadgroup sends the largest groups first)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _is_module_fixture(decorator: ast.expr) -> bool:
    return (isinstance(decorator, ast.Call) and ast.unparse(decorator.func).endswith("fixture")
            and any(k.arg == "scope" and isinstance(k.value, ast.Constant) and k.value.value == "module"
                    for k in decorator.keywords))


def _group_of(expr: ast.expr, named_groups: dict[str, str]) -> str | None:
    """The xdist group a marker expression names: ``pytest.mark.xdist_group("x")`` or a module name bound to one."""
    if isinstance(expr, ast.Name):
        return named_groups.get(expr.id)
    if isinstance(expr, ast.Call) and ast.unparse(expr.func).endswith("xdist_group") and expr.args:
        first = expr.args[0]
        return first.value if isinstance(first, ast.Constant) else None
    return None


def _groups_in(expr: ast.expr, named_groups: dict[str, str]) -> set[str]:
    items = expr.elts if isinstance(expr, (ast.List, ast.Tuple)) else [expr]
    return {g for g in (_group_of(e, named_groups) for e in items) if g}


def shared_fixtures_split_over_workers(source: str) -> list[str]:
    """'fixture: test (group)' for each reader of a module fixture with 2+ readers that is not in their one group."""
    tree = ast.parse(source)
    named_groups, module_groups = {}, set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id == "pytestmark":
                module_groups = _groups_in(node.value, named_groups)
            elif (group := _group_of(node.value, named_groups)) is not None:
                named_groups[node.targets[0].id] = group
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    fixtures = {f.name for f in functions if any(_is_module_fixture(d) for d in f.decorator_list)}
    tests = [f for f in functions if f.name.startswith("test_")]
    problems = []
    for fixture in sorted(fixtures):
        readers = [t for t in tests if fixture in {a.arg for a in t.args.args}]
        runs = sum(2 if any("parametrize" in ast.unparse(d) for d in t.decorator_list) else 1 for t in readers)
        if runs < 2:
            continue
        groups = {t.name: (module_groups | set().union(*(_groups_in(d, named_groups) for d in t.decorator_list)))
                  for t in readers}
        if len(set().union(*groups.values())) != 1 or any(not g for g in groups.values()):
            problems += [f"{fixture}: {name} ({', '.join(sorted(g)) or 'no group'})" for name, g in groups.items()]
    return problems


def test_every_module_fixture_read_by_two_tests_is_made_once():
    split = {path.name: problems for path in sorted(TESTS.glob("test_*.py"))
             if (problems := shared_fixtures_split_over_workers(path.read_text()))}
    assert not split, f"readers of one module fixture that two workers could each make it for: {split}"


def test_the_check_sees_readers_left_out_of_the_group():
    source = '''
import pytest
ONE = pytest.mark.xdist_group("one")

@pytest.fixture(scope="module")
def made():
    return 1

@ONE
def test_a(made):
    pass

def test_b(made):
    pass
'''
    assert shared_fixtures_split_over_workers(source) == ["made: test_a (one)", "made: test_b (no group)"]
    grouped = source.replace("def test_b", "@ONE\ndef test_b")
    assert shared_fixtures_split_over_workers(grouped) == []
    one_reader = source.replace("def test_b(made)", "def test_b()")
    assert shared_fixtures_split_over_workers(one_reader) == []
    by_module = source.replace('ONE = pytest.mark.xdist_group("one")',
                               'pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("one")]').replace("@ONE\n", "")
    assert shared_fixtures_split_over_workers(by_module) == []
