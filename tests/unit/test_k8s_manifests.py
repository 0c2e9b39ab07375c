"""config/k8s against the Kubernetes and KEDA schemas and against our own config, without a cluster.

The base is rendered the simple way kustomize would for it: the files of kustomization.yaml's ``resources``, each
loaded as it is (the base has no patches or generators; kustomize's ``images`` and ``labels`` only add the tag
and a label). The components (prometheus, sentinel) are RFC 6902 patches, which the test applies itself; where
kubectl is installed, one test checks that ``kubectl kustomize`` renders the same. Kubernetes kinds are validated
by kubernetes-validate (its bundled, strict schemas of the version below); KEDA's by the openAPIV3Schema of its
CRDs, vendored in tests/schemas/keda, made strict the way ``kubectl apply`` (field validation Strict) is: an
unknown field is an error, not silently dropped.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import kubernetes_validate
import pytest
import yaml
from bottle import Bottle

import config
from config.scaling import load_scaling
from web import probes
from workers.cli.main import _parser
from workers.protocol.connection import SENTINEL_CLIENT
from workers.protocol.exitcodes import RET_CONNECT
from workers.protocol.keys import GROUP, Keys

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "config" / "k8s"
SCHEMAS = ROOT / "tests" / "schemas" / "keda"
KUBERNETES_VERSION = "1.31"
"""The oldest Kubernetes the manifests promise (unhealthyPodEvictionPolicy is GA there)."""
Doc = dict[str, Any]


# -- loading ---------------------------------------------------------------------------------------------------
def load_yaml(path: Path) -> list[Doc]:
    with path.open() as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def render(folder: Path = BASE) -> list[Doc]:
    """The base's objects: each file its kustomization.yaml lists, in order."""
    (kustomization,) = load_yaml(folder / "kustomization.yaml")
    return [doc for name in kustomization["resources"] for doc in load_yaml(folder / name)]


def with_component(docs: list[Doc], component: Path) -> list[Doc]:
    """``docs`` with a component's JSON patches (RFC 6902: add, replace, remove) applied to their targets."""
    (kustomization,) = load_yaml(component / "kustomization.yaml")
    out = copy.deepcopy(docs)
    for patch in kustomization["patches"]:
        targets = [doc for doc in out if targeted(doc, patch["target"])]
        assert targets, f"{component.name}: no object matches {patch['target']}"
        operations: list[Doc] = yaml.safe_load((component / patch["path"]).read_text())
        for doc in targets:
            for op in operations:
                json_patch(doc, op)
    return out


def targeted(doc: Doc, target: Doc) -> bool:
    """Whether a kustomize patch target (kind, name, labelSelector ``k=v``) selects ``doc``."""
    if doc["kind"] != target["kind"] or target.get("name", doc["metadata"]["name"]) != doc["metadata"]["name"]:
        return False
    if "labelSelector" in target:
        key, value = target["labelSelector"].split("=")
        return bool(doc["spec"]["template"]["metadata"]["labels"].get(key) == value)
    return True


def json_patch(doc: Doc, op: Doc) -> None:
    *parents, last = [int(part) if part.isdigit() else part for part in op["path"].strip("/").split("/")]
    node: Any = doc
    for part in parents:
        node = node[part]
    if op["op"] == "remove":
        del node[last]
    elif op["op"] == "replace":
        assert last in node if isinstance(node, dict) else last < len(node), op
        node[last] = op["value"]
    elif op["op"] == "add" and last == "-":
        node.append(op["value"])
    else:
        assert op["op"] == "add", f"unsupported patch {op}"
        node[last] = op["value"]


def of_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def deployments(docs: list[Doc]) -> dict[str, Doc]:
    """The Deployments by component: web, worker, keeper, webhooks."""
    return {d["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]: d
            for d in of_kind(docs, "Deployment").values()}


def containers(docs: list[Doc]) -> Iterator[tuple[str, Doc, Doc]]:
    for component, deployment in deployments(docs).items():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            yield component, deployment["spec"]["template"]["spec"], container


def trigger(docs: list[Doc], name: str) -> Doc:
    (scaled,) = of_kind(docs, "ScaledObject").values()
    (found,) = [t for t in scaled["spec"]["triggers"] if t.get("name") == name]
    return found


@pytest.fixture
def docs() -> list[Doc]:
    return render()


def kustomize(overlay: Path) -> list[Doc]:
    """What ``kubectl kustomize`` renders, without the label and the image tag it adds (what render leaves out)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: the manifests are checked through this file's own renderer only")
    out = subprocess.run([kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(overlay)],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    docs = [doc for doc in yaml.safe_load_all(out) if doc]
    for doc in docs:
        labels = doc["metadata"].get("labels", {})
        assert labels.pop("app.kubernetes.io/part-of") == "tessera"
        if not labels:
            del doc["metadata"]["labels"]
        for container in doc.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            assert container["image"] == "tessera:latest"
            container["image"] = "tessera"
    return docs


def test_this_renderer_renders_what_kustomize_does(docs: list[Doc], tmp_path: Path) -> None:
    """Where kubectl is installed: the base with both components, by kustomize itself, equals this file's view."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({  # kustomize takes relative paths only
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(BASE, overlay)],
        "components": [os.path.relpath(BASE / "components" / name, overlay) for name in COMPONENTS]}))
    ours = docs
    for name in COMPONENTS:
        ours = with_component(ours, BASE / "components" / name)
    key = lambda doc: (doc["kind"], doc["metadata"]["name"])  # noqa: E731
    assert sorted(kustomize(overlay), key=key) == sorted(ours, key=key)


# -- schemas ---------------------------------------------------------------------------------------------------
def strict(schema: Any) -> Any:
    """The CRD schema with ``additionalProperties: false`` on every object that lists its properties (unless it
    preserves unknown fields): what the API server's strict field validation does with an unknown field."""
    if isinstance(schema, dict):
        out = {key: strict(value) for key, value in schema.items()}
        if "properties" in out and "additionalProperties" not in out \
                and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


@cache
def keda_schema(kind: str) -> str:
    return json.dumps(strict(json.loads((SCHEMAS / f"{kind.lower()}-keda-v1alpha1.json").read_text())))


def validate(doc: Doc) -> None:
    """Raises when ``doc`` breaks its kind's schema."""
    if doc["apiVersion"] == "keda.sh/v1alpha1":
        jsonschema.validate(doc, json.loads(keda_schema(doc["kind"])))
        return
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


COMPONENTS = sorted(path.parent.name for path in (BASE / "components").glob("*/kustomization.yaml"))


def test_every_manifest_passes_its_schema(docs: list[Doc]) -> None:
    for doc in docs:
        validate(doc)
    for component in COMPONENTS:
        patched = with_component(docs, BASE / "components" / component)
        assert len(patched) == len(docs)
        for doc in patched:
            validate(doc)
    assert {d["kind"] for d in docs} >= {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap",
                                          "PersistentVolumeClaim", "ScaledObject", "TriggerAuthentication",
                                          "NetworkPolicy"}


@pytest.mark.parametrize("kind, path, value", [
    ("Deployment", ["spec", "template", "spec", "containers", 0, "securityContext", "readOnlyRootFilesytem"], True),
    ("Deployment", ["spec", "template", "spec", "terminationGracePeriodSeconds"], "900"),
    ("ScaledObject", ["spec", "minReplicas"], 0),
    ("ScaledObject", ["spec", "advanced", "horizontalPodAutoscalerConfig", "behaviour"], {}),
    ("TriggerAuthentication", ["spec", "secretTargetRef", 0, "paramter"], "password"),
])
def test_the_schemas_catch_a_misspelt_or_mistyped_field(docs: list[Doc], kind: str, path: list[Any],
                                                        value: Any) -> None:
    broken = copy.deepcopy(next(d for d in docs if d["kind"] == kind))
    node = broken
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    with pytest.raises((jsonschema.ValidationError, kubernetes_validate.ValidationError)):
        validate(broken)


# -- the triggers and our config -------------------------------------------------------------------------------
def configmap_env(docs: list[Doc]) -> dict[str, str]:
    return dict(of_kind(docs, "ConfigMap")["tessera-config"]["data"])


def test_the_triggers_read_our_stream_group_user_and_redis(docs: list[Doc]) -> None:
    settings = config.load(env=configmap_env(docs))
    url = urlsplit(settings.redis.url)
    for name in ("jobs-lag", "jobs-pending"):
        meta = trigger(docs, name)["metadata"]
        assert trigger(docs, name)["type"] == "redis-streams"
        assert (meta["stream"], meta["consumerGroup"], meta["username"]) == (
            Keys(settings.redis.prefix).jobs, GROUP, "monitor"), name
        assert meta["address"] == f"{settings.redis.host}:{settings.redis.port}", name
        assert meta["databaseIndex"] == (url.path.strip("/") or "0"), name


def test_the_lag_trigger_wakes_the_pool_and_the_pending_one_holds_busy_pods(docs: list[Doc]) -> None:
    lag, pending = trigger(docs, "jobs-lag")["metadata"], trigger(docs, "jobs-pending")["metadata"]
    # KEDA reads lagCount only with a consumer group, and a trigger that names lagCount is a lag trigger
    # (pendingEntriesCount there is ignored): two triggers, one of each
    assert int(lag["lagCount"]) > 0 and int(lag["activationLagCount"]) == 0
    assert "pendingEntriesCount" not in lag and "lagCount" not in pending
    assert int(pending["pendingEntriesCount"]) == 1  # one job per worker pod: never fewer pods than jobs held
    (scaled,) = of_kind(docs, "ScaledObject").values()
    assert scaled["spec"]["minReplicaCount"] == 0
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployments(docs)["worker"]["metadata"]["name"]
    assert "replicas" not in deployments(docs)["worker"]["spec"]  # the HPA's to set


def test_the_monitor_password_comes_from_the_secret(docs: list[Doc]) -> None:
    (auth,) = of_kind(docs, "TriggerAuthentication").values()
    for name in ("jobs-lag", "jobs-pending"):
        assert trigger(docs, name)["authenticationRef"]["name"] == auth["metadata"]["name"]
        assert "password" not in trigger(docs, name)["metadata"]
    (ref,) = auth["spec"]["secretTargetRef"]
    assert (ref["parameter"], ref["name"], ref["key"]) == ("password", "tessera-secrets", "redis-monitor-password")
    assert ref["key"] in secret_keys()


def test_scaling_up_is_fast_and_down_is_slow(docs: list[Doc]) -> None:
    (scaled,) = of_kind(docs, "ScaledObject").values()
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    up, down = behavior["scaleUp"], behavior["scaleDown"]
    assert up["stabilizationWindowSeconds"] == 0
    assert down["stabilizationWindowSeconds"] >= 300
    assert any(p["type"] == "Percent" and p["value"] >= 100 for p in up["policies"])
    assert down["selectPolicy"] == "Min" and all(p["type"] == "Pods" and p["value"] == 1 for p in down["policies"])


def test_the_backlog_trigger_uses_the_gauge_and_the_scaling_target(docs: list[Doc]) -> None:
    docs = with_component(docs, BASE / "components" / "prometheus")
    backlog = trigger(docs, "backlog-seconds")
    assert backlog["type"] == "prometheus"
    assert "tessera_backlog_seconds" in backlog["metadata"]["query"]
    target = load_scaling(ROOT / "config" / "scaling.yaml").target_backlog_seconds_per_worker
    # the scaling config's target when one is set (0 = the job-count rule only); the manifest's own else
    assert float(backlog["metadata"]["threshold"]) == (target or 120.0)


def test_with_sentinel_every_pod_follows_the_sentinels_and_so_does_keda(docs: list[Doc], tmp_path: Path) -> None:
    docs = with_component(docs, BASE / "components" / "sentinel")
    for component, spec, container in containers(docs):
        settings = config.load(env=pod_env(docs, spec, container, tmp_path / component))
        assert settings.redis.ha and settings.redis.sentinel_client_password == \
            "secret-redis-sentinel-client-password", component
    settings = config.load(env=configmap_env(docs))
    for name in ("jobs-lag", "jobs-pending"):
        found = trigger(docs, name)
        meta = found["metadata"]
        assert found["type"] == "redis-sentinel-streams" and "address" not in meta, name
        assert meta["addresses"].split(",") == settings.redis.sentinels, name
        assert meta["sentinelMaster"] == settings.redis.master_name, name
        assert meta["sentinelUsername"] == SENTINEL_CLIENT, name  # the Sentinels' discovery-only user
        assert (meta["stream"], meta["consumerGroup"], meta["username"]) == (
            Keys(settings.redis.prefix).jobs, GROUP, "monitor"), name
    (auth,) = of_kind(docs, "TriggerAuthentication").values()
    refs = {ref["parameter"]: ref["key"] for ref in auth["spec"]["secretTargetRef"]}
    assert refs == {"password": "redis-monitor-password", "sentinelPassword": "redis-sentinel-client-password"}
    assert set(refs.values()) <= secret_keys()


# -- settings, secrets, least privilege --------------------------------------------------------------------------
def secret_keys() -> set[str]:
    """The keys of the `kubectl create secret` that config/k8s/README.md documents."""
    text = (BASE / "README.md").read_text()
    command = text[text.index("kubectl create secret generic tessera-secrets"):]
    command = command[:command.index("```")]
    return {word.removeprefix("--from-literal=").split("=", 1)[0]
            for word in shlex.split(command.replace("\\\n", " ")) if word.startswith("--from-literal=")}


def pod_env(docs: list[Doc], spec: Doc, container: Doc, secret_dir: Path) -> dict[str, str]:
    """The container's environment as the kubelet builds it (envFrom, then env, which wins), with the mounted
    secret files written under ``secret_dir`` (each holds its key's name)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(of_kind(docs, "ConfigMap")[source["configMapRef"]["name"]]["data"])
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    for volume in spec.get("volumes", []):
        if "secret" in volume:
            for item in volume["secret"]["items"]:
                path = secret_dir / mounts[volume["name"]].strip("/") / item["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(f"secret-{item['key']}\n")
    for var in container.get("env", []):
        if "value" in var:
            value = var["value"]
            env[var["name"]] = str(secret_dir / value.strip("/")) if var["name"].endswith("_FILE") else value
        else:
            assert var["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}, var
            env[var["name"]] = "tessera-pod-abc12"
    return env


def known_variables() -> set[str]:
    """Every TESSERA_* variable the env layer reads (config/settings.py ``_env_layer``), and its _FILE form."""
    defaults = yaml.safe_load((ROOT / "config" / "defaults.yaml").read_text())
    names = {f"TESSERA_{section}_{key}".upper() if isinstance(value, dict) else f"TESSERA_{section}".upper()
             for section, value in defaults.items() for key in (value if isinstance(value, dict) else [None])}
    return names | {f"{name}_FILE" for name in names}


def test_every_variable_is_a_setting_and_each_pod_loads_its_config(docs: list[Doc], tmp_path: Path) -> None:
    known = known_variables()
    assert not set(configmap_env(docs)) - known
    for component, spec, container in containers(docs):
        env = pod_env(docs, spec, container, tmp_path / component)
        assert not {name for name in env if name.startswith("TESSERA_")} - known, component
        settings = config.load(env=env)  # a bad value or a file both set and named is a ConfigError here
        settings.require_secrets(signing=component == "web")
        assert settings.redis.acl and not settings.redis.embedded, component
        assert settings.node == "tessera-pod-abc12"
        role = {"web": "web", "worker": "worker", "keeper": "keeper", "webhooks": "webhooks"}[component]
        assert settings.redis.credentials(role)[1] == f"secret-redis-{role}-password", component
        if component in ("web", "worker"):
            assert (settings.paths.media, settings.results.store) == ("/data/media", "local")
        if component == "web":
            assert settings.web.host == "0.0.0.0" and settings.redis.monitor_password == "secret-redis-monitor-password"


def secret_keys_of(spec: Doc) -> set[str]:
    return {item["key"] for v in spec.get("volumes", []) if "secret" in v for item in v["secret"]["items"]}


def test_each_pod_gets_only_its_roles_secrets(docs: list[Doc]) -> None:
    wanted = {"web": {"redis-web-password", "redis-monitor-password", "web-signing-key", "web-admin-password",
                      "webhooks-secret"},
              "worker": {"redis-worker-password"},
              "keeper": {"redis-keeper-password", "redis-admin-password"},
              "webhooks": {"redis-webhooks-password", "webhooks-secret"}}
    for component, spec, container in containers(docs):
        assert secret_keys_of(spec) == wanted[component], component
        assert secret_keys_of(spec) <= secret_keys()
        assert not any("secretKeyRef" in var.get("valueFrom", {}) for var in container.get("env", []))
        assert not any("secretRef" in source for source in container.get("envFrom", []))
    assert "Secret" not in {d["kind"] for d in docs}  # no values committed


# -- processes, probes, the drain ---------------------------------------------------------------------------------
def test_each_container_runs_one_tessera_command_from_the_image(docs: list[Doc]) -> None:
    (kustomization,) = load_yaml(BASE / "kustomization.yaml")
    assert [image["name"] for image in kustomization["images"]] == ["tessera"]
    parser = _parser(plugins=False)
    for component, _, container in containers(docs):
        assert container["image"] == "tessera" and "command" not in container  # the image's entrypoint
        assert container["args"] == [component]
        if component != "web":  # the entrypoint runs tessera-web for `web`, `tessera <args>` for the rest
            assert parser.parse_args(container["args"]).command == component
    entrypoint = ROOT / "config" / "container" / "entrypoint.sh"
    if entrypoint.exists():
        assert "tessera-web" in entrypoint.read_text()


def test_web_probes_are_our_routes_on_the_served_port(docs: list[Doc]) -> None:
    app = Bottle()
    probes.register(app, None)  # type: ignore[arg-type]  # routes only; no request is made
    routes = {route.rule for route in app.routes}
    (_, _, web) = next(c for c in containers(docs) if c[0] == "web")
    ports = {port["name"]: port["containerPort"] for port in web["ports"]}
    for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = web[kind]["httpGet"]
        assert get["path"] in routes, kind
        assert (get["path"] == "/readyz") == (kind == "readinessProbe"), kind  # a Redis outage restarts nothing
        assert ports[get["port"]] == int(configmap_env(docs)["TESSERA_WEB_PORT"])
    (service,) = of_kind(docs, "Service").values()
    assert service["spec"]["selector"].items() <= deployments(docs)["web"]["spec"]["template"]["metadata"][
        "labels"].items()
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports)


def test_worker_probes_run_tessera_probe_worker(docs: list[Doc]) -> None:
    (_, _, worker) = next(c for c in containers(docs) if c[0] == "worker")
    parser = _parser(plugins=False)
    startup = worker["startupProbe"]["exec"]["command"]
    assert startup == ["tessera", "probe", "worker"] and parser.parse_args(startup[1:]).what == "worker"
    shell, flag, script = worker["livenessProbe"]["exec"]["command"]
    assert (shell, flag) == ("sh", "-c")
    words = shlex.split(script)
    assert words[:3] == ["tessera", "probe", "worker;"]
    # Redis unreachable is not this pod's fault: the liveness probe passes on that exit code, and only on it
    assert f'"$rc" -eq {RET_CONNECT} ] && exit 0' in script


def test_the_worker_outlasts_its_longest_job_and_drains_on_sigterm(docs: list[Doc]) -> None:
    settings = config.load(env=configmap_env(docs))
    spec = deployments(docs)["worker"]["spec"]["template"]["spec"]
    # no wall-clock cap on a job exists; past hang_timeout without progress it counts as hung, and a claim goes
    # stale after claim_stall + claim_idle: the grace period outlasts both
    budget = max(settings.watchdog.hang_timeout, settings.queue.claim_stall + settings.queue.claim_idle)
    assert spec["terminationGracePeriodSeconds"] > budget
    for container in spec["containers"]:
        assert "preStop" not in container.get("lifecycle", {})  # SIGTERM itself is the warm stop
    strategy = deployments(docs)["worker"]["spec"]["strategy"]["rollingUpdate"]
    assert strategy["maxUnavailable"] == 0


def test_one_keeper_and_one_webhook_sender_even_during_a_rollout(docs: list[Doc]) -> None:
    for component in ("keeper", "webhooks"):
        spec = deployments(docs)[component]["spec"]
        assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}, component


def test_disruption_budgets_cover_web_and_worker(docs: list[Doc]) -> None:
    budgets = of_kind(docs, "PodDisruptionBudget").values()
    covered = set()
    for component, deployment in deployments(docs).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        if any(b["spec"]["selector"]["matchLabels"].items() <= labels.items() for b in budgets):
            covered.add(component)
    assert covered >= {"web", "worker"}


# -- security and resources ------------------------------------------------------------------------------------
def test_every_container_is_locked_down_and_sized(docs: list[Doc]) -> None:
    for component, spec, container in containers(docs):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] == 10001, component
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"} and spec["automountServiceAccountToken"] is False
        ctx = container["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False and ctx["readOnlyRootFilesystem"] is True, component
        assert ctx["capabilities"] == {"drop": ["ALL"]}, component
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and "memory" in resources["limits"], component
        mounts = {m["name"] for m in container["volumeMounts"]}
        assert mounts <= {v["name"] for v in spec["volumes"]} and "tmp" in mounts, component


def selects(selector: Doc, labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, matchExpressions with In) selects ``labels``."""
    if not selector.get("matchLabels", {}).items() <= labels.items():
        return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def test_only_web_takes_connections_and_only_on_its_port(docs: list[Doc]) -> None:
    policies = list(of_kind(docs, "NetworkPolicy").values())
    for component, deployment in deployments(docs).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        mine = [p for p in policies if selects(p["spec"]["podSelector"], labels)]
        assert mine and all(p["spec"]["policyTypes"] == ["Ingress"] for p in mine), component
        ports = {port["port"] for p in mine for rule in p["spec"].get("ingress", []) for port in rule["ports"]}
        assert ports == ({int(configmap_env(docs)["TESSERA_WEB_PORT"])} if component == "web" else set()), component


def test_workers_fetch_inputs_through_the_web_service(docs: list[Doc]) -> None:
    url = urlsplit(configmap_env(docs)["TESSERA_WEB_PUBLIC_URL"])
    (service,) = of_kind(docs, "Service").values()
    assert url.hostname == service["metadata"]["name"]
    assert url.port in {p["port"] for p in service["spec"]["ports"]}


def test_results_and_uploads_share_one_read_write_many_volume(docs: list[Doc]) -> None:
    (claim,) = of_kind(docs, "PersistentVolumeClaim").values()
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    env = configmap_env(docs)
    for component in ("web", "worker"):
        spec = deployments(docs)[component]["spec"]["template"]["spec"]
        (volume,) = [v for v in spec["volumes"] if "persistentVolumeClaim" in v]
        assert volume["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
        (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
        for path in (env["TESSERA_PATHS_MEDIA"], env["TESSERA_PATHS_UPLOADS"]):
            assert Path(path).is_relative_to(mount["mountPath"]), (component, path)
