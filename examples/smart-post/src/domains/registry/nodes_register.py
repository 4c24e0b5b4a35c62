"""Node registration: each delivery box becomes a Thing in its hub's ThingGroup, the hub's
certificate gets the node policy for its boxes' topics, and the hub's ``nodes``
attribute counts them."""

import uuid
from typing import List

import infrastructures.registry.thing_repository as thing_repository
from domains.registry.hub_register import get_group_name

NODE_TYPES = ("post", "parcel-box")
NODE_NAMESPACE = uuid.UUID("6f1c3a52-8d0e-4b7a-9c41-0d4b7e2f5a10")


class InvalidNodes(ValueError):
    pass


class Node:
    def __init__(self, hub_uuid, node_id, node_type):
        self.hub_uuid = hub_uuid
        self.node_id = node_id
        self.node_type = node_type
        # the same box of the same hub is always the same Thing, so a retried registration is harmless
        self.node_uuid = str(uuid.uuid5(NODE_NAMESPACE, f"{hub_uuid}/{node_id}"))


class NodeFactory:
    @staticmethod
    def nodes_provider(hub_uuid, nodes) -> List[Node]:
        if not hub_uuid:
            raise InvalidNodes("hub_uuid is required")
        if not isinstance(nodes, list) or not nodes:
            raise InvalidNodes("nodes must be a non-empty list")
        out = []
        for node in nodes:
            if not isinstance(node, dict) or not node.get("node_id") or node.get("type") not in NODE_TYPES:
                raise InvalidNodes(f"invalid node {node!r}")
            out.append(Node(hub_uuid, str(node["node_id"]), node["type"]))
        return out


class NodeThing:
    def __init__(self, node: Node):
        self.node_uuid = node.node_uuid
        self.node_id = node.node_id
        self.node_type = node.node_type


def get_nodes_policy_name(certificate_id):
    return f"nodes-{certificate_id[:32]}"


class NodeThings:
    def __init__(self, aws_account_id, certificate_id, hub_uuid, node_thing_list: List[NodeThing],
                 all_node_uuids: List[str] = ()):
        self.aws_account_id = aws_account_id
        self.certificate_id = certificate_id
        self.policy_name = get_nodes_policy_name(certificate_id)
        self.hub_uuid = hub_uuid
        self.node_thing_list = node_thing_list
        # every box of the hub, registered now or before: the policy covers them all
        self.all_node_uuids = list(all_node_uuids) or [n.node_uuid for n in node_thing_list]

    def update_policy(self):
        import infrastructures.registry.node_policy_repository as repository

        repository.create_policy_for_nodes(self)
        repository.attach_policy(self)

    def log_fields(self):
        return {"log_event": "NodeRegisterFinished", "param_hub_uuid": self.hub_uuid,
                "node_uuids": [n.node_uuid for n in self.node_thing_list], "policy_name": self.policy_name}


class NodeRegisterService:
    def __init__(self, hub_uuid, account_id, certificate_id, nodes: List[Node]):
        self.hub_uuid = hub_uuid
        self.account_id = account_id
        self.certificate_id = certificate_id
        self.nodes = nodes

    def node_register(self) -> NodeThings:
        group_name = get_group_name(self.hub_uuid)
        node_things = []
        for node in self.nodes:
            thing_repository.create_node(node)
            thing_repository.add_to_group(group_name, node.node_uuid)
            node_things.append(NodeThing(node))
        registered = [t for t in thing_repository.things_in_group(group_name) if t != self.hub_uuid]
        things = NodeThings(self.account_id, self.certificate_id, self.hub_uuid, node_things, registered)
        things.update_policy()
        thing_repository.update_hub_nodes(self.hub_uuid, len(registered))
        return things

