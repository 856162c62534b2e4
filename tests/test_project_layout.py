"""The project's files belong: every script under project/scripts is run by a project.yml
command or imported by one that is."""
import ast
from pathlib import Path

import srsly

PROJECT = Path(__file__).parent.parent / "project"


def imported_scripts(path: Path, names) -> set:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf8"))):
        if isinstance(node, ast.ImportFrom) and node.module in names:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in names)
    return found


def test_every_script_is_reachable_from_project_yml():
    names = {p.stem for p in (PROJECT / "scripts").glob("*.py")}
    project = srsly.read_yaml(PROJECT / "project.yml")
    script_lines = [line for command in project["commands"] for line in command["script"]]
    reached = {name for name in names if any(f"scripts/{name}.py" in s for s in script_lines)}
    assert reached, "no project.yml command runs a script"
    todo = list(reached)
    while todo:
        for name in imported_scripts(PROJECT / "scripts" / f"{todo.pop()}.py", names):
            if name not in reached:
                reached.add(name)
                todo.append(name)
    assert sorted(names - reached) == []
