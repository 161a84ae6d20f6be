"""A real agent with sound at a private PulseAudio null sink, and proof checks.

agent, province, _ = sound_agent(tmp_path, broker, quiet="22:00-05:00")
ref = place_in_cache(agent, write_wav(tmp_path / "news.wav", programme_signal(2.0)))
with recording(agent, province, pulse) as rec:
    set_schedule(province, [item_at("news", ref, time.time() + 4)])
"""

from __future__ import annotations

import json
import wave
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from support.agentproc import AgentProc, Msg, Province, TrustKey
from support.pulse import PulseRig, Recorder

from agent import jws
from agent.cache.store import MediaCache
from agent.model import MediaRef

DEVICE = "dev-0001"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")


def sound_agent(
    workdir: Path, broker: Any, *, quiet: str = "", extra_audio: str = "",
    live_require_tls: bool = False, more_keys: Sequence[TrustKey] = (), **config: Any,
) -> tuple[AgentProc, Province, TrustKey]:
    """Enrol an agent whose `[audio] output` is the null sink ("pulse"); not started.
    The test streams are plain http, so `live_require_tls` is off unless asked for.
    `more_keys` are trusted besides the province's; `config` goes to agent_config."""
    key = TrustKey("vn-48-emergency")
    agent = AgentProc.create(workdir, broker, DEVICE, ["vn-48"], [key, *more_keys], **config)
    text = agent.config.read_text()
    audio = 'output = "pulse"\n'  # defaults otherwise: no amplifier, so no lead
    audio += f"live_require_tls = {'true' if live_require_tls else 'false'}\n"
    if quiet:
        audio += f'quiet_hours = "{quiet}"\n'
    assert 'output = "none"' in text
    agent.config.write_text(text.replace('output = "none"\n', audio + extra_audio))
    return agent, Province(broker, key), key


def wait_online(province: Province, timeout: float = 30) -> None:
    """The agent has connected and subscribed (its first heartbeat follows the subscribe)."""
    province.wait_for(lambda m: m.topic == f"tcs/v1/dev/{DEVICE}/hb", timeout)


@contextmanager
def recording(agent: AgentProc, province: Province, pulse: PulseRig) -> Iterator[Recorder]:
    """Record the sink from before the agent starts (nothing it plays is missed), run it
    until it is online, and stop the recording after the agent has stopped."""
    rec = pulse.recorder
    rec.start()
    with agent:
        wait_online(province)
        yield rec
    rec.stop()


def item_at(item_id: str, ref: MediaRef, at: float, **kw: Any) -> dict[str, Any]:
    """A schedule item playing `ref` once at wall time `at` (60 s window, priority 20)."""
    return {
        "id": item_id, "kind": "audio", "media": [ref_json(ref)],
        "start": datetime.fromtimestamp(at, TZ).isoformat(), "window_s": 60, "priority": 20,
        **kw,
    }  # fmt: skip


def set_schedule(province: Province, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Send the device `schedule.set` version 1 with `items`; its ack, which must be
    `accepted`."""
    jti = province.send(DEVICE, "schedule.set", {"version": 1, "items": items})
    ack = province.wait_ack(jti, timeout=10)
    assert ack["status"] == "accepted", ack
    return ack


def place_in_cache(agent: AgentProc, src: Path, mime: str = "audio/wav") -> MediaRef:
    """Put `src` into the agent's media cache through the cache's own API."""
    import hashlib
    import shutil

    body = src.read_bytes()
    sha = hashlib.sha256(body).hexdigest()
    cache = MediaCache(
        agent.config.parent / "state" / "cache", 64 * 1024 * 1024, emit_event=_no_event
    )
    cache.ensure_dirs()
    tmp = cache.partial_dir / f"{sha}.test"
    shutil.copyfile(src, tmp)
    cache.publish(sha, tmp)
    return MediaRef(url="http://127.0.0.1:9/unused", sha256=sha, size=len(body), type=mime)


def ref_json(ref: MediaRef) -> dict[str, Any]:
    return {"url": ref.url, "sha256": ref.sha256, "size": ref.size, "type": ref.type}


def _no_event(level: str, code: str, detail: str) -> None:
    raise AssertionError(f"unexpected cache event {code}: {detail}")


def verified_proof(agent: AgentProc, msg: Msg) -> dict[str, Any]:
    """Verify a proof JWS with the device's public key; return its record."""
    device_key = jws.load_private_key(agent.config.parent / "device.key")
    h, p, s = msg.payload.split(b".")
    header = json.loads(jws.b64url_decode(h))
    assert header == {"alg": "EdDSA", "typ": "JWT", "kid": DEVICE}
    assert jws.verify_ed25519(jws.public_raw(device_key), h + b"." + p, jws.b64url_decode(s))
    record: dict[str, Any] = json.loads(jws.b64url_decode(p))
    return record


def proofs(agent: AgentProc, province: Province) -> list[dict[str, Any]]:
    return [
        verified_proof(agent, m)
        for m in list(province.messages)
        if m.topic == f"tcs/v1/dev/{DEVICE}/proof"
    ]


def read_wav(path: Path) -> npt.NDArray[np.float32]:
    with wave.open(str(path)) as w:
        raw = w.readframes(w.getnframes())
    return (np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0).astype(np.float32)


def audible_spans(
    x: npt.NDArray[np.float32],
    rate: int = 48000,
    threshold_db: float = -45.0,
    min_gap_s: float = 0.3,
) -> list[tuple[float, float]]:
    """(start_s, end_s) of sound, 10 ms resolution; gaps shorter than min_gap_s are bridged."""
    w = rate // 100
    n = len(x) // w
    env = np.sqrt(np.mean(np.square(x[: n * w].astype(np.float64)).reshape(n, w), axis=1))
    loud = env > 10 ** (threshold_db / 20)
    spans: list[tuple[float, float]] = []
    i = 0
    while i < n:
        if loud[i]:
            j = i
            while j < n and loud[j]:
                j += 1
            s, e = i / 100, j / 100
            if spans and s - spans[-1][1] < min_gap_s:
                spans[-1] = (spans[-1][0], e)
            else:
                spans.append((s, e))
            i = j
        else:
            i += 1
    return spans


def dominant_hz(x: npt.NDArray[np.float32], rate: int = 48000) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * rate / len(x))
