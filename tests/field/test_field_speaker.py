"""`tcs-agent test speaker` without a running agent plays the tone on the real output
(a PulseAudio null sink, recorded at its monitor), and `doctor` finds that output."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from support.agentproc import TrustKey, agent_config, run_cli
from support.pulse import PulseRig, pulse  # noqa: F401  (fixture)


def test_speaker_test_direct_is_heard(tmp_path: Path, broker: Any, pulse: PulseRig) -> None:  # noqa: F811
    cfg = agent_config(tmp_path / "dev", broker, "dev-0001", ["vn-48"], [TrustKey("k")])
    cfg.write_text(cfg.read_text().replace('output = "none"', 'output = "pulse"'))
    assert run_cli("enroll", "-c", str(cfg)).returncode == 0
    pulse.recorder.start()
    before = time.time()
    out = run_cli("test", "speaker", "-c", str(cfg), timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "✓ speaker directly" in out.stdout
    pulse.recorder.wait_silence_after(time.time())
    assert pulse.recorder.first_audible(after=before) is not None

    # doctor (a fresh process: PortAudio lists devices once per process) finds the output.
    doc = json.loads(run_cli("doctor", "-c", str(cfg), "--json").stdout)
    audio = next(c for c in doc["checks"] if c["id"] == "audio")
    assert audio["ok"], audio


def test_speaker_test_through_running_agent(
    tmp_path: Path,
    broker: Any,
    pulse: PulseRig,  # noqa: F811
) -> None:
    from support.agentproc import AgentProc, Province

    key = TrustKey("k")
    agent = AgentProc.create(tmp_path / "a", broker, "dev-0001", ["vn-48"], [key])
    agent.config.write_text(agent.config.read_text().replace('output = "none"', 'output = "pulse"'))
    province = Province(broker, key)
    with agent:
        province.wait_for(lambda m: m.topic.endswith("/state") and m.json()["online"], 20)
        pulse.recorder.start()
        before = time.time()
        out = run_cli("test", "speaker", "-c", str(agent.config), timeout=60)
        assert out.returncode == 0, out.stdout + out.stderr + agent.output()
        assert "through the running agent" in out.stdout
        pulse.recorder.wait_silence_after(time.time())
        assert pulse.recorder.first_audible(after=before) is not None
        agent.stop()
    province.close()
