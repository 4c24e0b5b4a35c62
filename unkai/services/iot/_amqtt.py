"""amqtt's broker with unkai's rules (imported only when the MQTT broker starts).

``IotAmqttBroker`` changes some of amqtt's steps (pinned to amqtt 0.12, whose private
methods these are): a client's PUBLISH goes to unkai's publish path instead of amqtt's
fan-out (and may target ``$aws/...`` shadow topics, which amqtt refuses); retained
messages for a new subscription come from the store; a disconnect publishes the presence
event; a TLS connection's reader and writer go through ``mqtt5`` (MQTT 5 clients are
translated, 3.1.1 ones pass through). The fan-out (``_run_broadcast``) and the messages
queued for a disconnected persistent session carry each message's MQTT 5 properties
(``properties.Properties``): an MQTT 5 subscriber's connection is told them before amqtt
writes the PUBLISH (``mqtt5.Translation.expect``), and an expired message is not sent. ``Gate`` is the plugin amqtt asks on CONNECT,
SUBSCRIBE and before each delivery.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from amqtt.broker import Broker as AmqttBroker
from amqtt.broker import RetainedApplicationMessage
from amqtt.contexts import Action
from amqtt.events import BrokerEvents
from amqtt.mqtt.constants import QOS_1, QOS_2
from amqtt.mqtt.disconnect import DisconnectPacket
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

from unkai.services.iot import mqtt5

log = logging.getLogger(__name__)


def shared_filter(topic_filter: str) -> tuple[str, str] | None:
    """``(share name, filter)`` of a shared subscription's ``$share/{name}/{filter}``."""
    if not topic_filter.startswith("$share/"):
        return None
    parts = topic_filter.split("/", 2)
    return (parts[1], parts[2]) if len(parts) == 3 else None


SESSION_EXPIRY = 3600  # AWS IoT Core's persistent session expiry (default, and the default maximum)


class _Queued(RetainedApplicationMessage):
    """A message queued for a disconnected persistent session, with its properties."""

    __slots__ = ("properties",)

    def __init__(self, topic: str, data: bytes, qos: int, properties: Any) -> None:
        super().__init__(None, topic, data, qos)
        self.properties = properties


class IotAmqttBroker(AmqttBroker):
    def __init__(self, config: dict, gate: Any) -> None:
        self.gate = gate
        self.displaced: dict[str, Any] = {}  # client id -> the connected handler a newcomer replaces
        self.turns: dict[str, int] = {}  # shared subscription ($share/...) -> its next member's turn
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

    def fan_out(self, topic: str, payload: bytes, qos: int, properties: Any = None) -> None:
        """Hand a committed message to amqtt's delivery loop (each subscriber's QoS), unless
        no subscription's filter matches it (most device telemetry has no subscriber)."""
        if not any(self._filter_matches(topic, topic_filter) for topic_filter in self._subscriptions):
            return
        self._broadcast_queue.put_nowait({"session": None, "topic": topic, "data": payload,
                                          "iot_properties": properties})

    def _filter_matches(self, topic: str, topic_filter: str) -> bool:
        """amqtt's match, with a shared subscription's filter (``$share/{name}/{filter}``)
        matched by its filter part."""
        shared = shared_filter(topic_filter)
        return self._matches(topic, shared[1] if shared else topic_filter)

    def _send(self, handler: Any, topic: str, data: bytes, qos: int, retain: bool, properties: Any) -> Any:
        """``handler.mqtt_publish``, with the message's properties for an MQTT 5 subscriber;
        None (nothing sent) once the message has expired."""
        if properties is not None:
            now = self.gate.cloud.clock.now()
            if properties.expired(now):
                return None
            translation = getattr(getattr(handler, "writer", None), "translation", None)
            if translation is not None:
                translation.expect(topic, data, properties.encode(now))
        return handler.mqtt_publish(topic, data, qos, retain=retain)

    async def _run_broadcast(self, running_tasks: Any) -> None:  # type: ignore[override]
        """amqtt 0.12's ``_run_broadcast`` (one message to each matching subscription the
        policy lets receive it), with the message's MQTT 5 properties and expiry."""
        broadcast = await self._broadcast_queue.get()
        topic, data = broadcast["topic"], broadcast["data"]
        properties = broadcast.get("iot_properties")
        for topic_filter, subscriptions in list(self._subscriptions.items()):
            if not self._filter_matches(topic, topic_filter):
                continue
            if shared_filter(topic_filter):
                await self._share(topic_filter, subscriptions, broadcast, running_tasks)
                continue
            for target_session, sub_qos in subscriptions:
                qos = broadcast.get("qos", sub_qos)
                # a persistent session that is away keeps QoS 1 messages; iot:Receive is asked when
                # they are sent (amqtt asked now, when the client has no connection to ask about)
                if (target_session.transitions.state != "connected" and not target_session.clean_session
                        and qos in (QOS_1, QOS_2) and not target_session.is_anonymous):
                    queued = _Queued(topic, data, qos, properties)
                    await target_session.retained_messages.put(queued)
                    await self.plugins_manager.fire_event(BrokerEvents.RETAINED_MESSAGE,
                                                          client_id=target_session.client_id,
                                                          retained_message=queued)
                    continue
                if target_session.transitions.state != "connected":
                    continue
                if not await self._topic_filtering(target_session, topic=topic, action=Action.RECEIVE):
                    continue
                handler = self._get_handler(target_session)
                if handler:
                    sending = self._send(handler, topic, data, qos, False, properties)
                    if sending is not None:
                        running_tasks.append(asyncio.ensure_future(sending))

    async def _share(self, topic_filter: str, subscriptions: list, broadcast: dict, running_tasks: Any) -> None:
        """A shared subscription: the message goes to one connected member allowed to receive
        it, in turn (AWS IoT Core sends it to one member of the group)."""
        members = [(s, q) for s, q in subscriptions if s.transitions.state == "connected"]
        if not members:
            return
        start = self.turns.get(topic_filter, 0)
        for i in range(len(members)):
            target_session, sub_qos = members[(start + i) % len(members)]
            if not await self._topic_filtering(target_session, topic=broadcast["topic"], action=Action.RECEIVE):
                continue
            self.turns[topic_filter] = start + i + 1
            handler = self._get_handler(target_session)
            if handler:
                sending = self._send(handler, broadcast["topic"], broadcast["data"], broadcast.get("qos", sub_qos),
                                     False, broadcast.get("iot_properties"))
                if sending is not None:
                    running_tasks.append(asyncio.ensure_future(sending))
            return

    def _expire_later(self, session: Session, translation: Any) -> None:
        """A persistent session that is away ends after its expiry on unkai's clock: an MQTT 5
        client's Session Expiry Interval, a 3.1.1 client's AWS default (one hour), neither
        beyond AWS's default maximum of one hour; its subscriptions and queued messages go."""
        expiry = min(translation.session_expiry if translation is not None else SESSION_EXPIRY, SESSION_EXPIRY)
        token = object()
        session.iot_away = token

        def expire() -> None:
            found = self._sessions.get(session.client_id)
            if found is None or found[0] is not session or getattr(session, "iot_away", None) is not token \
                    or session.transitions.is_connected():
                return
            log.info("IoT: the persistent session of %s expired", session.client_id)
            self._sessions.pop(session.client_id, None)  # at once: a CONNECT right after finds no session
            session.clear_queues()
            asyncio.ensure_future(self._del_all_subscriptions(session))

        self.gate.cloud.clock.call_later(expiry, expire)

    async def _publish_session_retained_messages(self, session: Session) -> None:
        """Messages queued while a persistent session was away, except those that expired
        meanwhile (each with what remains of its Message Expiry Interval)."""
        handler = self._get_handler(session)
        tasks = []
        if handler:
            while not session.retained_messages.empty():
                queued = await session.retained_messages.get()
                if not self.gate.may(session.client_id, "iot:Receive", queued.topic):
                    continue
                sending = self._send(handler, queued.topic, queued.data, queued.qos, True,
                                     getattr(queued, "properties", None))
                if sending is not None:
                    tasks.append(asyncio.ensure_future(sending))
        if tasks:
            await asyncio.wait(tasks)

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
        # amqtt 0.12 calls this at every CONNECT for every filter anyone ever subscribed to:
        # only this session's own subscriptions get retained messages
        if not any(s is session for s, _ in self._subscriptions.get(topic_filter, ())):
            return
        for topic, payload, retained_qos, properties in self.gate.retained_for(topic_filter):
            if self.gate.may(session.client_id, "iot:Receive", topic):
                sending = self._send(handler, topic, payload, min(qos, retained_qos), True, properties)
                if sending is not None:
                    await sending

    async def _handle_disconnect(self, client_session: Session, handler: Any, disconnect_waiter: Any) -> None:
        result = disconnect_waiter.result()
        reason = "CLIENT_INITIATED_DISCONNECT" if isinstance(result, DisconnectPacket) else "CONNECTION_LOST"
        if getattr(client_session, "iot_displaced", False):
            reason = "DUPLICATE_CLIENTID"
        reason = getattr(client_session, "iot_disconnect_reason", None) or reason
        client_session.iot_disconnect_reason = None
        # read before amqtt stops the handler (which may detach its writer)
        translation = getattr(getattr(handler, "writer", None), "translation", None)
        await super()._handle_disconnect(client_session, handler, disconnect_waiter)
        if not client_session.clean_session:
            self._expire_later(client_session, translation)
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
        if signer is None and not der and session.username is not None:  # a custom authorizer's to judge
            ok, reason = await self._gate.authenticate_custom(
                session.client_id or "", session.username, session.password, session.remote_address or "",
                getattr(session.ssl_object, "iot_server_name", None))
        else:
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
