"""Atomic file writes: a reader never sees a half-written file.

Every output of the package is written under a hidden temporary name beside its final path and
renamed onto it only once complete; a failure removes the temporary file and leaves any earlier
version of the output as it was.
"""

from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Mapping

from gwas_models.errors import GwasmError, InputError


def ensure_directory(directory: Path, what: str, error: type[GwasmError]) -> None:
    """Create ``directory`` (and its parents) and check it is writable, else raise ``error``.

    ``what`` names the directory in the one-line message, e.g. ``"store"`` or ``"results"``.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise error(f"cannot create {what} directory {directory}: a file is in the way") from None
    except OSError as failure:
        raise error(f"{what} directory {directory} cannot be created: {failure.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise error(f"{what} directory {directory} is not writable")


def temporary_name(path: Path) -> Path:
    """A hidden, unique name beside ``path`` (skipped by Parquet dataset discovery)."""
    return path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is renamed onto ``path``.

    The parent directory is created when missing; a ``path`` that is a directory is an
    :class:`~gwas_models.errors.InputError`.
    """
    path = Path(path)
    if path.is_dir():
        raise InputError(f"cannot write {path}: it is a directory")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_name(path)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and return the path."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)


def write_all_atomic(files: Mapping[Path, Callable[[Path], None]]) -> None:
    """Write several files, each through its writer, then rename them all.

    No final file appears unless every writer succeeded; on failure every temporary is removed.
    """
    temporaries: dict[Path, Path] = {}
    try:
        for final, write in files.items():
            temporaries[final] = temporary_name(final)
            write(temporaries[final])
        for final, temporary in temporaries.items():
            os.replace(temporary, final)
    finally:
        for temporary in temporaries.values():
            temporary.unlink(missing_ok=True)
