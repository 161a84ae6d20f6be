"""A Pi without an RTC boots with a wrong clock: it must still reach the province.

The broker's certificate here is not valid until next month, as every certificate
looks to a device that booted in 1970 or on a weeks-old fake-hwclock time. With an
untrusted clock the agent connects (chain and name are still checked, only the
dates are not); with a trusted clock the same certificate is refused.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from support.agentproc import AgentProc, Province, TrustKey, agent_config, run_cli
from support.timing import poll

DEV = "dev-0001"


def reissue_server_cert(
    broker: Any, *, starts_in: dt.timedelta, ca_key: Path | None = None
) -> None:
    """Replace the broker's server certificate by one valid only from `starts_in` on,
    signed by the broker's own CA (or by the key at `ca_key`), then restart it."""
    workdir = Path(broker.workdir)
    old = x509.load_pem_x509_certificate((workdir / "server.pem").read_bytes())
    ca = x509.load_pem_x509_certificate(Path(broker.ca_file).read_bytes())
    signer = serialization.load_pem_private_key(
        (ca_key or workdir / "ca.key").read_bytes(), password=None
    )
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(old.subject)
        .issuer_name(ca.subject)
        .public_key(old.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + starts_in)
        .not_valid_after(now + starts_in + dt.timedelta(days=365))
    )
    for ext in old.extensions:
        builder = builder.add_extension(ext.value, ext.critical)
    cert = builder.sign(signer, hashes.SHA256())  # type: ignore[arg-type]
    (workdir / "server.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    broker.restart()


def online(province: Province, timeout: float) -> bool:
    try:
        province.wait_for(
            lambda m: m.topic.endswith(f"{DEV}/state") and m.json()["online"], timeout
        )
    except AssertionError:
        return False
    return True


def refused_twice(agent: AgentProc) -> str:
    """The agent's log once its second attempt to connect has failed too: the positive
    event after which a connection, had the first attempt made one, would be in the log."""
    poll(lambda: "attempt 2 failed" in agent.output(), timeout=60)
    return agent.output()


def make_agent(tmp_path: Path, broker: Any, clock_trust: str) -> tuple[Path, Province]:
    key = TrustKey("vn-48-emergency")
    cfg = agent_config(tmp_path, broker, DEV, ["vn-48"], [key], clock_trust=clock_trust)
    assert run_cli("enroll", "-c", str(cfg)).returncode == 0
    return cfg, Province(broker, key, check_cert_dates=False)


def test_untrusted_clock_connects_despite_certificate_dates(tmp_path: Path, broker: Any) -> None:
    reissue_server_cert(broker, starts_in=dt.timedelta(days=30))
    cfg, province = make_agent(tmp_path, broker, "never")
    with AgentProc(cfg) as agent:
        assert online(province, 15), agent.output()
        jti = province.send(DEV, "volume.set", {"level": 40})
        assert province.wait_ack(jti)["status"] == "accepted"
        assert "certificate dates are not checked" in agent.output()
    province.close()


def test_trusted_clock_refuses_a_certificate_not_yet_valid(tmp_path: Path, broker: Any) -> None:
    reissue_server_cert(broker, starts_in=dt.timedelta(days=30))
    cfg, province = make_agent(tmp_path, broker, "always")
    with AgentProc(cfg) as agent:
        out = refused_twice(agent)
    assert "certificate is not yet valid" in out, out[-2000:]
    assert "connected to" not in out
    assert not online(province, 0)
    province.close()


def test_untrusted_clock_still_refuses_a_certificate_from_another_ca(
    tmp_path: Path, broker: Any
) -> None:
    # A forged broker: right name, right dates-don't-matter, wrong issuer key.
    from cryptography.hazmat.primitives.asymmetric import ec

    rogue = tmp_path / "rogue.key"
    rogue.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    reissue_server_cert(broker, starts_in=dt.timedelta(days=-1), ca_key=rogue)
    key = TrustKey("vn-48-emergency")
    cfg = agent_config(tmp_path, broker, DEV, ["vn-48"], [key], clock_trust="never")
    assert run_cli("enroll", "-c", str(cfg)).returncode == 0
    with AgentProc(cfg) as agent:
        out = refused_twice(agent)
    assert "certificate verify failed" in out
    assert "connected to" not in out
