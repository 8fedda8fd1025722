"""File primitives for the file-backed stores: durable atomic replace, and the owner-only secret file."""

from __future__ import annotations

import errno
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from ..exceptions import StorageError, StorageFull

__all__ = ["fsync_dir", "write_atomic", "write_atomic_with", "load_or_create_secret", "os_storage_error"]

_NO_SPACE = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def os_storage_error(what: str, exc: OSError) -> StorageError:
    """`what` failed with `exc`: a `StorageFull` when the disk (or quota) is full, else a `StorageError`."""
    if exc.errno in _NO_SPACE:
        return StorageFull(f"{what}: the disk is full ({exc.strerror or exc}); free some space and try again")
    return StorageError(f"{what}: {exc.strerror or exc}")


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new name in `directory` durable (a file's own fsync does not cover its name)."""
    if os.name == "nt":  # pragma: no cover - a directory cannot be opened there; NTFS journals names itself
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves the old file or the new one, never a torn one."""
    write_atomic_with(path, lambda file: file.write(data))


def write_atomic_with(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """`write_atomic`, with the content streamed by `write(file)`, so it never has to exist whole in memory."""
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        try:
            # mkstemp makes 0o600; a file someone made readable should stay so after we rewrite it.
            os.fchmod(fd, os.stat(path).st_mode & 0o777)
        except (FileNotFoundError, AttributeError):
            pass
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def load_or_create_secret(path: Path, make: Callable[[], str]) -> str:
    """The secret kept in `path`, or `make()` stored there first with owner-only permissions."""
    existing = _read_secret(path)
    if existing is not None:
        return existing
    secret = make()
    if not isinstance(secret, str) or not secret.strip():
        raise ValueError("the secret to store must be a non-empty string")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole under a private name, then linked into place: os.link fails if the name
        # exists, so two processes starting at once agree on one secret and nobody reads half of one.
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(secret.strip())
                file.flush()
                os.fsync(file.fileno())
            try:
                _link_into_place(tmp, path)
            except FileExistsError:
                pass  # another process won the race; its secret is the one
        finally:
            tmp.unlink(missing_ok=True)
        fsync_dir(path.parent)
    except OSError as exc:
        raise os_storage_error(f"cannot create the secret file {path}", exc) from exc
    stored = _read_secret(path)
    assert stored is not None, "the secret file was linked into place above"
    return stored


# A file system without hard links says so with one of these (Emscripten's, some network and FAT mounts).
_NO_LINKS = {errno.ENOSYS, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV}


def _link_into_place(tmp: Path, path: Path) -> None:
    """Give the written file `tmp` the name `path`, failing with FileExistsError if the name is taken."""
    link = getattr(os, "link", None)
    if link is not None:
        try:
            link(tmp, path)
            return
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
    # No hard links (Pyodide in a browser: one tab, one writer): create the name exclusively and copy
    # into it. Two writers would still agree on one secret (O_EXCL); only a reader racing the copy could
    # see a part of it, and there is no second process to be that reader.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(tmp.read_bytes())
        file.flush()
        os.fsync(file.fileno())


def _read_secret(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read the secret file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError:
        raise StorageError(f"the secret file {path} is not UTF-8 text; remove it to generate a new secret") from None
    if not text:
        # Making a new one would silently invalidate every token handed out with the old one.
        raise StorageError(f"the secret file {path} is empty; remove it to generate a new secret")
    return text
