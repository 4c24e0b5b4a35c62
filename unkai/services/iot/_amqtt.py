"""amqtt's broker with unkai's rules (imported only when the MQTT broker starts).

``IotAmqttBroker`` changes four of amqtt's steps (pinned to amqtt 0.12, whose private
methods these are): a client's PUBLISH goes to unkai's publish path instead of amqtt's
fan-out (and may target ``$aws/...`` shadow topics, which amqtt refuses); retained
messages for a new subscription come from the store; a disconnect publishes the presence
event; a TLS connection's reader and writer go through ``mqtt5`` (MQTT 5 clients are
translated, 3.1.1 ones pass through). ``Gate`` is the plugin amqtt asks on CONNECT,
SUBSCRIBE and before each delivery.
"""

from __future__ import annotations

import logging
import ssl
from typing import Any

from amqtt.broker import Broker as AmqttBroker
from amqtt.contexts import Action
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from unkai.services.iot import mqtt5

log = logging.getLogger(__name__)


class IotAmqttBroker(AmqttBroker):
    def __init__(self, config: dict, gate: Any) -> None:
        self.gate = gate
        self.displaced: dict[str, Any] = {}  # client id -> the connected handler a newcomer replaces
        super().__init__(config)

    async def _delete_session(self, client_id: str) -> None:
        """A clean-session CONNECT with a connected client's id: amqtt forgets the old session
        but leaves its connection open; it is closed once the newcomer is authenticated
        (AWS disconnects the older client, ``DUPLICATE_CLIENTID``)."""
        session, handler = self._sessions.get(client_id, (None, None))
        if session is not None and handler is not None and session.transitions.is_connected():
            self.displaced[client_id] = (session, handler)
        await super()._delete_session(client_id)

    def _create_ssl_context(self, listener: Any) -> ssl.SSLContext:  # type: ignore[override]
        context = AmqttBroker._create_ssl_context(listener)
        context.verify_mode = ssl.CERT_OPTIONAL  # no certificate: refused at CONNECT with a reason
        self.gate.ssl_context(context)
        return context

    async def stream_connected(self, reader: Any, writer: Any, listener_name: str) -> None:  # type: ignore[override]
        """A TLS connection: MQTT 3.1.1 as amqtt speaks it, or MQTT 5 through ``mqtt5``."""
        versioned_reader, versioned_writer = mqtt5.stream_adapters(reader, writer, self.gate.accept)
        await self._client_connected(listener_name, versioned_reader, versioned_writer)

    def bound_port(self, listener: str) -> int:
        return self._servers[listener].instance.sockets[0].getsockname()[1]

    def fan_out(self, topic: str, payload: bytes, qos: int) -> None:
        """Hand a committed message to amqtt's delivery loop (each subscriber's QoS), unless
        no subscription's filter matches it (most device telemetry has no subscriber)."""
        if not any(self._matches(topic, topic_filter) for topic_filter in self._subscriptions):
            return
        self._broadcast_queue.put_nowait({"session": None, "topic": topic, "data": payload})

    async def _handle_message_delivery(self, client_session: Session, handler: Any, wait_deliver: Any) -> bool:
        app_message = wait_deliver.result()
        if app_message is None:
            return True
        retain = bool(app_message.publish_packet and app_message.publish_packet.retain_flag)
        try:
            accepted = self.gate.accept(client_session.client_id, app_message.topic or "", bytes(app_message.data),
                                        app_message.qos or 0, retain)
        except Exception:  # noqa: BLE001 - one bad message must not take the broker down
            log.exception("IoT: a message from %s on %s failed", client_session.client_id, app_message.topic)
            accepted = True
        if not accepted:
            translation = getattr(getattr(handler, "writer", None), "translation", None)
            if translation is not None:  # an MQTT 5 client learns why (DISCONNECT 0x87 Not authorized)
                translation.closing_reason = 0x87
            await handler.handle_connection_closed()
        return True

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int],
                                                          session: Session) -> None:
        handler = self._get_handler(session)
        if handler is None:
            return
        topic_filter, qos = subscription
        for topic, payload, retained_qos in self.gate.retained_for(topic_filter):
            if self.gate.may(session.client_id, "iot:Receive", topic):
                await handler.mqtt_publish(topic, payload, min(qos, retained_qos), retain=True)

    async def _handle_disconnect(self, client_session: Session, handler: Any, disconnect_waiter: Any) -> None:
        result = disconnect_waiter.result()
        reason = "CLIENT_INITIATED_DISCONNECT" if isinstance(result, DisconnectPacket) else "CONNECTION_LOST"
        if getattr(client_session, "iot_displaced", False):
            reason = "DUPLICATE_CLIENTID"
        await super()._handle_disconnect(client_session, handler, disconnect_waiter)
        try:
            self.gate.presence(client_session.client_id, False, reason, getattr(client_session, "iot_connection", None))
        except Exception:  # noqa: BLE001
            log.exception("IoT: presence event for %s failed", client_session.client_id)


class Gate(BaseAuthPlugin, BaseTopicPlugin):
    """amqtt's plugin: every decision is the IoT broker's (``broker.Broker``)."""

    @property
    def _gate(self) -> Any:
        return self.context._broker_instance.gate

    async def authenticate(self, *, session: Session) -> bool | None:
        front = self._gate.websocket
        signer = front.pending.get((session.remote_address, session.remote_port)) if front is not None else None
        der = None
        if signer is None and session.ssl_object is not None:
            der = session.ssl_object.getpeercert(binary_form=True)
        ok, reason = self._gate.authenticate(session.client_id or "", der, session.remote_address or "", signer)
        broker = self.context._broker_instance
        displaced = broker.displaced.pop(session.client_id or "", None)
        if not ok:
            self._gate.cloud.feed.publish("iot.connect", client_id=session.client_id, status="refused",
                                          reason=reason)
            return ok
        session.iot_connection = self._gate.connections.get(session.client_id or "")
        if displaced is not None and displaced[0] is not session:
            displaced[0].iot_displaced = True
            await displaced[1].handle_connection_closed()
        return ok

    async def topic_filtering(self, *, session: Session | None = None, topic: str | None = None,
                              action: Action | None = None) -> bool | None:
        if session is None or topic is None:
            return False
        if action == Action.SUBSCRIBE:
            return self._gate.may(session.client_id, "iot:Subscribe", topic)
        if action == Action.RECEIVE:
            return self._gate.may(session.client_id, "iot:Receive", topic)
        return self._gate.may(session.client_id, "iot:Publish", topic)

    async def on_broker_client_connected(self, client_id: str, client_session: Session) -> None:
        try:
            self._gate.presence(client_id, True)
        except Exception:  # noqa: BLE001
            log.exception("IoT: presence event for %s failed", client_id)
