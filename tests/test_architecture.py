"""House rules that keep the layers apart."""

import ast
import subprocess
import sys

from tests.conftest import REPO


def imported_modules(path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_core_never_imports_streamlit():
    offenders = [str(p) for p in (REPO / "core").rglob("*.py")
                 if any(m.split(".")[0] == "streamlit" for m in imported_modules(p))]
    assert offenders == []


def test_cli_training_on_digits_does_not_import_torchvision(tmp_path):
    code = ("import sys; from core.cli import main; "
            "main(['train', '--dataset', 'digits', '--epochs', '1', '--json']); "
            "print('TV', 'torchvision' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          env={"LAB_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "TV False"


def test_every_core_module_opens_with_a_docstring():
    missing = [p.name for p in (REPO / "core").glob("*.py") if ast.get_docstring(ast.parse(p.read_text())) is None]
    assert missing == []


def test_core_train_stays_the_training_function_after_any_import():
    import core
    import core.runs  # noqa: F401  (imports the training module)

    assert callable(core.train) and core.train.__name__ == "train"
    assert core.TrainConfig().dataset == "digits"


def test_ci_runs_the_readme_test_command_and_it_covers_the_slow_tests():
    readme = (REPO / "README.md").read_text()
    command = next(line for line in readme.splitlines() if line.startswith("pip install -q -r requirements-dev.txt"))
    ci_lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert command in ci_lines                                      # verbatim, as its own line
    assert "python -m pytest -q" in command and "python -m pytest -q -m slow" in command
