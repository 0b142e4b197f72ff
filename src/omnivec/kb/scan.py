"""What an index run reads: the regular files under the paths given, following no symlink inside them; FIFOs,
devices, sockets, symlinks and names that are not UTF-8 reported as skipped, folders that cannot be listed reported
(their files are kept)."""

from __future__ import annotations

import os
import stat as stat_mode
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from omnivec.errors import InputError


@dataclass
class Scan:
    """What ``scan`` found under the indexed paths, each list sorted."""
    files: list[Path]  # regular files of a supported type
    unsupported: list[Path]  # regular files of another type
    skipped: list[tuple[str, str]]  # (path, reason): symlinks, FIFOs, devices and sockets, never read
    unlisted: list[tuple[str, str]]  # (folder, reason): folders that could not be listed; their files are kept


SYMLINK_SKIPPED = "symlink, not followed"


def scan(paths: Iterable[Path], kb_dir: Path, supported: Iterable[str]) -> Scan:
    """Regular files under ``paths`` (hidden files and folders and the KB's own folder are skipped).

    A path given here is resolved (the user named it); inside a folder nothing is followed: symlinks to files or
    folders, inside the indexed folders or not, are reported as skipped, so only what lies in the indexed folders
    is read, and no file is indexed twice. FIFOs, devices and sockets are skipped (reading one would hang). A
    folder that cannot be listed is reported, never taken for an empty one."""
    extensions = {e.lower() for e in supported}
    kb_dir = kb_dir.resolve()
    found: set[Path] = set()
    skipped: list[tuple[str, str]] = []
    unlisted: list[tuple[str, str]] = []
    for root in paths:
        _check_utf8(root)  # named as the user wrote it
        try:
            root = root.resolve()
            mode = root.stat().st_mode
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop, for Path.resolve
            raise InputError(f"{str(root)!r} does not exist or cannot be read: {os_reason(exc)}") from None
        _check_utf8(root)  # and the folders above it (a relative path in a non-UTF-8 working directory)
        if stat_mode.S_ISDIR(mode):
            _walk(root, kb_dir, found, skipped, unlisted)
        elif stat_mode.S_ISREG(mode):
            found.add(root)
        else:
            skipped.append((str(root), not_regular(mode)))
    files = sorted(f for f in found if f.suffix.lower() in extensions)
    return Scan(files, sorted(found - set(files)), sorted(skipped), sorted(unlisted))


def _walk(root: Path, kb_dir: Path, found: set[Path], skipped: list[tuple[str, str]],
          unlisted: list[tuple[str, str]]) -> None:
    """Add the regular files under ``root`` to ``found``, following no symlink (``os.scandir``'s entry types come
    from the folder listing itself, without opening anything)."""
    folders = [root]
    while folders:
        folder = folders.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as exc:
            unlisted.append((str(folder), f"folder cannot be listed ({os_reason(exc)}); the files indexed from it "
                                          "are kept"))
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            path = Path(entry.path)
            if not _utf8(entry.name):  # SQLite, the stores and JSON hold text: such a name cannot be recorded
                skipped.append((str(path), NOT_UTF8))
                continue
            try:
                if entry.is_symlink():
                    skipped.append((str(path), SYMLINK_SKIPPED))
                elif entry.is_dir(follow_symlinks=False):
                    if path != kb_dir:
                        folders.append(path)
                elif entry.is_file(follow_symlinks=False):
                    found.add(path)
                else:
                    skipped.append((str(path), not_regular(entry.stat(follow_symlinks=False).st_mode)))
            except OSError as exc:  # gone since the listing
                skipped.append((str(path), f"cannot be read: {os_reason(exc)}"))


NOT_UTF8 = "name is not valid UTF-8 (rename it to index it)"


def _utf8(name: str) -> bool:
    """Whether a name from the file system is text: undecodable bytes arrive as lone surrogates."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_utf8(path: Path) -> None:
    """A path given to index must be text all along: every indexed file's path starts with it, and SQLite, the
    stores and JSON hold text only."""
    if not _utf8(str(path)):
        raise InputError(f"{str(path)!r}: the path is not valid UTF-8 (undecodable bytes shown as \\udcXX), so "
                         "files under it cannot be recorded; rename it to index it.")


def not_regular(mode: int) -> str:
    kind = ("FIFO" if stat_mode.S_ISFIFO(mode) else "socket" if stat_mode.S_ISSOCK(mode)
            else "device" if stat_mode.S_ISCHR(mode) or stat_mode.S_ISBLK(mode) else "special file")
    return f"not a regular file ({kind})"


def os_reason(exc: BaseException) -> str:
    """The OS's reason ("Permission denied") without the errno and path, which the report line names."""
    return getattr(exc, "strerror", None) or str(exc)
