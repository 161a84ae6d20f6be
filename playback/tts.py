"""Offline text-to-speech with espeak-ng (Vietnamese voice `vi` by default).

An alert's text is rendered once and cached by the SHA-256 of (voice, text): an alert
repeated three times, or re-sent as an update with the same text, speaks without
running espeak-ng again. espeak-ng runs as a subprocess with a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import signal
from pathlib import Path

from playback.decode import DecodeError, _commit

MAX_TEXT_CHARS = 10_000


def speech_key(text: str, voice: str) -> str:
    """Cache key: SHA-256 over the voice name and the text, NUL-separated."""
    return hashlib.sha256(f"{voice}\0{text}".encode()).hexdigest()


async def render_speech(
    text: str,
    tts_dir: Path,
    *,
    voice: str = "vi",
    timeout_s: float = 30.0,
    espeak: str = "espeak-ng",
) -> tuple[Path, str]:
    """Speak `text` into a WAV file under `tts_dir`; return (path, cache key)."""
    if not text.strip():
        raise ValueError("text to speak is empty")
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"text to speak is {len(text)} characters (max {MAX_TEXT_CHARS})")
    key = speech_key(text, voice)
    dst = tts_dir / f"{key}.wav"
    if dst.exists():
        return dst, key
    tts_dir.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    try:
        # Text goes on stdin, never on the command line (no option injection via "-…").
        proc = await asyncio.create_subprocess_exec(
            espeak, "-v", voice, "-w", str(tmp), "--stdin",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
    except OSError as e:
        raise DecodeError("tts_failed", f"cannot run {espeak}: {e}") from e
    try:
        try:
            async with asyncio.timeout(timeout_s):
                _, err = await proc.communicate(text.encode())
        except (TimeoutError, asyncio.CancelledError) as e:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
            if isinstance(e, asyncio.CancelledError):
                raise
            raise DecodeError("tts_timeout", f"{espeak} killed after {timeout_s:g} s") from None
        if proc.returncode != 0 or not tmp.exists() or tmp.stat().st_size <= 44:
            detail = err.decode("utf-8", "replace").strip()
            raise DecodeError("tts_failed", f"{espeak} -v {voice} exit {proc.returncode}: {detail}")
        await asyncio.to_thread(_commit, tmp, dst)
        return dst, key
    finally:
        tmp.unlink(missing_ok=True)
