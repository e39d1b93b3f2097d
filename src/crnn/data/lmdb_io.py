"""LMDB datasets in the PaddleOCR / deep-text-recognition-benchmark layout.

Keys (1-based): ``num-samples`` (ASCII int), ``image-%09d`` (encoded image bytes),
``label-%09d`` (UTF-8 text). Every leaf directory under a root is one LMDB.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from types import TracebackType

import lmdb

from crnn.data.images import decode_image
from crnn.data.labels import read_label_file

log = logging.getLogger(__name__)


def image_key(index: int) -> bytes:
    """Key of the 1-based sample ``index``'s image."""
    return b"image-%09d" % index


def label_key(index: int) -> bytes:
    """Key of the 1-based sample ``index``'s label."""
    return b"label-%09d" % index


def find_lmdb_dirs(root: str | os.PathLike[str]) -> list[Path]:
    """Every leaf directory under ``root`` that holds an LMDB, in sorted walk order.

    Raises:
        FileNotFoundError: ``root`` does not exist or holds no LMDB.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"LMDB root {root} is not a directory")
    leaves: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if not dirnames and "data.mdb" in filenames:
            leaves.append(Path(dirpath))
    if not leaves:
        raise FileNotFoundError(f"no LMDB (a leaf directory with data.mdb) under {root}")
    return leaves


class LmdbWriter:
    """Append (image bytes, label) samples to a new LMDB; the map grows when it fills up.

    ``num-samples`` is written on every commit, so a partially written LMDB is always valid.
    """

    def __init__(self, path: str | os.PathLike[str], map_size: int = 1 << 28, commit_every: int = 1000):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.env = lmdb.open(str(self.path), map_size=map_size, subdir=True, lock=True)
        with self.env.begin() as txn:
            raw = txn.get(b"num-samples")
        self.count = int(raw) if raw is not None else 0
        self.commit_every = commit_every
        self._pending: list[tuple[bytes, bytes]] = []

    def add(self, image: bytes, label: str) -> int:
        """Queue one sample; returns its 1-based index."""
        self.count += 1
        self._pending.append((image_key(self.count), image))
        self._pending.append((label_key(self.count), label.encode("utf-8")))
        if len(self._pending) >= 2 * self.commit_every:
            self.commit()
        return self.count

    def commit(self) -> None:
        """Write the queued samples and the new ``num-samples``, growing the map if needed."""
        items = [*self._pending, (b"num-samples", str(self.count).encode())]
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    for key, value in items:
                        txn.put(key, value)
                break
            except lmdb.MapFullError:
                new_size = self.env.info()["map_size"] * 2
                log.debug("LMDB %s full, growing map to %d bytes", self.path, new_size)
                self.env.set_mapsize(new_size)
        self._pending.clear()

    def close(self) -> None:
        """Commit what is queued and close the environment."""
        self.commit()
        self.env.close()

    def __enter__(self) -> LmdbWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def check_lmdb_file(path: Path) -> None:
    """Refuse an LMDB whose data.mdb is shorter than its header says: reading it would crash (SIGBUS).

    Raises:
        ValueError: not an LMDB, or truncated; the message names the folder.
    """
    data = path / "data.mdb"
    try:
        env = lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False)
    except lmdb.Error as e:
        raise ValueError(f"LMDB {path} is corrupt or not an LMDB: {e}") from None
    try:
        need = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    finally:
        env.close()
    size = data.stat().st_size
    if size < need:
        raise ValueError(f"LMDB {path} is truncated: data.mdb has {size} bytes, its header needs {need}")


def create_lmdb(
    label_file: str | os.PathLike[str], data_dir: str | os.PathLike[str], out: str | os.PathLike[str],
    delimiter: str = "\t",
) -> tuple[int, list[str]]:
    """Build an LMDB from a label file; images are stored as their original bytes.

    Returns:
        (number written, list of "path: reason" for every image that was not written).

    Raises:
        FileExistsError: ``out`` is a file or already holds an LMDB.
        FileNotFoundError: no label file, or no ``data_dir`` folder.
        ValueError: the label file has no sample, or none of its images could be read (nothing is
            left behind: an LMDB of 0 samples would only fail later, in training).
    """
    bad: list[str] = []
    if Path(out).exists() and not Path(out).is_dir():
        raise FileExistsError(f"--out {out} is a file; choose a new directory")
    if (Path(out) / "data.mdb").exists():
        raise FileExistsError(f"--out {out} already holds an LMDB; choose a new directory")
    if not Path(label_file).is_file():
        raise FileNotFoundError(f"label file {label_file} not found")
    if not Path(data_dir).is_dir():
        raise FileNotFoundError(f"--data-dir {data_dir}: no such folder (the label file's paths are relative to it)")
    pairs = read_label_file(label_file, delimiter)
    if not pairs:
        raise ValueError(f"label file {label_file} has no samples (path{delimiter!r}label lines); nothing to write")
    created = not Path(out).exists()
    with LmdbWriter(out) as writer:
        if writer.count:
            raise FileExistsError(f"{out} already holds {writer.count} samples; choose a new directory")
        for rel, label in pairs:
            path = Path(data_dir) / rel
            try:
                data = path.read_bytes()
                decode_image(data, str(path))
            except (OSError, ValueError) as e:
                bad.append(f"{path}: {e}")
                continue
            writer.add(data, label)
        written = writer.count
    if written == 0:
        if created:
            shutil.rmtree(out, ignore_errors=True)
        else:  # a folder the user made: leave it as it was
            for name in ("data.mdb", "lock.mdb"):
                (Path(out) / name).unlink(missing_ok=True)
        raise ValueError(f"none of the {len(pairs)} images of {label_file} could be read under --data-dir {data_dir}"
                         f" (first: {bad[0]}); nothing written")
    return written, bad
