"""Writing output files safely: whole or not at all, with ordinary permissions, and no
temp file left behind for good.

A file is written to a temp name in its own folder (prefix :data:`TEMP_PREFIX`) and renamed
over the target; a folder is built beside its target and swapped in. A run killed midway
can leave a temp file; the next export removes every one it finds.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path

import polars as pl

from tracecode.errors import InputError

TEMP_PREFIX = ".tracecode-tmp-"


def check_out(out: Path) -> None:
    """Fail early (before a run ingests anything) when ``out`` cannot be the output folder."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file: give a folder (it is created if absent)")


def prepare_out(out: Path, names: tuple[str, ...] = ()) -> None:
    """Create ``out`` if needed and remove the temp files an interrupted export left (also
    the ``.<name>.*`` ones of earlier versions, for the output ``names``)."""
    check_out(out)
    out.mkdir(parents=True, exist_ok=True)
    legacy = [p for name in names for p in out.glob(f".{name}.*")]
    for stale in [*out.glob(TEMP_PREFIX + "*"), *legacy]:
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def atomic_file(target: Path, write: Callable[[str], object]) -> Path:
    """Write through a temp file in the same folder, then rename over the target."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f"{TEMP_PREFIX}{target.name}.")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, _file_mode())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_dir(target: Path, fill: Callable[[Path], object]) -> Path:
    """Build a folder beside ``target`` and swap it in (the old one is removed after)."""
    tmp = target.with_name(f"{TEMP_PREFIX}{target.name}.{uuid.uuid4().hex[:8]}")
    tmp.mkdir(mode=_dir_mode())
    try:
        fill(tmp)
        for path in tmp.rglob("*"):
            os.chmod(path, _dir_mode() if path.is_dir() else _file_mode())
        old = None
        if target.exists():
            old = target.with_name(f"{TEMP_PREFIX}{target.name}.old.{uuid.uuid4().hex[:8]}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _file_mode() -> int:
    """What ``open()`` would give a new file (0644 under the usual umask): mkstemp's 0600
    would hide the outputs from the team that reads them."""
    return 0o666 & ~_umask()


def _dir_mode() -> int:
    return 0o777 & ~_umask()


# -- personal data in raw lines --------------------------------------------------------

# "certno": "440106199001011234" and the like, in JSON or JSON-ish text
_FIELDS = ("certno", "psn_cert_no", "psn_name", "psn_no", "name", "tel", "phone", "addr")
_FIELD = re.compile(r'("(?:' + "|".join(_FIELDS) + r')"\s*:\s*")((?:[^"\\]|\\.)*)(")')
# an 18-character resident ID anywhere (CSV lines, broken JSON, free text)
_RESIDENT_ID = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[0-9Xx])(?![0-9A-Za-z])")


def mask_raw(line: str | None) -> str | None:
    """A quarantined line with its personal data masked: values of the personal fields
    keep their first and last characters only, resident IDs their region and last four.

    >>> mask_raw('{"certno":"440106199001011234","psn_name":"张三丰"}')
    '{"certno":"44**************34","psn_name":"张**"}'
    """
    if line is None:
        return None
    masked = _FIELD.sub(lambda m: m.group(1) + _mask_value(m.group(2)) + m.group(3), line)
    return _RESIDENT_ID.sub(lambda m: m.group(1) + "********" + m.group(2), masked)


def _mask_value(value: str) -> str:
    if len(value) <= 1:
        return value
    if len(value) <= 4:
        return value[0] + "*" * (len(value) - 1)
    return value[:2] + "*" * (len(value) - 4) + value[-2:]


def mask_raw_column(frame: pl.DataFrame, column: str = "raw") -> pl.DataFrame:
    return frame.with_columns(
        pl.col(column).map_elements(mask_raw, return_dtype=pl.String, skip_nulls=True)
    )
