"""Entry point of the `gwasm` console script.

Each command module registers its commands on :data:`gwasm_cli.app.app`. This module runs the
application so that every failure the user can cause ends as one line on stderr and exit code 2:
the library's :class:`~gwas_models.errors.GwasmError`, click's usage errors, and unreadable files.

Only the module of the command being run is imported (:data:`COMMAND_MODULES`): a command module
pulls in the statistics or the training code, and `gwasm --help` or a mistyped option should not
wait for them. The command list of the help page is read from the modules' source.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import sys
from pathlib import Path

import typer

try:  # recent Typer vendors its own click; older releases use click itself
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover
    from click import exceptions as click_exceptions

from gwas_models.errors import GwasmError
from gwasm_cli.app import app

#: The module of ``gwasm_cli`` that defines each command, in the order the help page lists them
#: (the pipeline's).
COMMAND_MODULES: dict[str, str] = {
    "collect": "collect",
    "runs": "collect",
    "import-scores": "collect",
    "associate": "associate",
    "manhattan": "plots",
    "qq": "plots",
    "gallery": "plots",
    "fingerprint": "fingerprint",
    "identify": "fingerprint",
    "variance": "analyses",
    "stability": "analyses",
    "correlate": "analyses",
    "pca": "analyses",
    "sizes": "analyses",
    "report": "report",
    "demo": "demo",
}

USAGE_EXIT = 2
_ABORT = getattr(click_exceptions, "Abort", KeyboardInterrupt)


# Library parameters whose flag is not their name with dashes (``--`` + ``name.replace("_", "-")``).
FLAG_OF_PARAMETER = {
    "n_markers": "--markers",
    "n_splits": "--splits",
    "n_permutations": "--permutations",
    "n_bins": "--bins",
    "output_format": "--format",
    "figure_format": "--format",
    "save_path": "--save",
    "out_prefix": "--out",
    "selections": "--select",
    "options": "--arch-option",
    "time_minutes": "--time",
    "mem_gb": "--mem",
    "extra": "--slurm-option",
    "n_replicates": "--batch-replicates",
}


def flag_of(parameter: str) -> str:
    """The command-line flag that sets a library parameter."""
    return FLAG_OF_PARAMETER.get(parameter, "--" + parameter.replace("_", "-"))


def error_message(error: GwasmError) -> str:
    """A library error in the command line's words: its parameter, when it names one, as a flag."""
    message = error.message
    if error.parameter is not None and message.startswith(error.parameter):
        message = flag_of(error.parameter) + message[len(error.parameter) :]
    if error.missing_step is not None:
        message += f"; run `gwasm {error.missing_step}` first"
    return " ".join(message.split())


def _fail(message: str, code: int = USAGE_EXIT) -> int:
    print(f"gwasm: error: {message}", file=sys.stderr)
    return code


# Commands that produce results; their command lines go into the results folder's history.
_PRODUCING = {"collect", "import-scores", "associate", "manhattan", "qq", "gallery", "fingerprint", "variance",
              "stability", "correlate", "pca", "sizes"}


def _record(argv: list[str], history_dir: str | os.PathLike | None) -> None:
    from gwas_models.workflows.report import record_history

    if argv and argv[0] in _PRODUCING and "--help" not in argv:
        record_history(argv, history_dir)


def command_docs() -> dict[str, str]:
    """The docstring of every command, by name, read from the command modules' source (no import)."""
    docs: dict[str, str] = {}
    for module in dict.fromkeys(COMMAND_MODULES.values()):
        tree = ast.parse((Path(__file__).parent / f"{module}.py").read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef):
                for decorator in node.decorator_list:
                    call = decorator if isinstance(decorator, ast.Call) else None
                    target = call.func if call else decorator
                    if isinstance(target, ast.Attribute) and target.attr == "command":
                        name = call.args[0].value if call and call.args else node.name.replace("_", "-")
                        docs[name] = inspect.cleandoc(ast.get_docstring(node) or "")
    return docs


def _command_name(args: list[str]) -> str | None:
    """The command named on the command line (the first word that is not an option), if any."""
    return next((arg for arg in args if not arg.startswith("-")), None)


def _click_command(args: list[str]):
    """The click group to run ``args``: with the command's module loaded, or, for the help page
    and unknown names, with every command listed from its docstring."""
    name = _command_name(args)
    if name in COMMAND_MODULES:
        importlib.import_module(f"gwasm_cli.{COMMAND_MODULES[name]}")
        return typer.main.get_command(app)
    group = typer.main.get_command(app)
    loaded = set(group.list_commands(None))
    for command, doc in command_docs().items():
        if command not in loaded:
            # A stand-in that only shows in the list: running a command loads its real module.
            group.add_command(typer.core.TyperCommand(command, help=doc))
    ordered = {command: group.commands[command] for command in COMMAND_MODULES if command in group.commands}
    group.commands = ordered
    return group


def _os_error_message(error: OSError) -> str:
    """One line for an error the system raised: what it said, and the file when it is known."""
    said = " ".join(str(error.strerror or error).split())
    return f"{said}: {error.filename}" if error.filename else said


def main(argv: list[str] | None = None, history_dir: str | os.PathLike | None = None) -> int:
    """Run `gwasm`; return the exit code (the console script exits with it).

    ``history_dir`` is the results folder whose command history records the command (default
    ``$GWASM_RESULTS``, else ``./gwasm-results``).
    """
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        if not args:  # bare `gwasm`: the help page, as `gwasm --help` prints it
            args = ["--help"]
        command = _click_command(args)
        result = command.main(args=args, prog_name="gwasm", standalone_mode=False)
    except GwasmError as error:
        code = _fail(error_message(error))
    except click_exceptions.UsageError as error:
        code = _fail(error.format_message().replace("\n", " "))
    except (_ABORT, KeyboardInterrupt):
        code = _fail("interrupted", 130)
    except OSError as error:  # the system refused (a missing file, a full disk, a lost mount): not a bug
        code = _fail(_os_error_message(error))
    except Exception as error:  # a bug: still one line unless the user asks for the traceback
        if os.environ.get("GWASM_DEBUG"):
            raise
        message = " ".join(str(error).split())
        code = _fail(f"internal error ({type(error).__name__}: {message}); rerun with GWASM_DEBUG=1 for a traceback", 1)
    else:
        code = result if isinstance(result, int) else 0
        if code == 130:  # Typer turns Ctrl-C inside a command into a returned 130
            _fail("interrupted", 130)
        if code == 0:
            _record(argv if argv is not None else sys.argv[1:], history_dir)
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    main()
