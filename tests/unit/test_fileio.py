"""Atomic outputs: missing folders are made, a file in the way is a clear error, and a writer
that fails leaves nothing under the final name (and no temporary file beside it)."""

import pytest

from amchw.fileio import atomic_open, atomic_write


def test_missing_folders_are_made(tmp_path):
    p = atomic_write(tmp_path / "runs" / "a" / "x.txt", "hello")
    assert p.read_text() == "hello"


def test_a_file_in_the_way_names_the_path(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match=r"x\.txt: cannot create the folder .*runs"):
        atomic_write(tmp_path / "runs" / "x.txt", "hello")


def test_a_failed_writer_leaves_nothing(tmp_path):
    target = tmp_path / "out" / "x.bin"
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write(b"half")
            raise RuntimeError("disk full")
    assert not target.exists() and list((tmp_path / "out").iterdir()) == []
    atomic_write(target, b"whole")
    with pytest.raises(RuntimeError):
        with atomic_open(target) as f:
            f.write(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"whole"  # the old file stays whole
