"""Real local stream servers for the live relay tests, and checks of what was heard.

    stream = ToneStream()                      # endless MP3 'radio' over HTTP
    stream = ToneStream(icy=True)              # answers like Icecast (ICY metadata)
    stream = ToneStream(tls=make_stream_tls(tmp_path))   # HTTPS with a test CA
    stream.kill(); stream.restart()            # upstream dies / comes back on the same port
    hls = HlsStream(tmp_path)                  # ffmpeg -re writing a live .m3u8 playlist

Every server is paced like a real stream (a little faster than real time, as a
server filling a player's buffer does), so what VLC plays is what a village would hear.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import shutil
import socketserver
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support.playout import dominant_hz, proofs
from support.pulse import RATE, PulseRig

TONE_HZ = 440.0
CHUNK = 2000  # bytes per write: 64 kbit/s CBR is 8000 B/s, sent at 1.25× real time
PACE_S = 0.2
ICY_METAINT = 4000  # audio bytes between two ICY metadata blocks (Icecast uses 16000)


def tone_mp3(seconds: float = 40.0, hz: float = TONE_HZ) -> bytes:
    """A 64 kbit/s CBR mono MP3 of a pure tone. Long, because where a loop of it joins
    the encoder's padding is a click: a 40 s file streamed at 1.25× real time joins
    only after 32 s, past any test's listening (the spectrum checks would hear it)."""
    t = np.arange(round(seconds * RATE)) / RATE
    pcm = (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2")
    cmd = ["lame", "-r", "-s", "48", "-m", "m", "--bitwidth", "16", "--signed",
           "--little-endian", "--cbr", "-b", "64", "--silent", "-", "-"]  # fmt: skip
    return subprocess.run(cmd, input=pcm.tobytes(), capture_output=True, check=True).stdout


# ---- TLS material -------------------------------------------------------------------


@dataclass(frozen=True)
class StreamTls:
    ca: Path  # the province's own CA certificate (PEM), what `[audio] live_ca_file` names
    chain: Path  # server certificate + CA
    key: Path

    def context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.chain, self.key)
        return ctx


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_stream_tls(folder: Path, ca_name: str = "So TTTT test CA") -> StreamTls:
    """A CA (CA:TRUE, as gnutls requires of an issuer) and a server certificate for
    127.0.0.1 signed by it, as PEM files in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(ca_name))
        .issuer_name(_name(ca_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(_name(ca_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    paths = StreamTls(folder / "stream-ca.pem", folder / "stream.crt", folder / "stream.key")
    paths.ca.write_bytes(ca.public_bytes(pem))
    paths.chain.write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
    paths.key.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


# ---- the MP3 'radio' -----------------------------------------------------------------


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True  # restart() binds the same port again at once


class ToneStream:
    """An endless MP3 'radio' on a free port. `kill()` drops every listener and the
    listening socket, as a dead upstream does; `restart()` listens again on the same port.

    `icy=True` answers like Icecast 2: `icy-*` headers always, and when the client asks
    (`Icy-MetaData: 1`) an `icy-metaint` header and a metadata block (a length byte,
    then `StreamTitle='…';` padded to 16-byte units) after every ICY_METAINT audio
    bytes. `tls` serves HTTPS with that certificate. `connections` counts GETs,
    `metadata_blocks` the blocks sent."""

    def __init__(self, *, icy: bool = False, tls: StreamTls | None = None) -> None:
        self.mp3 = tone_mp3()
        self.icy = icy
        self.tls = tls
        self.connections = 0
        self.metadata_blocks = 0
        self.dead = threading.Event()
        self._lock = threading.Lock()
        self._start(0)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/radio.mp3"

    def _start(self, port: int) -> None:
        self.dead = threading.Event()
        self.server = _Server(("127.0.0.1", port), self._handler(self.dead))
        if self.tls is not None:
            self.server.socket = self.tls.context().wrap_socket(
                self.server.socket, server_side=True
            )
        self.port: int = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _handler(self, dead: threading.Event) -> type[http.server.BaseHTTPRequestHandler]:
        stream = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with stream._lock:
                    stream.connections += 1
                meta = stream.icy and self.headers.get("Icy-MetaData", "").strip() == "1"
                self.send_response(200)
                self.send_header("Content-Type", "audio/mpeg")
                if stream.icy:
                    self.send_header("icy-name", "Dai phat thanh xa")
                    self.send_header("icy-br", "64")
                    if meta:
                        self.send_header("icy-metaint", str(ICY_METAINT))
                self.end_headers()
                try:
                    stream._send(self.wfile, dead, meta)
                except OSError:
                    return

            def log_message(self, *_a: Any) -> None:
                pass

        return Handler

    def _send(self, out: Any, dead: threading.Event, meta: bool) -> None:
        i = 0  # position in the MP3 loop
        since_meta = 0  # audio bytes since the last metadata block
        while not dead.is_set():
            buf = bytearray()
            want = CHUNK
            while want:
                n = min(want, len(self.mp3) - i, ICY_METAINT - since_meta if meta else want)
                buf += self.mp3[i : i + n]
                i, want, since_meta = (i + n) % len(self.mp3), want - n, since_meta + n
                if meta and since_meta == ICY_METAINT:
                    buf += self._metadata_block()
                    since_meta = 0
            out.write(bytes(buf))
            time.sleep(PACE_S)

    def _metadata_block(self) -> bytes:
        with self._lock:
            self.metadata_blocks += 1
            n = self.metadata_blocks
        # Loud, varied bytes: if they reached the decoder they would be heard.
        text = f"StreamTitle='Ban tin so {n} - {'#~' * (n % 7 + 3)}';".encode()
        units = (len(text) + 15) // 16
        return bytes([units]) + text.ljust(16 * units, b"\0")

    def kill(self) -> None:
        self.dead.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def restart(self) -> None:
        self._start(self.port)


# ---- HLS -----------------------------------------------------------------------------


class HlsStream:
    """A live HLS channel: ffmpeg encodes the tone in real time (`-re`) into 1 s AAC
    segments and a sliding .m3u8 playlist (no #EXT-X-ENDLIST), served over HTTP."""

    def __init__(self, folder: Path, hz: float = TONE_HZ) -> None:
        self.dir = folder / "hls"
        self.dir.mkdir(parents=True)
        # 0.375 ≈ 0.3 × 1.25: ffmpeg's sine source is 1/8 full scale.
        cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-re",
               "-f", "lavfi", "-i", f"sine=frequency={hz:g}:sample_rate=48000",
               "-af", "volume=2.4", "-ac", "1", "-c:a", "aac", "-b:a", "64k",
               "-f", "hls", "-hls_time", "1", "-hls_list_size", "6",
               "-hls_flags", "delete_segments+temp_file",
               str(self.dir / "live.m3u8")]  # fmt: skip
        self.ffmpeg = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
        handler = partial(_QuietFiles, directory=str(self.dir))
        self.server = _Server(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/live.m3u8"

    def wait_segments(self, n: int = 3, timeout: float = 15) -> None:
        """Until the playlist lists `n` segments (a player starts a few from the end)."""
        deadline = time.monotonic() + timeout
        playlist = self.dir / "live.m3u8"
        while time.monotonic() < deadline:
            if playlist.exists() and playlist.read_text().count("#EXTINF") >= n:
                return
            if self.ffmpeg.poll() is not None:
                raise RuntimeError(f"ffmpeg exited with {self.ffmpeg.returncode}")
            time.sleep(0.1)
        raise TimeoutError("ffmpeg wrote no HLS playlist")

    def close(self) -> None:
        self.ffmpeg.terminate()
        try:
            self.ffmpeg.wait(5)
        except subprocess.TimeoutExpired:
            self.ffmpeg.kill()
            self.ffmpeg.wait(5)
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
        shutil.rmtree(self.dir, ignore_errors=True)


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *_a: Any) -> None:
        pass


# ---- what was heard --------------------------------------------------------------------


def wait_proofs(agent: Any, province: Any, session_id: str, n: int) -> list[dict[str, Any]]:
    """The verified proofs of `session_id`, once there are at least `n`."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = [p for p in proofs(agent, province) if p.get("session_id") == session_id]
        if len(got) >= n:
            return got
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} proofs for {session_id}")


def samples(pulse: PulseRig, since: float, until: float) -> npt.NDArray[np.float32]:
    rec = pulse.recorder
    x: npt.NDArray[np.float32] = rec.samples[rec.index_of(since) : rec.index_of(until)]
    return x


def hz_around(pulse: PulseRig, wall: float, span: float = 0.5) -> float:
    """Dominant frequency heard in [wall - span, wall + span]."""
    return dominant_hz(samples(pulse, wall - span, wall + span))


def rms_db(pulse: PulseRig, since: float, until: float) -> float:
    return rms_db_of(samples(pulse, since, until))


def tone_purity(x: npt.NDArray[np.float32], hz: float = TONE_HZ) -> float:
    """Share of the energy of `x` within ±20 Hz of `hz` (a clean tone ≈ 1; clicks,
    bursts of garbage decoded as audio, or another signal pull it down)."""
    spec = np.abs(np.fft.rfft(x.astype(np.float64) * np.hanning(len(x)))) ** 2
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    return float(spec[np.abs(f - hz) <= 20].sum() / (spec.sum() + 1e-30))


def wait_heard_hz(pulse: PulseRig, hz: float, timeout: float, tol: float = 5.0) -> float:
    """Wall time by which `hz` has sounded steadily for 0.5 s (every 50 ms of it loud:
    VLC often starts with a short blip, then a gap, before the stream flows)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = time.time()
        x = samples(pulse, now - 0.6, now - 0.1)
        if len(x) < RATE // 2 or abs(dominant_hz(x) - hz) >= tol:
            continue
        blocks = x[: len(x) // 2400 * 2400].reshape(-1, 2400)
        if min(rms_db_of(b) for b in blocks) > -40:
            return now
    raise AssertionError(f"{hz:g} Hz was not heard steadily within {timeout:g} s")


def rms_db_of(x: npt.NDArray[np.float32]) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(x.astype(np.float64)))) + 1e-9))


@pytest.fixture
def stream() -> Iterator[ToneStream]:
    """An endless local tone stream; the test is skipped where libVLC cannot run."""
    from playback.live import vlc_unavailable

    if vlc_unavailable():
        pytest.skip(f"libVLC unusable here: {vlc_unavailable()}")
    s = ToneStream()
    try:
        yield s
    finally:
        if not s.dead.is_set():
            s.kill()
