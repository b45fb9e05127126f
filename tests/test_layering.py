"""The layers stay apart.

- The pure wing (statistics, formats, plots, the report) imports neither torch nor Typer, and no
  library module imports Typer at all; the formats import nothing from the analysis.
- The command line is thin: no module under ``cli/`` reaches past the workflow layer into
  ``gwas_models.analysis``, ``gwas_models.formats``, ``gwas_models.plots`` or ``gwas_models.training``,
  and each command calls one workflow function.
- Library exceptions speak in the library's parameters: no message raised under ``gwas_models/``
  names a command-line flag (``--something``).
"""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "gwas_models"
CLI = ROOT / "cli"
PURE_PACKAGES = ("gwas_models.analysis", "gwas_models.formats", "gwas_models.plots")
PURE_EXTRA = ("gwas_models.report", "gwas_models.data", "gwas_models.matrix", "gwas_models.scores", "gwas_models.workflows")
#: What `cli/` may import from the library: the workflow layer, the errors, the version.
CLI_MAY_IMPORT = ("gwas_models.workflows", "gwas_models.errors", "gwas_models.__version__")
#: Commands that are scripts of other commands rather than one workflow call.
SCRIPT_COMMANDS = {"demo"}


def _pure_modules() -> list[str]:
    names = list(PURE_EXTRA)
    for package in PURE_PACKAGES:
        path = LIBRARY / package.split(".", 1)[1]
        names += [f"{package}.{info.name}" for info in pkgutil.iter_modules([str(path)])]
    return names


def _parsed(folder: Path) -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(), filename=str(path)) for path in sorted(folder.rglob("*.py"))}


def _imported_modules(tree: ast.AST) -> list[str]:
    """Every module an import statement names, at any depth (lazy imports inside functions too)."""
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_pure_wing_imports_no_torch_and_no_typer():
    modules = _pure_modules()
    assert "gwas_models.analysis.study" in modules and "gwas_models.formats.sumstats" in modules
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print(sorted(m for m in ('torch', 'typer') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_no_library_module_imports_typer():
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path, tree in _parsed(LIBRARY).items()
        for name in _imported_modules(tree)
        if name == "typer" or name.startswith(("typer.", "click"))
    ]
    assert offenders == []


def test_formats_import_nothing_from_the_analysis():
    """The files know their columns and records; the analysis builds on them, never the reverse."""
    offenders = [
        f"{path.relative_to(ROOT)}: {name}"
        for path, tree in _parsed(LIBRARY / "formats").items()
        for name in _imported_modules(tree)
        if name.startswith("gwas_models.analysis")
    ]
    assert offenders == []


def test_cli_imports_only_the_workflow_layer_of_the_library():
    offenders = []
    for path, tree in _parsed(CLI).items():
        for name in _imported_modules(tree):
            if name.startswith("gwas_models.") and not name.startswith(CLI_MAY_IMPORT):
                offenders.append(f"{path.name}: {name}")
    assert offenders == []


def _command_functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    """Functions decorated with ``@app.command(...)``, by command name."""
    commands = {}
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call else decorator
            if isinstance(target, ast.Attribute) and target.attr == "command":
                name = call.args[0].value if call and call.args else node.name.replace("_", "-")
                commands[name] = node
    return commands


def _workflow_names(tree: ast.AST) -> set[str]:
    """Names bound by imports from the workflow layer (modules and functions alike)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("gwas_models.workflows"):
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "gwas_models":
            names |= {alias.asname or alias.name for alias in node.names if alias.name == "workflows"}
    return names


def _workflow_calls(function: ast.FunctionDef, workflow_names: set[str]) -> list[str]:
    calls = []
    for node in ast.walk(function):
        if not isinstance(node, ast.Call):
            continue
        target = node.func
        if isinstance(target, ast.Name) and target.id in workflow_names:
            calls.append(target.id)
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id in workflow_names:
            calls.append(f"{target.value.id}.{target.attr}")
    return [c for c in calls if not c[0].isupper()]  # constructing a workflow's dataclass is not a call into it


def test_every_command_calls_exactly_one_workflow_function():
    seen, wrong = set(), {}
    for path, tree in _parsed(CLI).items():
        workflow_names = _workflow_names(tree)
        for name, function in _command_functions(tree).items():
            seen.add(name)
            if name in SCRIPT_COMMANDS:
                continue
            calls = _workflow_calls(function, workflow_names)
            if len(calls) != 1:
                wrong[name] = calls
    assert {"collect", "associate", "manhattan", "fingerprint", "identify", "variance", "sizes", "report"} <= seen
    assert wrong == {}


def _strings_in(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def test_library_errors_never_name_a_flag():
    offenders = []
    for path, tree in _parsed(LIBRARY).items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call):
                for text in _strings_in(node.exc):
                    if "--" in text:
                        offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {text!r}")
    assert offenders == []


def test_a_parameter_error_reads_in_library_terms_and_in_flags_on_the_command_line(run_gwasm, tmp_path):
    from gwas_models.errors import InputError
    from gwas_models.training.train import TrainConfig

    with pytest.raises(InputError) as caught:
        TrainConfig(epochs=0)
    assert caught.value.parameter == "epochs"
    assert str(caught.value) == "epochs must be at least 1, got 0"
    code, out, err = run_gwasm("collect", "--arch", "mlp", "--epochs", "0", "--store", tmp_path / "store")
    assert (code, out) == (2, "")
    assert err.strip() == "gwasm: error: --epochs must be at least 1, got 0"


def test_a_parameter_message_must_start_with_the_parameter():
    from gwas_models.errors import InputError

    with pytest.raises(ValueError, match="must start with its name"):
        InputError("must be positive", parameter="lr")
    assert InputError("lr must be positive", parameter="lr").parameter == "lr"



def test_bare_gwasm_prints_the_help_page_and_version_prints_the_version(run_gwasm):
    from gwas_models import __version__

    code, out, err = run_gwasm()
    assert (code, err) == (0, "")
    assert out.startswith("Usage: gwasm [OPTIONS] COMMAND") and "Commands:" in out and "collect" in out and "demo" in out
    assert run_gwasm("--version") == (0, f"gwasm {__version__}\n", "")


def test_every_command_is_loaded_from_the_module_that_defines_it():
    from gwasm_cli.main import COMMAND_MODULES, command_docs

    defined = {
        name: path.stem for path, tree in _parsed(CLI).items() for name in _command_functions(tree)
    }
    assert COMMAND_MODULES == {name: defined[name] for name in COMMAND_MODULES}
    assert set(COMMAND_MODULES) == set(defined)
    assert command_docs()["collect"].startswith("Train replicate runs")


def test_the_help_page_loads_no_command_module_and_no_heavy_library():
    code = (
        "import sys, contextlib, io\n"
        "from gwasm_cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        "    assert main(['--help']) == 0\n"
        "assert 'identify' in out.getvalue()\n"
        "heavy = ('torch', 'pandas', 'pyarrow', 'matplotlib', 'sklearn', 'gwas_models.analysis', 'gwasm_cli.collect')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"


def test_a_mistyped_architecture_is_refused_before_torch_or_data_load():
    code = (
        "import sys, contextlib, io\n"
        "from gwasm_cli.main import main\n"
        "with contextlib.redirect_stderr(io.StringIO()) as err:\n"
        "    assert main(['collect', '--arch', 'resnt20']) == 2\n"
        "assert \"unknown architecture 'resnt20'\" in err.getvalue()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('torch', 'pyarrow', 'sklearn'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
