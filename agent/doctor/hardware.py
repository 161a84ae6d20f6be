"""Checks of what the agent drives: audio output, display, modem, amplifier switch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from agent.doctor.model import Check, Environment, LooseConfig, M


def _portaudio_devices() -> tuple[list[dict[str, Any]], int | None]:
    import sounddevice as sd

    devices = [dict(d) for d in sd.query_devices()]
    default = sd.default.device[1]
    return devices, (int(default) if default is not None and default >= 0 else None)


def check_audio(loose: LooseConfig, env: Environment) -> Check | None:
    output = loose.get("audio", "output", "default")
    if output.strip().lower() == "none":
        return None
    from playback.devices import DeviceNotFound, find_device

    try:
        devices, default = (env.audio_devices or _portaudio_devices)()
    except Exception as e:  # PortAudio missing or broken
        return Check(
            "audio",
            False,
            M("cannot list audio devices: {error}", error=e),
            M("install libportaudio2 (scripts/install.sh does)"),
        )
    try:
        _, name = find_device(output, devices, default_index=default)
    except DeviceNotFound as e:
        return Check(
            "audio",
            False,
            M("{error}", error=e),
            M("plug in the sound card (check `aplay -l`) or set [audio] output to a listed name"),
        )
    return Check("audio", True, M("output {output!r} is {name!r}", output=output, name=name))


def check_display(loose: LooseConfig, env: Environment) -> Check | None:
    kind = loose.get("display", "kind", "none")
    if kind == "none":
        return None
    from agent.probes.display import display_present

    path = str(loose.file("display", "path") or "")
    present = display_present(kind, path, dev_root=env.dev_root, sys_root=env.sys_root)
    if present:
        return Check("display", True, M("{kind} {path} present", kind=kind, path=path))
    if kind == "framebuffer":
        return Check(
            "display",
            False,
            M("framebuffer {path} is missing or not writable", path=path or M("(no path)")),
            M(
                "check the screen's cable and its overlay in /boot/firmware/config.txt, or "
                "correct [display] path (ls /dev/fb*)"
            ),
        )
    if kind == "max7219":
        return Check(
            "display",
            False,
            M("no SPI device (/dev/spidev*) for the LED matrix"),
            M("enable SPI: raspi-config nonint do_spi 0, then reboot"),
        )
    return Check(
        "display",
        False,
        M("display {kind} {path} not usable", kind=kind, path=path),
        M("create the folder for the agent's user or correct [display] path"),
    )


def check_modem(loose: LooseConfig, env: Environment, agent: dict[str, Any] | None) -> Check | None:
    usb_id = loose.get("modem", "usb_id", "")
    if not usb_id:
        return None
    from drivers.modem import Modem, UsbId, find_port

    try:
        usb = UsbId.parse(usb_id, loose.get("modem", "interface", 2, int))
    except ValueError as e:
        return Check("modem", False, M("{error}", error=e), M("fix [modem] usb_id (see `lsusb`)"))
    if agent is not None:
        modem = ((agent.get("health") or {}).get("modem")) or None
        if modem is None:
            return Check(
                "modem",
                False,
                M("the running agent gets no answer from the modem"),
                M("check the modem is plugged in; see `tcs-agent logs` for modem lines"),
            )
        return Check("modem", True, M("the running agent talks to the modem"))
    port = find_port(usb, sys_root=env.sys_root, dev_root=env.dev_root)
    if port is None:
        return Check(
            "modem",
            False,
            M(
                "no USB device {usb_id} with a serial port on interface {n}",
                usb_id=usb_id,
                n=usb.interface,
            ),
            M("plug the modem in (check `lsusb`), or correct [modem] usb_id / interface"),
        )
    m = Modem(
        usb,
        sys_root=env.sys_root,
        dev_root=env.dev_root,
        timeout_s=min(env.timeout_s, 2.0),
        reset_after=100,
    )
    try:
        reading = m.probe()
    finally:
        m.close()
    if reading is None:
        return Check(
            "modem",
            False,
            M("the modem at {port} does not answer AT commands", port=port),
            M(
                "power-cycle the modem; make sure no other program (ModemManager) holds {port}",
                port=port,
            ),
        )
    if not reading.registered:
        return Check(
            "modem",
            False,
            M("not registered on a network (signal {rssi} dBm)", rssi=reading.rssi_dbm),
            M("check the SIM card and the antenna"),
        )
    return Check(
        "modem", True, M("{op}, signal {rssi} dBm", op=reading.operator, rssi=reading.rssi_dbm)
    )


def check_amplifier(loose: LooseConfig, env: Environment) -> Check | None:
    """The amplifier's switch ([amplifier]), when one is configured."""
    if loose.get("amplifier", "kind", "none") == "none":
        return None
    return _check_relay(loose, "amplifier", "amplifier")


def check_screen_relay(loose: LooseConfig, env: Environment) -> Check | None:
    """The screen's power relay ([display.relay]), when the screen is switched by one."""
    if loose.get("display", "power_control", "none") != "relay":
        return None
    return _check_relay(loose, "screen_relay", "display.relay")


def _check_relay(loose: LooseConfig, check_id: str, section: str) -> Check:
    """A relay board on a serial port, or a GPIO line, as `section` configures it."""
    kind = loose.get(section, "kind", "none")
    if kind == "serial-relay":
        port = loose.get(section, "port", "")
        if not port or not Path(port).exists():
            return Check(
                check_id,
                False,
                M("relay port {port} does not exist", port=port or M("(not set)")),
                M(
                    "plug in the relay board and set [{section}] port (ls /dev/serial/by-id/)",
                    section=section,
                ),
            )
        if not os.access(port, os.R_OK | os.W_OK):
            return Check(
                check_id,
                False,
                M("relay port {port} is not writable", port=port),
                M("add the agent's user to the dialout group"),
            )
        return Check(check_id, True, M("relay board at {port}", port=port))
    if kind == "gpio":
        chip = loose.get(section, "chip", "/dev/gpiochip0")
        if not Path(chip).exists():
            return Check(
                check_id,
                False,
                M("GPIO chip {chip} does not exist", chip=chip),
                M("correct [{section}] chip (ls /dev/gpiochip*)", section=section),
            )
        try:
            import gpiod  # noqa: F401
        except ImportError:
            return Check(
                check_id,
                False,
                M("libgpiod's Python bindings are missing"),
                M("pip install 'gpiod>=2' in the agent's venv"),
            )
        return Check(
            check_id,
            True,
            M("GPIO {chip} line {line}", chip=chip, line=loose.get(section, "line", -1, int)),
        )
    return Check(
        check_id,
        False,
        M("unknown [{section}] kind {kind!r}", section=section, kind=kind),
        M("use none, serial-relay or gpio"),
    )
