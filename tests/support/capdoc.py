"""CAP 1.2 documents built in tests (PROTOCOL §5.4): `cap(infos=info(resources=
resource(wav_bytes)))` is an Actual Alert from a Vietnamese sender with its audio inline
(`derefUri`)."""

from __future__ import annotations

import base64


def cap(*, status: str = "Actual", msg_type: str = "Alert", refs: str = "",
        infos: str | None = None, ns: str = "urn:oasis:names:tc:emergency:cap:1.2",
        prolog: str = "") -> str:
    if infos is None:
        infos = info()
    references = f"<references>{refs}</references>" if refs else ""
    return (f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<alert xmlns="{ns}">'
            "<identifier>VN-48-2026-0042</identifier><sender>kttv@danang.gov.vn</sender>"
            f"<sent>2026-11-23T09:00:00+07:00</sent><status>{status}</status>"
            f"<msgType>{msg_type}</msgType><scope>Public</scope>{references}{infos}</alert>")


def info(lang: str | None = "vi-VN", headline: str = "Bão số 9", expires: str = "",
         resources: str = "", description: str = "Gió mạnh cấp 12",
         instruction: str = "Không ra khơi") -> str:
    language = f"<language>{lang}</language>" if lang else ""
    exp = f"<expires>{expires}</expires>" if expires else ""
    desc = f"<description>{description}</description>" if description else ""
    instr = f"<instruction>{instruction}</instruction>" if instruction else ""
    return (f"<info>{language}<category>Met</category><event>Typhoon</event>"
            "<urgency>Immediate</urgency><severity>Extreme</severity><certainty>Observed"
            f"</certainty>{exp}<headline>{headline}</headline>{desc}{instr}{resources}"
            "<area><areaDesc>Đà Nẵng</areaDesc></area></info>")


def resource(data: bytes | None, *, uri: str = "", digest: str | None = None,
             size: str | None = None, mime: str = "audio/x-wav") -> str:
    parts = [f"<resourceDesc>voice</resourceDesc><mimeType>{mime}</mimeType>"]
    if size is not None:
        parts.append(f"<size>{size}</size>")
    if uri:
        parts.append(f"<uri>{uri}</uri>")
    if data is not None:
        b64 = base64.b64encode(data).decode()
        parts.append("<derefUri>" + "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
                     + "</derefUri>")
    if digest is not None:
        parts.append(f"<digest>{digest}</digest>")
    return "<resource>" + "".join(parts) + "</resource>"
