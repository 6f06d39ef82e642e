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


def test_modes_follow_the_umask(tmp_path):
    import os

    old = os.umask(0o027)
    try:
        p = atomic_write(tmp_path / "x.bin", b"1")
        assert p.stat().st_mode & 0o777 == 0o640
        os.umask(0o022)
        assert atomic_write(tmp_path / "y.bin", b"1").stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)


def test_a_directory_or_an_unwritable_folder_is_named_not_the_temporary_file(tmp_path):
    import os

    (tmp_path / "d").mkdir()
    with pytest.raises(IsADirectoryError, match=r"d: is a directory"):
        atomic_write(tmp_path / "d", b"1")
    ro = tmp_path / "ro"
    ro.mkdir()
    os.chmod(ro, 0o555)
    try:
        if os.access(ro, os.W_OK):   # root ignores the mode: nothing to test
            return
        with pytest.raises(PermissionError) as e:
            atomic_write(ro / "x.qonnx", b"1")
        assert "x.qonnx: cannot write in" in str(e.value) and ".tmp" not in str(e.value)
    finally:
        os.chmod(ro, 0o755)


def test_sigterm_during_a_write_leaves_no_temporary_file(tmp_path):
    """A command stopped by SIGTERM exits (143) and removes its partial output."""
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "big.h5"
    p = subprocess.Popen([sys.executable, "-m", "amchw.cli", "data", "synth", "--profile",
                          "rml2018", "--per-class-snr", "400", "-o", str(out)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob("big.h5.*")):
        time.sleep(0.05)
    assert list(tmp_path.glob("big.h5.*")), "the writer never started"
    p.send_signal(signal.SIGTERM)
    p.wait(60)
    assert p.returncode == 143
    assert list(tmp_path.iterdir()) == []
