"""Media file → raw PCM in the engine's format, in a subprocess with a deadline.

Decoding runs in a child process (ffmpeg by default) so that a corrupt file that makes
a decoder spin or hang costs one killed process, never the agent: after `timeout_s`
the whole process group gets SIGKILL and `DecodeError("decoder_timeout")` is raised.
Results are cached by the source's SHA-256 (+ rate and channels) under `pcm_dir`,
written to a temporary name, fsynced and renamed, so a power cut leaves either the
whole file or none.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
from collections.abc import Sequence
from pathlib import Path

DEFAULT_DECODER: tuple[str, ...] = (
    "ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y", "-i", "{src}", "-vn",
    "-ac", "{channels}", "-ar", "{rate}", "-f", "s16le", "-acodec", "pcm_s16le", "{dst}",
)  # fmt: skip


class DecodeError(Exception):
    """Decoding failed; `code` is a stable reason for events/proofs."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def pcm_path(pcm_dir: Path, sha256: str, rate: int, channels: int) -> Path:
    return pcm_dir / f"{sha256}.{rate}x{channels}.s16"


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _commit(tmp: Path, dst: Path) -> None:
    """fsync the data, rename into place, fsync the folder (survives a power cut)."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, dst)
    dfd = os.open(dst.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


async def decode_to_pcm(
    src: Path,
    pcm_dir: Path,
    *,
    rate: int,
    channels: int,
    sha256: str | None = None,
    timeout_s: float = 60.0,
    command: Sequence[str] = DEFAULT_DECODER,
) -> Path:
    """Decode `src` to s16le PCM at `rate`/`channels`; return the cached file's path."""
    if not src.is_file():
        raise DecodeError("media_missing", f"{src} does not exist")
    if sha256 is None:
        sha256 = await asyncio.to_thread(sha256_file, src)
    dst = pcm_path(pcm_dir, sha256, rate, channels)
    if dst.exists():
        return dst
    pcm_dir.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.{id(dst):x}.tmp")
    argv = [a.format(src=src, dst=tmp, rate=rate, channels=channels) for a in command]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own group: kill takes any helpers with it
        )
    except OSError as e:
        raise DecodeError("decoder_failed", f"cannot run {argv[0]}: {e}") from e
    try:
        try:
            async with asyncio.timeout(timeout_s):
                _, err = await proc.communicate()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise DecodeError(
                "decoder_timeout", f"{argv[0]} on {src.name} killed after {timeout_s:g} s"
            ) from None
        except asyncio.CancelledError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            raise
        if proc.returncode != 0:
            msg = err.decode("utf-8", "replace").strip().splitlines()[-3:]
            raise DecodeError(
                "decoder_failed", f"{argv[0]} exit {proc.returncode} on {src.name}: {' '.join(msg)}"
            )
        size = tmp.stat().st_size if tmp.exists() else 0
        if size < 2 * channels:
            raise DecodeError("no_audio", f"{src.name} decoded to no audio")
        await asyncio.to_thread(_commit, tmp, dst)
        return dst
    finally:
        tmp.unlink(missing_ok=True)
