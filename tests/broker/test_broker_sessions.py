"""QoS 1 commands sent while a device's persistent session is offline reach it when
it comes back (PROTOCOL §1), also when the broker restarted in between."""

from __future__ import annotations

from typing import Any

import aiomqtt
import pytest
from support.broker import DeviceEntry, before_marker, mqtt_client, next_message

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]

CMD = "tcs/v1/dev/dev-0001/cmd"
GRP = "tcs/v1/grp/vn-48-490/cmd"
DAY = 86400


async def _register_session(broker: Any) -> None:
    async with mqtt_client(broker, "dev-0001", clean_start=False, session_expiry=DAY) as dev:
        await dev.subscribe([(CMD, 1), (GRP, 1)])


async def _send_while_offline(broker: Any) -> None:
    async with mqtt_client(broker, "central") as console:
        for i in range(3):
            await console.publish(CMD, f"cmd-{i}".encode(), qos=1)
        await console.publish(GRP, b"grp", qos=1)


async def _receive(broker: Any) -> list[bytes]:
    async with (
        mqtt_client(broker, "dev-0001", clean_start=False, session_expiry=DAY) as dev,
        mqtt_client(broker, "central") as console,
    ):
        got = [await next_message(dev) for _ in range(4)] + await before_marker(dev, console, CMD)
        return [m.payload for m in got]


async def test_commands_queued_while_offline_arrive_on_reconnect(broker: Any) -> None:
    await _register_session(broker)
    await _send_while_offline(broker)
    assert await _receive(broker) == [b"cmd-0", b"cmd-1", b"cmd-2", b"grp"]


async def test_queued_commands_survive_a_broker_restart(broker: Any) -> None:
    await _register_session(broker)
    await _send_while_offline(broker)
    port = broker.port
    broker.restart()
    assert broker.port == port
    assert await _receive(broker) == [b"cmd-0", b"cmd-1", b"cmd-2", b"grp"]


async def test_clean_session_does_not_get_old_commands(broker: Any) -> None:
    # The control for the two tests above: without a persistent session nothing is kept.
    await _register_session(broker)
    await _send_while_offline(broker)
    async with (
        mqtt_client(broker, "dev-0001", clean_start=True) as dev,
        mqtt_client(broker, "central") as console,
    ):
        await dev.subscribe(CMD, qos=1)
        assert await before_marker(dev, console, CMD) == []


async def test_added_device_can_log_in_and_receive_its_group_commands(broker: Any) -> None:
    new = DeviceEntry("dev-0003", ("vn-48-492",))
    with pytest.raises(aiomqtt.MqttCodeError):  # unknown before it is added
        async with mqtt_client(broker, "dev-0003", password="guess"):
            pass
    broker.add_device(new)
    async with (
        mqtt_client(broker, "central") as console,
        mqtt_client(broker, "dev-0003") as dev3,
    ):
        await dev3.subscribe("tcs/v1/grp/+/cmd", qos=1)
        await console.publish("tcs/v1/grp/vn-48-491/cmd", b"not-mine", qos=1)
        await console.publish("tcs/v1/grp/vn-48-492/cmd", b"mine", qos=1)
        assert (await next_message(dev3)).payload == b"mine"
        assert await before_marker(dev3, console, "tcs/v1/grp/vn-48-492/cmd") == []


async def test_broker_comes_back_on_the_same_port_after_kill_9(broker: Any) -> None:
    port, pid = broker.port, broker.pid
    broker.kill()
    assert not broker.running
    broker.start()
    assert (broker.port, broker.running) == (port, True) and broker.pid != pid
    async with mqtt_client(broker, "central") as console, mqtt_client(broker, "dev-0001") as dev:
        await dev.subscribe(CMD, qos=1)
        await console.publish(CMD, b"after-kill", qos=1)
        assert (await next_message(dev)).payload == b"after-kill"
