"""The local demo: a real Mosquitto with the project's config, the reference console
(`tcs-central`) and one agent (`tcs-agent run`), all on this machine.

It enrolls the device, issues the province's trust key, then sends real signed
commands (and forged ones) and shows what the device answers. Everything it makes
lives in ./run/demo (removed and made anew on each run).

    bash scripts/demo.sh            # installs what is needed, then runs this
    bash scripts/demo.sh --listen   # ... and plays what the agent plays on your speakers
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
DEVICE = "dev-0001"
GROUPS = ["vn-48", "vn-48-490", "vn-48-490-20194"]


def _script(name: str) -> Any:
    """scripts/<name>.py as module `name`: loaded by path so the demo runs from any
    working directory."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m" if sys.stdout.isatty() else f"\n== {text}", flush=True)


def run(
    *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(list(args), capture_output=True, text=True, cwd=REPO, env=env)
    text = (out.stdout + out.stderr).rstrip()
    if text:
        print("   " + text.replace("\n", "\n   "), flush=True)
    if check and out.returncode not in (0,):
        raise SystemExit(f"demo: {' '.join(args[:3])} failed ({out.returncode})")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dir", type=Path, default=REPO / "run" / "demo")
    ap.add_argument(
        "--keep", action="store_true", help="leave broker and agent running; Ctrl-C stops"
    )
    ap.add_argument(
        "--listen",
        action="store_true",
        help="also play what the agent plays on this machine's real speakers, if it has some",
    )
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work: Path = args.dir
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)

    devbroker = _script("devbroker")
    from agent.central.acl import DeviceEntry

    say("1. A local Mosquitto with the project's TLS, password and ACL configuration")
    broker = devbroker.start_broker(
        work / "broker",
        [DeviceEntry(DEVICE, tuple(GROUPS))],
        console_users=("central", "central-watch"),
    )
    print(f"   broker {broker.url} (CA {broker.ca_file})")
    agent_proc: subprocess.Popen[bytes] | None = None
    sound = _script("demo_sound")
    board = _script("demo_board")
    pulse, pulse_note = sound.start_pulse(work / "pulse")
    listen: Any = None
    try:
        if args.listen:
            listen = _listen(pulse, pulse_note, sound.SINK)
        say("2. The province issues its emergency trust key (tcs-central keygen)")
        keys = work / "keys"
        out = run(
            str(BIN / "tcs-central"),
            "keygen",
            "--kid",
            "vn-48-emergency",
            "--out",
            str(keys / "vn-48-emergency.pem"),
            "--commands",
            "*",
        )
        trust_block = out.stdout[out.stdout.index("[[trust]]") :].split("\n\n")[0]

        say("3. The technician configures and enrolls the device (tcs-agent enroll)")
        agent_dir = work / "device"
        agent_dir.mkdir()
        cfg = agent_dir / "agent.toml"
        cfg.write_text(
            f"""[device]
id = "{DEVICE}"
groups = {json.dumps(GROUPS)}
timezone = "Asia/Ho_Chi_Minh"
key_file = "device.key"

[broker]
url = "{broker.url}"
username = "{DEVICE}"
password_file = "{broker.password_file(DEVICE)}"
ca_file = "{broker.ca_file}"
keepalive_s = 60

{trust_block}

[storage]
dir = "state"

[audio]
output = "{"pulse" if pulse is not None else "none"}"
quiet_hours = "22:00-05:00"

{board.board_config(agent_dir / "frames")}
[report]
heartbeat_s = 10

[clock]
# The demo machine's clock may not report NTP sync (containers); trust it here.
trust = "always"
"""
        )
        enrolled = run(str(BIN / "tcs-agent"), "enroll", "-c", str(cfg))
        # In the agent's environment: config check also opens the audio output it names.
        run(str(BIN / "tcs-agent"), "config", "check", str(cfg),
            env=pulse.full_env() if pulse is not None else None)
        devices_block = enrolled.stdout[enrolled.stdout.index("[[device]]") :]
        (work / "devices.toml").write_text(devices_block)
        central = work / "central.toml"
        central.write_text(
            f"""[broker]
url = "{broker.url}"
username = "central"
password_file = "{broker.password_file("central")}"
ca_file = "{broker.ca_file}"

[signing]
kid = "vn-48-emergency"
key_file = "keys/vn-48-emergency.pem"
issuer = "vn-48"

[devices]
file = "devices.toml"
"""
        )

        say("4. The agent starts (tcs-agent run) and announces itself")
        log = (agent_dir / "agent.log").open("wb")
        agent_proc = subprocess.Popen(
            [str(BIN / "tcs-agent"), "run", "-c", str(cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(pulse.full_env() if pulse is not None else os.environ, PYTHONUNBUFFERED="1"),
        )
        time.sleep(1.5)
        console = [str(BIN / "tcs-central"), "-c", str(central)]

        def send(cmd: str, *extra: str, check: bool = True) -> None:
            run(*console, "send", "--device", DEVICE, cmd, "--wait-ack", "8", *extra, check=check)

        say("5. Signed commands from the province, and the device's acks")
        send("status.request")
        send("volume.set", "--set", "level=70")
        schedule = {
            "version": 1,
            "items": [
                {
                    "id": "morning-news",
                    "kind": "audio",
                    "start": "2026-11-24T05:30:00+07:00",
                    "rrule": "FREQ=DAILY",
                    "priority": 20,
                    "resume": "join",
                    "media": [
                        {
                            "url": "https://media.example.vn/ban-tin-sang.mp3",
                            "sha256": "0" * 64,
                            "size": 1024,
                            "type": "audio/mpeg",
                        }
                    ],
                },
                {
                    "id": "late-notice",
                    "kind": "audio",
                    "start": "2026-11-24T23:00:00+07:00",
                    "priority": 30,
                    "media": [
                        {
                            "url": "https://media.example.vn/thong-bao.mp3",
                            "sha256": "1" * 64,
                            "size": 1024,
                            "type": "audio/mpeg",
                        }
                    ],
                },
            ],
        }
        send("schedule.set", "--args", json.dumps(schedule))

        say("6. Forged and replayed commands: each rejected with its reason, nothing acted on")
        for tamper in ("signature", "expired", "alg-none", "hs256", "wrong-aud", "replay"):
            print(f"   -- --tamper {tamper}")
            send("volume.set", "--set", "level=100", "--tamper", tamper, check=False)

        say("7. What the province sees (tcs-central watch) while it asks for a heartbeat")
        # Its own broker user: client id = username, so a second login as `central`
        # would take over the first one's connection.
        watcher = [
            *console,
            "--username",
            "central-watch",
            "--password-file",
            str(broker.password_file("central-watch")),
        ]
        watch = subprocess.Popen(
            [*watcher, "watch", "--duration", "4"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(1.5)
        subprocess.run(
            [*console, "send", "--device", DEVICE, "status.request"], capture_output=True, cwd=REPO
        )
        watched, _ = watch.communicate(timeout=20)
        print("   " + watched.rstrip().replace("\n", "\n   "), flush=True)

        say("8. An emergency alert in Vietnamese, heard at a (null) loudspeaker")
        if pulse is None:
            print(f"   skipped: {pulse_note}", flush=True)
        else:
            print(f"   {pulse_note}", flush=True)
            _sound_scene(sound, pulse, console, watcher)

        say("9. A programme on the speaker, slides on the board, an emergency on both")
        if pulse is None:
            print(f"   skipped: {pulse_note}", flush=True)
        else:
            board.board_scene(sound, pulse, console, agent_dir, agent_dir / "frames", REPO)

        if args.keep:
            say("Running; Ctrl-C stops. Console: " + " ".join(console) + " watch")
            signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        if agent_proc is not None:
            agent_proc.send_signal(signal.SIGTERM)
            try:
                agent_proc.wait(10)
            except subprocess.TimeoutExpired:
                agent_proc.kill()
        broker.stop()
        if listen is not None:
            listen.stop()
        if pulse is not None:
            pulse.stop()
        print(f"\ndemo: logs and files in {work}")
    return 0


def _listen(pulse: Any, pulse_note: str, sink: str) -> Any:
    """`--listen`: route the null sink's monitor to the real speakers (scripts/demo_listen.py),
    or print why not; the demo carries on either way."""
    if pulse is None:
        print(f"   --listen: no sound in this demo ({pulse_note})", flush=True)
        return None
    listen, note = _script("demo_listen").start_listen(
        f"{sink}.monitor", pulse.full_env(), dict(os.environ)
    )
    print(f"   {note}", flush=True)
    return listen


def _sound_scene(sound: Any, pulse: Any, console: list[str], watcher: list[str]) -> None:
    """alert.start with Vietnamese text; record the sink; check the signed proof."""
    watch = sound.ProofWatch([*watcher, "watch", "--json", "--duration", "60"])
    time.sleep(1.5)  # subscribed before the proof can be published
    recording = sound.Recording(pulse)
    try:
        alert = {
            "alert_id": "demo-bao-so-9",
            "text": "Thông báo khẩn cấp: bão số 9 sắp đổ bộ. Bà con hãy vào nơi trú ẩn an toàn.",
            "repeat": 1,
            "volume": 80,
        }
        run(*console, "send", "--device", DEVICE, "alert.start", "--args",
            json.dumps(alert, ensure_ascii=False), "--wait-ack", "40", check=False)  # fmt: skip
        proof = watch.proof("demo-bao-so-9", timeout=10)
        time.sleep(0.5)  # the tail of the sound reaches the recorder
    finally:
        heard = recording.stop()
        watch.stop()
    if proof is not None:
        print(f"   {proof.get('text')}", flush=True)
    print(f"   {sound.summary(heard, proof)}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
