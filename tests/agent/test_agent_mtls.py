"""The agent over mutual TLS: a per-device client certificate instead of a password."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from support.agentproc import AgentProc, Province, TrustKey, agent_config, run_cli

DEV = "dev-0001"


def test_agent_connects_with_its_client_certificate(tmp_path: Path, broker: Any) -> None:
    key = TrustKey("vn-48-emergency")
    cfg = agent_config(tmp_path, broker, DEV, ["vn-48"], [key])
    cert, pem = broker.client_cert(DEV)
    text = cfg.read_text()
    text = re.sub(r'url = "mqtts://[^"]+"', f'url = "{broker.mtls_url}"', text)
    text = re.sub(r'password_file = "[^"]+"\n', "", text)
    text = re.sub(r'username = "[^"]+"\n', "", text)
    text = text.replace("keepalive_s", f'cert_file = "{cert}"\nkey_file = "{pem}"\nkeepalive_s', 1)
    cfg.write_text(text)
    assert run_cli("enroll", "-c", str(cfg)).returncode == 0
    check = run_cli("config", "check", str(cfg))
    assert check.returncode == 0, check.stdout

    province = Province(broker, key)
    with AgentProc(cfg) as agent:
        province.wait_for(lambda m: m.topic.endswith(f"{DEV}/state") and m.json()["online"], 15)
        jti = province.send(DEV, "volume.set", {"level": 64})
        assert province.wait_ack(jti)["status"] == "accepted"
        assert "connected to" in agent.output()
    province.close()
