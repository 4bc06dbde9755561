"""Manifests built as data and emitted with a YAML emitter (never a text template).

Several nodes: a LeaderWorkerSet (``leaderworkerset.x-k8s.io/v1``) of ``size`` = nodes, whose
leader and worker templates run each rank's command with the leader's address and the worker's
index that LWS injects (``$(LWS_LEADER_ADDRESS)``, ``$(LWS_WORKER_INDEX)``, expanded by the
kubelet), plus a Service for the leader's OpenAI port. One node: a Deployment and a Service.
Secrets (HF_TOKEN, the API key) come from a Secret by reference; servers bind 0.0.0.0 inside
the pod only, reached through the Service.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

import yaml

from envman.engines.base import Launch
from envman.engines.launch import LWS_LEADER_ADDRESS, LWS_WORKER_INDEX, Bindings, NodeLaunch, launch, node_launches
from envman.errors import UsageError
from envman.matrix.schema import NodeMechanism
from envman.plan.result import Plan

LWS_API = "leaderworkerset.x-k8s.io/v1"
LWS_NAME_LABEL = "leaderworkerset.sigs.k8s.io/name"  # the label LWS puts on every pod of a set
LEADER_ADDRESS = LWS_LEADER_ADDRESS
WORKER_INDEX = LWS_WORKER_INDEX
POD_BIND = "0.0.0.0"  # noqa: S104 (inside the pod only: the Service is the way in)
SHM_SIZE = "16Gi"
HF_TOKEN_KEY = "hf-token"  # noqa: S105 (a key name in the Secret, not a token)
API_KEY_KEY = "api-key"
_RFC1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]{0,254}\Z")


@dataclass(frozen=True)
class Options:
    image: str
    namespace: str = "default"
    name: str | None = None  # default: from the model's name
    port: int = 8000
    secret: str = "envman"  # noqa: S105 (a name) the Secret holding hf-token (optional) and api-key
    api_key: bool = False  # require the Secret's api-key from clients
    network_interface: str | None = None  # several nodes: NCCL_SOCKET_IFNAME … where the engine documents them


def rfc1123(value: str, what: str) -> str:
    if not _RFC1123_LABEL.match(value):
        raise UsageError(
            f"{what} {value!r} is not a Kubernetes name",
            hint="lower-case letters, digits and '-', starting and ending with a letter or digit, at most 63",
        )
    return value


def default_name(plan: Plan) -> str:
    """An RFC 1123 label (and DNS-1035: starts with a letter) from the model's name."""
    text = re.sub(r"[^a-z0-9-]+", "-", plan.model.name.lower()).strip("-")
    text = re.sub(r"-{2,}", "-", text)[:50].strip("-") or "model"
    return text if text[0].isalpha() else "m-" + text


def check_image(image: str) -> str:
    if not _IMAGE.match(image):
        raise UsageError(f"--image {image!r} is not an image reference", hint="e.g. envman/vllm:0.32.0-cuda")
    return image


def build(plan: Plan, options: Options) -> list[dict[str, Any]]:
    """The manifests for ``plan``: [LeaderWorkerSet, Service] or [Deployment, Service]."""
    namespace = rfc1123(options.namespace, "--namespace")
    name = rfc1123(options.name or default_name(plan), "--name")
    image = check_image(options.image)
    rfc1123(options.secret, "--secret")
    bindings = Bindings(
        host=POD_BIND,
        port=options.port,
        api_key="from-secret" if options.api_key else None,
        network_interface=options.network_interface if plan.nodes > 1 else None,
    )
    if options.network_interface and plan.nodes < 2:
        raise UsageError(
            f"--network-interface: {plan.model.name} runs on one node here, with no traffic between nodes",
            hint="drop --network-interface, or plan for more nodes with --nodes N",
        )
    meta = {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": name}}
    if plan.nodes < 2:
        single = launch(plan, bindings)
        pod = _pod(single, (), image, options, gpus=plan.memory.devices, leader=True, node_env=())
        labels = {"app.kubernetes.io/name": name}
        deployment = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        }
        return [deployment, _service(meta, labels, options.port)]
    assert plan.multinode is not None
    leader, worker = node_launches(plan, bindings, LEADER_ADDRESS, ranks=["0", WORKER_INDEX], node_address="")
    gpus = len(plan.host.gpus)
    env_names = plan.multinode.node_env
    lws = {
        "apiVersion": LWS_API,
        "kind": "LeaderWorkerSet",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "leaderWorkerTemplate": {
                "size": plan.nodes,
                "restartPolicy": "RecreateGroupOnPodRestart",
                "leaderTemplate": {
                    "metadata": {"labels": {"role": "leader"}},
                    "spec": _pod_of(leader, image, options, gpus, True, env_names),
                },
                "workerTemplate": {
                    "metadata": {"labels": {"role": "worker"}},
                    "spec": _pod_of(worker, image, options, gpus, False, env_names),
                },
            },
        },
    }
    return [lws, _service(meta, {LWS_NAME_LABEL: name, "role": "leader"}, options.port)]


def _pod_of(
    node: NodeLaunch, image: str, options: Options, gpus: int, leader: bool, node_env: tuple[str, ...]
) -> dict[str, Any]:
    return _pod(node.launch, node.setup, image, options, gpus=gpus, leader=leader, node_env=node_env)


def _pod(
    made: Launch,
    setup: tuple[tuple[str, ...], ...],
    image: str,
    options: Options,
    *,
    gpus: int,
    leader: bool,
    node_env: tuple[str, ...],
) -> dict[str, Any]:
    if setup:  # Ray's leader: `ray start --head` returns once the head runs, then the server
        command = ["/bin/sh", "-c", " && ".join([*(shlex.join(c) for c in setup), "exec " + shlex.join(made.argv)])]
    else:
        command = list(made.argv)
    env: list[dict[str, Any]] = [
        {
            "name": "HF_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": options.secret, "key": HF_TOKEN_KEY, "optional": True}},
        }
    ]
    for key, value in made.env.items():
        if key in made.secret_env:
            ref = {"name": options.secret, "key": API_KEY_KEY}
            env.append({"name": key, "valueFrom": {"secretKeyRef": ref}})
        elif key in node_env:  # this pod's own address (vLLM's VLLM_HOST_IP with Ray)
            env.append({"name": key, "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}})
        else:
            env.append({"name": key, "value": value})
    container: dict[str, Any] = {
        "name": "leader" if leader else "worker",
        "image": image,
        "command": command,
        "env": env,
        "resources": {"limits": {"nvidia.com/gpu": str(gpus)}},
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],  # noqa: S108 (NCCL's shared memory: a pod volume)
    }
    if leader:
        container["ports"] = [{"name": "http", "containerPort": options.port}]
        container["readinessProbe"] = {
            "httpGet": {"path": made.ready_path or "/health", "port": options.port},
            "initialDelaySeconds": 30,
            "periodSeconds": 10,
            "failureThreshold": 180,  # loading hundreds of GB of weights takes a while
        }
    return {
        "containers": [container],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": SHM_SIZE}}],
    }


def _service(meta: dict[str, Any], selector: dict[str, str], port: int) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": meta,
        "spec": {
            "type": "ClusterIP",
            "selector": selector,
            "ports": [{"name": "http", "port": port, "targetPort": port, "protocol": "TCP"}],
        },
    }


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # a label map used twice is written twice, not as an &anchor a reader may not expect


def dump(documents: list[dict[str, Any]]) -> str:
    """The manifests as one YAML stream (PyYAML's emitter quotes whatever needs quoting)."""
    return yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def uses_ray(plan: Plan) -> bool:
    return plan.multinode is not None and plan.multinode.mechanism is NodeMechanism.RAY
