"""atomic_write never writes through a planted file or symlink; scratch_dir falls back
to a private RAM folder on a read-only medium."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from support.tmpfs import remount, tmpfs

from agent.fsutil import atomic_write, scratch_dir
from agent.fsutil import tmp_path as staging_path


def test_symlink_at_the_temporary_name_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    target = tmp_path / "device.key"
    os.symlink(victim, staging_path(target))
    atomic_write(target, b"secret", mode=0o600)
    assert victim.read_bytes() == b"precious"  # not written through the link
    assert target.read_bytes() == b"secret"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not os.path.lexists(staging_path(target))


def test_stale_or_planted_temporary_file_is_replaced_with_our_mode(tmp_path: Path) -> None:
    target = tmp_path / "device.key"
    planted = staging_path(target)
    planted.write_bytes(b"old half-written")
    os.chmod(planted, 0o666)
    atomic_write(target, b"secret", mode=0o600)
    assert target.read_bytes() == b"secret"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_scratch_dir_is_the_folder_when_writable(tmp_path: Path) -> None:
    assert scratch_dir(tmp_path / "pcm") == tmp_path / "pcm"


def test_scratch_dir_falls_back_to_a_private_ram_folder(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "card", size="1m") as card:
        remount(card, ro=True)
        ram = scratch_dir(card / "pcm")
        assert ram != card / "pcm" and ram.name == "pcm"
        st = os.lstat(ram.parent)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700
        (ram / "probe").write_bytes(b"x")  # usable
        (ram / "probe").unlink()
