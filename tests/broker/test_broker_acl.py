"""PROTOCOL §2 enforced by the real broker: who may read and write which topic.

Mosquitto's ACL denials are silent (a forbidden publish is dropped, a forbidden
subscription is granted and stays empty), so each test proves that NOTHING
arrives where it must not, next to a control message that does arrive to show the
subscriptions were live.
"""

from __future__ import annotations

from typing import Any

import aiomqtt
import anyio
import pytest
from support.broker import before_marker, mqtt_client, next_message

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


def cmd(dev: str) -> str:
    return f"tcs/v1/dev/{dev}/cmd"


def grp(group: str) -> str:
    return f"tcs/v1/grp/{group}/cmd"


async def test_device_reads_only_its_own_and_its_groups_commands(broker: Any) -> None:
    async with (
        mqtt_client(broker, "central") as console,
        mqtt_client(broker, "dev-0001") as dev1,
        mqtt_client(broker, "dev-0002") as dev2,
    ):
        # dev-0001 tries everything: the whole tree, and the other device's topics by name.
        await dev1.subscribe([("#", 1), (cmd("dev-0002"), 1), (grp("vn-48-491"), 1)])
        await dev1.subscribe(cmd("dev-0001"), qos=1)
        await dev2.subscribe([(cmd("dev-0002"), 1), (grp("vn-48-491"), 1)])
        await console.publish(cmd("dev-0002"), b"for-2", qos=1)
        await console.publish(grp("vn-48-491"), b"for-491", qos=1)
        await console.publish(cmd("dev-0001"), b"for-1", qos=1)
        got2 = {(str(m.topic), m.payload) for m in [await next_message(dev2) for _ in range(2)]}
        assert got2 == {(cmd("dev-0002"), b"for-2"), (grp("vn-48-491"), b"for-491")}
        got1 = [await next_message(dev1)] + await before_marker(dev1, console, cmd("dev-0001"))
        # Its own command may arrive through both its subscriptions; nothing else may.
        assert {(str(m.topic), m.payload) for m in got1} == {(cmd("dev-0001"), b"for-1")}


async def test_device_cannot_forge_another_devices_reports(broker: Any) -> None:
    kinds = ("state", "hb", "ack", "proof", "event")
    async with (
        mqtt_client(broker, "central") as console,
        mqtt_client(broker, "dev-0001") as dev1,
        mqtt_client(broker, "dev-0002") as dev2,
    ):
        await console.subscribe([(f"tcs/v1/dev/+/{k}", 1) for k in kinds])
        for k in kinds:
            await dev1.publish(f"tcs/v1/dev/dev-0002/{k}", b"forged", qos=1)
        for k in kinds:  # controls: each device writes its own reports
            await dev2.publish(f"tcs/v1/dev/dev-0002/{k}", b"real", qos=1)
            await dev1.publish(f"tcs/v1/dev/dev-0001/{k}", b"own", qos=1)
        got = [await next_message(console) for _ in range(10)]
        got += await before_marker(console, dev1, "tcs/v1/dev/dev-0001/event")
        assert sorted((str(m.topic), m.payload) for m in got) == sorted(
            [(f"tcs/v1/dev/dev-0002/{k}", b"real") for k in kinds]
            + [(f"tcs/v1/dev/dev-0001/{k}", b"own") for k in kinds]
        )


async def test_device_cannot_publish_any_command(broker: Any) -> None:
    async with (
        mqtt_client(broker, "central") as console,
        mqtt_client(broker, "dev-0001") as dev1,
        mqtt_client(broker, "dev-0002") as dev2,
    ):
        await dev1.subscribe([(cmd("dev-0001"), 1), (grp("vn-48"), 1)])
        await dev2.subscribe([(cmd("dev-0002"), 1), (grp("vn-48"), 1)])
        for topic in (cmd("dev-0001"), cmd("dev-0002"), grp("vn-48"), grp("vn-48-491")):
            await dev1.publish(topic, b"forged", qos=1)
            await dev1.publish(topic, b"forged-retained", qos=1, retain=True)
        await console.publish(grp("vn-48"), b"control", qos=1)
        for dev in (dev1, dev2):
            own = cmd("dev-0001" if dev is dev1 else "dev-0002")  # each marker to one device
            got = [await next_message(dev)] + await before_marker(dev, console, own)
            assert [(str(m.topic), m.payload) for m in got] == [(grp("vn-48"), b"control")]
    # Nor did a forged retained command stick for a device that connects later.
    async with mqtt_client(broker, "central") as console, mqtt_client(broker, "dev-0002") as late:
        await late.subscribe([(cmd("dev-0002"), 1), (grp("vn-48"), 1), (grp("vn-48-491"), 1)])
        assert await before_marker(late, console, cmd("dev-0002")) == []


async def test_client_id_of_another_device_does_not_get_its_commands(broker: Any) -> None:
    async with (
        mqtt_client(broker, "central") as console,
        mqtt_client(broker, "dev-0002") as real,
        mqtt_client(broker, "dev-0001", identifier="dev-0002") as imposter,
    ):
        await real.subscribe(cmd("dev-0002"), qos=1)
        await imposter.subscribe([(cmd("dev-0002"), 1), (cmd("dev-0001"), 1)])
        await console.publish(cmd("dev-0002"), b"for-2", qos=1)
        # The real device still holds its session (the imposter did not take over
        # client id dev-0002) and gets its command; the imposter gets nothing.
        assert (await next_message(real)).payload == b"for-2"
        assert await before_marker(imposter, console, cmd("dev-0001")) == []


@pytest.mark.parametrize(
    ("user", "password"),
    [("dev-0001", "wrong-password"), ("dev-0009", "anything"), ("dev-0001", "")],
)
async def test_bad_credentials_are_refused(broker: Any, user: str, password: str) -> None:
    with anyio.fail_after(5), pytest.raises(aiomqtt.MqttCodeError) as err:
        async with mqtt_client(broker, user, password=password):
            pass
    assert err.value.rc in (134, 135)  # bad user name or password / not authorized


async def test_client_that_does_not_trust_the_ca_is_refused(broker: Any) -> None:
    # Verification fails client-side; aiomqtt reports it only as a failed connect.
    with anyio.fail_after(5), pytest.raises(aiomqtt.MqttError):
        async with mqtt_client(broker, "dev-0001", trust_ca=False, timeout=2):
            pass


async def test_console_commands_reach_devices_directly_and_by_group(broker: Any) -> None:
    async with (
        mqtt_client(broker, "central") as console,
        mqtt_client(broker, "dev-0001") as dev1,
        mqtt_client(broker, "dev-0002") as dev2,
    ):
        await dev1.subscribe(
            [(cmd("dev-0001"), 1)]
            + [(grp(g), 1) for g in ("vn-48", "vn-48-490", "vn-48-490-20194")]
        )
        await dev2.subscribe([(cmd("dev-0002"), 1), (grp("vn-48"), 1), (grp("vn-48-491"), 1)])
        await console.publish(cmd("dev-0001"), b"direct", qos=1)
        await console.publish(grp("vn-48-490-20194"), b"commune", qos=1)
        await console.publish(grp("vn-48"), b"province", qos=1)
        got1 = [(str(m.topic), m.payload) for m in [await next_message(dev1) for _ in range(3)]]
        assert got1 == [
            (cmd("dev-0001"), b"direct"),
            (grp("vn-48-490-20194"), b"commune"),
            (grp("vn-48"), b"province"),
        ]
        got2 = [await next_message(dev2)] + await before_marker(dev2, console, cmd("dev-0002"))
        assert [(str(m.topic), m.payload) for m in got2] == [(grp("vn-48"), b"province")]
