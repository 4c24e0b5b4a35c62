"""SES v2 list management: contact lists with their topics, contacts with their topic
preferences, and what a send with ``ListManagementOptions`` does with them.

AWS allows one contact list per account and region, with at most 20 topics; a contact's
subscription to a topic is its own preference, else the topic's
``DefaultSubscriptionStatus``, and ``UnsubscribeAll`` overrides both ("Using list
management" in the SES developer guide). A send that names a list (and a topic) is not
delivered to a recipient who opted out: SES reports a bounce for it instead. The
unsubscribe link and the ``List-Unsubscribe`` headers it adds are made in
``tracking.py``, which also changes the preferences when someone follows them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from unkai.services.ses.errors import bad, contact_exists, contact_missing, list_exists, list_limit, list_missing

if TYPE_CHECKING:
    from unkai.store import Store

MAX_LISTS = 1
MAX_TOPICS = 20
STATUSES = ("OPT_IN", "OPT_OUT")


@dataclass
class ContactList:
    name: str
    topics: list[dict[str, Any]]
    description: str | None
    tags: list[dict[str, str]]
    created: float
    updated: float

    def topic(self, name: str) -> dict[str, Any] | None:
        return next((t for t in self.topics if t["TopicName"] == name), None)


@dataclass
class Contact:
    email: str
    preferences: dict[str, str]  # topic -> OPT_IN | OPT_OUT, the contact's own choices
    unsubscribe_all: bool
    attributes: str | None
    created: float
    updated: float

    def status(self, contact_list: ContactList, topic: str | None) -> str:
        """Whether mail for ``topic`` (None: the list as a whole) reaches this contact."""
        if self.unsubscribe_all:
            return "OPT_OUT"
        if topic is None:
            return "OPT_IN"
        if topic in self.preferences:
            return self.preferences[topic]
        spec = contact_list.topic(topic) or {}
        return spec.get("DefaultSubscriptionStatus", "OPT_IN")


def check_topics(topics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(topics) > MAX_TOPICS:
        raise bad(f"A contact list can have at most {MAX_TOPICS} topics.")
    names = [t["TopicName"] for t in topics]
    if len(set(names)) != len(names):
        raise bad("Topic names must be unique within a contact list.")
    for t in topics:
        if t.get("DefaultSubscriptionStatus") not in STATUSES:
            raise bad(f"Invalid DefaultSubscriptionStatus for topic {t['TopicName']}.")
    return [{k: t[k] for k in ("TopicName", "DisplayName", "Description", "DefaultSubscriptionStatus") if k in t}
            for t in topics]


class Contacts:
    def __init__(self, store: "Store") -> None:
        self.store = store

    # -- lists ------------------------------------------------------------------------

    def get_list(self, account: str, region: str, name: str) -> ContactList | None:
        row = self.store.one("SELECT name, spec, tags, created, updated FROM ses_contact_lists WHERE account=? "
                             "AND region=? AND name=?", (account, region, name))
        return _list(row) if row else None

    def need_list(self, account: str, region: str, name: str) -> ContactList:
        found = self.get_list(account, region, name)
        if found is None:
            raise list_missing(name)
        return found

    def lists(self, account: str, region: str) -> list[ContactList]:
        rows = self.store.all("SELECT name, spec, tags, created, updated FROM ses_contact_lists WHERE account=? "
                              "AND region=? ORDER BY name", (account, region))
        return [_list(r) for r in rows]

    def create_list(self, account: str, region: str, name: str, topics: list[dict], description: str | None,
                    tags: list[dict], now: float) -> None:
        if self.get_list(account, region, name) is not None:
            raise list_exists(name)
        if len(self.lists(account, region)) >= MAX_LISTS:
            raise list_limit()
        spec = {"Topics": check_topics(topics), "Description": description}
        self.store.execute("INSERT INTO ses_contact_lists(account, region, name, spec, tags, created, updated) "
                           "VALUES(?,?,?,?,?,?,?)", (account, region, name, json.dumps(spec), json.dumps(tags), now,
                                                     now))

    def update_list(self, account: str, region: str, name: str, topics: list[dict] | None,
                    description: str | None, now: float) -> None:
        current = self.need_list(account, region, name)
        spec = {"Topics": check_topics(topics) if topics is not None else current.topics,
                "Description": description if description is not None else current.description}
        self.store.execute("UPDATE ses_contact_lists SET spec=?, updated=? WHERE account=? AND region=? AND name=?",
                           (json.dumps(spec), now, account, region, name))

    def delete_list(self, account: str, region: str, name: str) -> None:
        self.need_list(account, region, name)
        self.store.execute("DELETE FROM ses_contacts WHERE account=? AND region=? AND list=?", (account, region, name))
        self.store.execute("DELETE FROM ses_contact_lists WHERE account=? AND region=? AND name=?",
                           (account, region, name))

    # -- contacts -----------------------------------------------------------------------

    def get(self, account: str, region: str, name: str, email: str) -> Contact | None:
        row = self.store.one("SELECT spec, created, updated FROM ses_contacts WHERE account=? AND region=? AND "
                             "list=? AND email=?", (account, region, name, email.lower()))
        return _contact(row) if row else None

    def need(self, account: str, region: str, name: str, email: str) -> Contact:
        found = self.get(account, region, name, email)
        if found is None:
            raise contact_missing(email, name)
        return found

    def contacts(self, account: str, region: str, name: str) -> list[Contact]:
        rows = self.store.all("SELECT spec, created, updated FROM ses_contacts WHERE account=? AND region=? AND "
                              "list=? ORDER BY email", (account, region, name))
        return [_contact(r) for r in rows]

    def put(self, account: str, region: str, contact_list: ContactList, email: str, preferences: list[dict] | None,
            unsubscribe_all: bool | None, attributes: str | None, now: float, *, create: bool) -> Contact:
        """Create (``create``) or update a contact; preferences name the list's topics only."""
        current = self.get(account, region, contact_list.name, email)
        if create and current is not None:
            raise contact_exists(contact_list.name)
        if not create and current is None:
            raise contact_missing(email, contact_list.name)
        prefs = dict(current.preferences) if current else {}
        if preferences is not None:
            prefs = {}
            for p in preferences:
                if contact_list.topic(p["TopicName"]) is None:
                    raise bad(f"Topic {p['TopicName']} does not exist in list {contact_list.name}.")
                if p.get("SubscriptionStatus") not in STATUSES:
                    raise bad(f"Invalid SubscriptionStatus for topic {p['TopicName']}.")
                prefs[p["TopicName"]] = p["SubscriptionStatus"]
        spec = {"EmailAddress": current.email if current else email, "TopicPreferences": prefs,
                "UnsubscribeAll": bool(unsubscribe_all if unsubscribe_all is not None else
                                       (current.unsubscribe_all if current else False)),
                "AttributesData": attributes if attributes is not None else (current.attributes if current else None)}
        self.store.execute(
            "INSERT INTO ses_contacts(account, region, list, email, spec, created, updated) VALUES(?,?,?,?,?,?,?) "
            "ON CONFLICT(account, region, list, email) DO UPDATE SET spec=excluded.spec, updated=excluded.updated",
            (account, region, contact_list.name, email.lower(), json.dumps(spec),
             current.created if current else now, now))
        found = self.get(account, region, contact_list.name, email)
        assert found is not None
        return found

    def delete(self, account: str, region: str, name: str, email: str) -> None:
        self.need(account, region, name, email)
        self.store.execute("DELETE FROM ses_contacts WHERE account=? AND region=? AND list=? AND email=?",
                           (account, region, name, email.lower()))

    def opted_out(self, account: str, region: str, options: dict[str, Any], recipients: list[str]) -> set[str]:
        """The recipients a send with these ``ListManagementOptions`` must not reach. A
        recipient who is no contact gets the topic's default, as a new contact would."""
        contact_list = self.need_list(account, region, options["ContactListName"])
        topic = options.get("TopicName")
        if topic is not None and contact_list.topic(topic) is None:
            raise bad(f"Topic {topic} does not exist in list {contact_list.name}.")
        out = set()
        for r in recipients:
            contact = self.get(account, region, contact_list.name, r)
            if contact is not None:
                status = contact.status(contact_list, topic)
            else:
                status = (contact_list.topic(topic) or {}).get("DefaultSubscriptionStatus", "OPT_IN") if topic \
                    else "OPT_IN"
            if status == "OPT_OUT":
                out.add(r)
        return out


def contact_json(contact: Contact, contact_list: ContactList, full: bool) -> dict[str, Any]:
    """GetContact's answer (``full``) or ListContacts' entry."""
    defaults = [{"TopicName": t["TopicName"], "SubscriptionStatus": t["DefaultSubscriptionStatus"]}
                for t in contact_list.topics if t["TopicName"] not in contact.preferences]
    out: dict[str, Any] = {"EmailAddress": contact.email,
                           "TopicPreferences": [{"TopicName": k, "SubscriptionStatus": v}
                                                for k, v in contact.preferences.items()],
                           "TopicDefaultPreferences": defaults, "UnsubscribeAll": contact.unsubscribe_all,
                           "LastUpdatedTimestamp": contact.updated}
    if full:
        out.update({"ContactListName": contact_list.name, "CreatedTimestamp": contact.created})
        if contact.attributes is not None:
            out["AttributesData"] = contact.attributes
    return out


def matches(contact: Contact, contact_list: ContactList, flt: dict[str, Any]) -> bool:
    """ListContacts' Filter: by the status for one topic (its default counted only with
    UseDefaultIfPreferenceUnavailable), or by UnsubscribeAll without a topic."""
    status = flt.get("FilteredStatus")
    topic_filter = flt.get("TopicFilter") or {}
    topic = topic_filter.get("TopicName")
    if topic:
        if contact.unsubscribe_all:
            actual: str | None = "OPT_OUT"
        elif topic in contact.preferences:
            actual = contact.preferences[topic]
        elif topic_filter.get("UseDefaultIfPreferenceUnavailable"):
            actual = (contact_list.topic(topic) or {}).get("DefaultSubscriptionStatus")
        else:
            actual = None
        return actual is not None and (status is None or actual == status)
    if status:
        return (status == "OPT_OUT") == contact.unsubscribe_all
    return True


def _list(row: tuple) -> ContactList:
    spec = json.loads(row[1])
    return ContactList(row[0], spec.get("Topics") or [], spec.get("Description"), json.loads(row[2]), row[3], row[4])


def _contact(row: tuple) -> Contact:
    spec = json.loads(row[0])
    return Contact(spec["EmailAddress"], spec.get("TopicPreferences") or {}, bool(spec.get("UnsubscribeAll")),
                   spec.get("AttributesData"), row[1], row[2])
