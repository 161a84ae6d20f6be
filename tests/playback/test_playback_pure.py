"""Pure parts of the engine: mixer arithmetic, device matching, clock mapping, amplifier."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.amplifier import AmplifierPower
from playback.clockmap import ClockMap
from playback.devices import DeviceNotFound, find_device
from playback.levels import SILENCE_DBFS, dbfs_from_power, rms_dbfs, volume_to_gain
from playback.mixer import Ended, Mixer, MixVoice, Started
from playback.prepared import Prepared, Segment

RATE = 48000


def ramp_voice(vid: int, n: int, at: float | None, value: int = 1000, **kw: object) -> MixVoice:
    pcm = np.full(n, value, dtype=np.int16)
    return MixVoice(id=vid, segments=[(n, pcm)], gain=1.0, use_master=True, at_wall=at, **kw)  # type: ignore[arg-type]


def test_voice_starts_on_the_exact_sample_of_its_wall_time() -> None:
    m = Mixer(rate=RATE, channels=1)
    dac = 1000.0
    m.add(ramp_voice(1, 4800, at=dac + 0.005 + 7 / RATE))  # 247 frames into the buffer
    out = np.zeros((960, 1), dtype=np.float32)
    ev = m.render(out, dac)
    first = int(np.flatnonzero(out[:, 0])[0])
    assert first == 247
    assert ev == [Started(1, pytest.approx(dac + 247 / RATE))]


def test_voice_due_in_a_later_buffer_waits_and_late_voice_starts_at_once() -> None:
    m = Mixer(rate=RATE, channels=1)
    m.add(ramp_voice(1, 100, at=2000.0))
    out = np.zeros((960, 1), dtype=np.float32)
    assert m.render(out, 1000.0) == [] and not out.any()
    m2 = Mixer(rate=RATE, channels=1)
    m2.add(ramp_voice(2, 100, at=999.0))  # a second late: first frame of this buffer
    ev = m2.render(out, 1000.0)
    assert out[0, 0] != 0 and isinstance(ev[0], Started) and ev[0].first_sample_wall == 1000.0


def test_voice_plays_whole_then_reports_end_time_and_level() -> None:
    m = Mixer(rate=RATE, channels=1, master=0.5)
    m.add(ramp_voice(1, 1500, at=None, value=16384))
    out = np.zeros((960, 1), dtype=np.float32)
    got: list[float] = []
    events = []
    for b in range(3):
        events += m.render(out, 10.0 + b * 960 / RATE)
        got.extend(out[:, 0].tolist())
    ends = [e for e in events if isinstance(e, Ended)]
    assert len(ends) == 1 and ends[0].outcome == "completed" and ends[0].frames_sent == 1500
    assert ends[0].ended_wall == pytest.approx(10.0 + 1500 / RATE)
    assert np.count_nonzero(got) == 1500 and got[0] == pytest.approx(0.25)  # 0.5 * master 0.5
    assert dbfs_from_power(ends[0].sum_sq, ends[0].count) == pytest.approx(20 * np.log10(0.25))


def test_new_voice_preempts_at_its_first_sample_with_a_short_fade() -> None:
    m = Mixer(rate=RATE, channels=1, fade_frames=240)
    m.add(ramp_voice(1, 48000, at=None, value=10000))
    out = np.zeros((960, 1), dtype=np.float32)
    m.render(out, 0.0)
    m.add(ramp_voice(2, 48000, at=960 / RATE + 100 / RATE, value=-20000))
    ev = m.render(out, 960 / RATE)
    a = 10000 / 32768
    assert out[99, 0] == pytest.approx(a)  # old voice untouched before the switch
    assert out[100, 0] == pytest.approx(a - 20000 / 32768, abs=1e-6)
    assert out[100 + 240, 0] == pytest.approx(-20000 / 32768)  # fade done in 5 ms
    ended = [e for e in ev if isinstance(e, Ended)]
    assert ended[0].id == 1 and ended[0].outcome == "preempted"
    assert ended[0].ended_wall == pytest.approx((960 + 340) / RATE)


def test_stop_fades_out_within_one_buffer_and_offset_skips_ahead() -> None:
    m = Mixer(rate=RATE, channels=1)
    pcm = np.arange(48000, dtype=np.int16)
    m.add(MixVoice(1, [(48000, pcm)], 1.0, True, None, offset_frames=30000))
    out = np.zeros((960, 1), dtype=np.float32)
    m.render(out, 0.0)
    assert out[0, 0] == pytest.approx(30000 / 32768)  # joined 30000 frames in
    assert m.stop(1, "cancelled") == []
    ev = m.render(out, 0.02)
    assert not out[240:].any()
    assert [e.outcome for e in ev if isinstance(e, Ended)] == ["cancelled"]


def test_segments_and_silence_play_gaplessly_in_order() -> None:
    m = Mixer(rate=RATE, channels=2)
    a = np.full(200, 3000, dtype=np.int16)  # 100 stereo frames
    b = np.full(100, -3000, dtype=np.int16)  # 50 stereo frames
    m.add(MixVoice(1, [(100, a), (30, None), (50, b)], 1.0, False, None))
    out = np.zeros((256, 2), dtype=np.float32)
    ev = m.render(out, 0.0)
    assert (out[:100] > 0).all() and not out[100:130].any() and (out[130:180] < 0).all()
    assert [e.frames_sent for e in ev if isinstance(e, Ended)] == [180]


DEVICES = [
    {"name": "bcm2835 Headphones: - (hw:0,0)", "max_output_channels": 2, "max_input_channels": 0},
    {"name": "USB Audio Device: - (hw:1,0)", "max_output_channels": 2, "max_input_channels": 1},
    {"name": "pulse", "max_output_channels": 32, "max_input_channels": 32},
    {"name": "default", "max_output_channels": 32, "max_input_channels": 32},
]


def test_device_found_by_case_insensitive_name_and_errors_list_what_exists() -> None:
    assert find_device("usb audio", DEVICES, default_index=3) == (1, DEVICES[1]["name"])
    assert find_device("PULSE", DEVICES, default_index=3) == (2, "pulse")
    assert find_device("default", DEVICES, default_index=3) == (3, "default")
    assert find_device("usb", DEVICES, default_index=3, kind="input")[0] == 1
    with pytest.raises(DeviceNotFound, match="no output device matches 'hw:2'"):
        find_device("hw:2", DEVICES[:1], default_index=None)
    with pytest.raises(DeviceNotFound, match="have: 'USB Audio"):
        find_device("headphones", DEVICES, default_index=3, kind="input")


def test_clock_map_takes_the_least_delayed_observation() -> None:
    c = ClockMap(window=4)
    for delay in (0.004, 0.001, 0.003):
        c.observe(100.0 + delay, 5.0)
    assert c.to_wall(6.0) == pytest.approx(101.001)
    c.observe(99.9995, 5.0)  # wall clock stepped back: followed at once (smaller offset)
    assert c.to_wall(6.0) == pytest.approx(100.9995)
    c.observe(110.002, 5.0)  # stepped forward 10 s: followed at the next callback
    assert c.to_wall(6.0) == pytest.approx(111.002)
    c.observe(110.001, 5.0)  # and refined by the least delayed observation after it
    assert c.to_wall(6.0) == pytest.approx(111.001)


def test_clock_map_follows_a_forward_ntp_step_within_one_callback() -> None:
    m = ClockMap()
    for k in range(200):  # 20 ms callbacks, wall = stream + 1000
        m.observe(1000.0 + k * 0.02 + 0.001, k * 0.02)
    m.observe(1120.0 + 200 * 0.02 + 0.001, 200 * 0.02)  # NTP steps the wall clock +120 s
    assert m.to_wall(201 * 0.02) == pytest.approx(1120.0 + 201 * 0.02 + 0.001)


def test_levels_and_volume_curve() -> None:
    t = np.arange(48000) / 48000
    assert rms_dbfs(np.sin(2 * np.pi * 1000 * t)) == pytest.approx(-3.01, abs=0.01)
    assert rms_dbfs(np.zeros(10)) == SILENCE_DBFS
    assert volume_to_gain(100) == 1.0 and volume_to_gain(50) == 0.25 and volume_to_gain(0) == 0
    with pytest.raises(ValueError, match="101"):
        volume_to_gain(101)


def test_prepared_joins_and_rejects_mismatched_formats(tmp_path: object) -> None:
    p = Prepared((Segment(480),), 48000, 1)
    q = p.then(p.silence(0.5), p)
    assert q.frames == 480 + 24000 + 480 and q.duration_s == pytest.approx(0.52)
    with pytest.raises(ValueError, match="22050 Hz"):
        p.then(Prepared((Segment(1),), 22050, 1))


class RecordingAmp:
    def __init__(self) -> None:
        self.is_on = False
        self.calls: list[str] = []

    def on(self) -> None:
        self.is_on = True
        self.calls.append("on")

    def off(self) -> None:
        self.is_on = False
        self.calls.append("off")


def test_amplifier_on_lead_before_sound_and_off_after_idle() -> None:
    amp = RecordingAmp()
    pw = AmplifierPower(amp, lead_s=2.0, idle_s=30.0)
    pw.update(100.0, playing=False, next_start=105.0)
    assert amp.calls == []  # 5 s ahead: not yet
    pw.update(103.0, playing=False, next_start=105.0)
    assert amp.calls == ["on"]
    assert pw.sound_may_start(103.5) == 105.0  # lead honoured
    pw.update(105.0, playing=True, next_start=None)
    pw.update(200.0, playing=True, next_start=None)
    pw.update(229.0, playing=False, next_start=None)
    assert amp.calls == ["on"]  # quiet for 29 s only
    pw.update(230.0, playing=False, next_start=None)
    assert amp.calls == ["on", "off"]
    # Sound asked for now with the amplifier off waits for the lead.
    assert pw.sound_may_start(300.0) == 302.0
    with pytest.raises(ValueError, match="lead_s=-1"):
        AmplifierPower(amp, lead_s=-1, idle_s=1)
