"""Writing files safely: every writer in neuro-snn goes through :func:`atomic_output`.

The rule (DESIGN.md, Conventions): a file is written to a temporary file in the target folder and renamed
over the target only once complete, so a failure part-way leaves the user's old file untouched and no
partial file behind; an existing file is never replaced unless ``overwrite=True``; a writer never writes
over one of its own inputs.

Example:
    >>> import tempfile, pathlib
    >>> from neuro.files import atomic_output
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_output(folder / "a.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (folder / "a.txt").read_text()
    'hello'
    >>> with atomic_output(folder / "a.txt") as tmp:
    ...     pass
    Traceback (most recent call last):
    ...
    FileExistsError: ... already exists; pass overwrite=True (or --overwrite) to replace it
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


def check_output_path(path, overwrite: bool = False, inputs: Iterable = (), what: str = "output") -> Path:
    """``path`` as a Path after checking that writing it is allowed.

    Refuses (with an error naming the path): an empty or non-path value, an existing folder, an existing
    file without ``overwrite``, a path that is one of ``inputs`` (the same file, links resolved), and a
    parent folder that cannot be made.
    """
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{what} path must be a str or os.PathLike, got {type(path).__name__}")
    if str(path) == "":
        raise ValueError(f"{what} path is empty")
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{what} path {str(p)!r} is an existing folder; give a file name")
    for src in inputs:
        if src is None:
            continue
        try:
            same = Path(src).exists() and p.exists() and os.path.samefile(src, p)
        except OSError:
            same = False
        if same or Path(src).resolve() == p.resolve():
            raise ValueError(f"{what} path {str(p)!r} is the input file; refusing to write over it")
    if p.exists() and not overwrite:
        raise FileExistsError(f"{what} {str(p)!r} already exists; pass overwrite=True (or --overwrite) to replace it")
    if p.parent.exists() and not p.parent.is_dir():
        raise NotADirectoryError(f"{what} folder {str(p.parent)!r} is a file, not a folder")
    return p


@contextlib.contextmanager
def atomic_output(path, overwrite: bool = False, inputs: Iterable = (), what: str = "output") -> Iterator[Path]:
    """Context manager yielding a temporary path in ``path``'s folder; renamed to ``path`` on success.

    On any exception inside the block the temporary file is removed and ``path`` is left as it was.
    The temporary name keeps ``path``'s suffix, so writers that pick a format by suffix (matplotlib,
    h5py) behave as for the real name.
    """
    p = check_output_path(path, overwrite=overwrite, inputs=inputs, what=what)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(f"cannot make the folder for {what} {str(p)!r}: {exc.strerror or exc}") from None
    fd, tmp_name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=f".tmp{p.suffix}", dir=p.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"internal error: the writer of {str(p)!r} produced no file")
        # mkstemp creates 0600; a finished file gets the permissions an ordinary open() would give it.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        if p.exists() and not overwrite:  # someone made it while we were writing
            raise FileExistsError(f"{what} {str(p)!r} appeared while writing; pass overwrite=True to replace it")
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text(path, text: str, overwrite: bool = False, inputs: Iterable = (), what: str = "output") -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_output`); returns the path."""
    with atomic_output(path, overwrite=overwrite, inputs=inputs, what=what) as tmp:
        tmp.write_text(text)
    return Path(path)


def save_figure(fig, path, overwrite: bool = False, **savefig_kwargs) -> Path:
    """``fig.savefig`` made atomic, with the overwrite rule."""
    with atomic_output(path, overwrite=overwrite, what="figure") as tmp:
        fig.savefig(tmp, **savefig_kwargs)
    return Path(path)
