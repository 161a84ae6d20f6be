"""keygen: the printed [[trust]] block is valid TOML whose key verifies the PEM's tokens."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from agent import jws
from agent.central.cli import main
from agent.central.sign import build_claims, make_tokens, verify_eddsa


def test_keygen_block_parses_and_verifies_tokens_signed_with_the_pem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "keys" / "vn-48-490.pem"
    assert main(["keygen", "--kid", "vn-48-490", "--out", str(out),
                 "--commands", "schedule.set, volume.set", "--max-priority", "49"]) == 0
    printed = capsys.readouterr()
    doc = tomllib.loads(printed.out)
    [trust] = doc["trust"]
    assert trust["kid"] == "vn-48-490"
    assert trust["commands"] == ["schedule.set", "volume.set"]
    assert trust["max_priority"] == 49
    public = jws.decode_public_key(trust["public_key"])
    assert jws.fingerprint(public) in printed.out and jws.fingerprint(public) in printed.err
    assert stat.S_IMODE(out.stat().st_mode) == 0o600

    key = jws.load_private_key(out)
    claims = build_claims(iss="vn-48", aud="dev-0001", cmd="volume.set", args={"level": 1},
                          now=1, ttl_s=1, jti="x")
    [tok] = make_tokens(key, "vn-48-490", claims, None)
    assert verify_eddsa(tok.token, public) == claims


def test_keygen_refuses_to_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "k.pem"
    out.write_text("precious")
    assert main(["keygen", "--kid", "k", "--out", str(out)]) == 2
    assert "refusing to overwrite" in capsys.readouterr().err
    assert out.read_text() == "precious"


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--commands", "alerts.*"], "'alerts.*' matches no command"),
     (["--max-priority", "101"], "between 0 and 100")],
)
def test_keygen_bad_input_is_named_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    out = tmp_path / "k.pem"
    assert main(["keygen", "--kid", "k", "--out", str(out), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()
