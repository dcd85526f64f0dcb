"""deploy/ (Kustomize): every manifest validates offline against the Kubernetes schemas, and the invariants
the deployment promises hold -- replicas, probes, a locked-down pod, autoscaling, disruption budget, zone
spread, the migration Job, secrets by reference, and a rules ConfigMap that rebuilds the real ruleset.

Each test runs on the base and the production overlay (``target``), rendered offline and, where kubectl is
installed, by ``kubectl kustomize`` (``renderer``); see conftest.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from service.rulebook.loader import load_ruleset
from service.settings import Settings

REPO = Path(__file__).resolve().parents[2]

Doc = dict[str, Any]

# Validated against the oldest Kubernetes these manifests support and the newest schema kubernetes-validate
# ships. The floor, 1.30 (deploy/README.md): nodeTaintsPolicy and matchLabelKeys in
# topologySpreadConstraints and the PDB's unhealthyPodEvictionPolicy are all on by default there.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())

APP_LABELS = {"app.kubernetes.io/name": "advisor", "app.kubernetes.io/instance": "advisor"}
COMPONENTS = {"server", "migration", "rules", "namespace"}
RUN_AS_USER = 65532
STAGE = "advisor.deploy/stage"  # label selecting what is applied before the rollout (deploy/README.md)

# Postgres connections the advisor may hold at most (deploy/README.md, "Sizing"): room for superuser and
# admin sessions below a db.t3/m-class instance's max_connections.
DB_CONNECTION_BUDGET = 80


# --- helpers ----------------------------------------------------------------------------------------------


def only(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in found]}"
    return found[0]


def deployment(docs: list[Doc]) -> Doc:
    return only(docs, "Deployment", "advisor")


def job(docs: list[Doc]) -> Doc:
    return only(docs, "Job", "advisor-migrate")


def hpa(docs: list[Doc]) -> Doc:
    return only(docs, "HorizontalPodAutoscaler", "advisor")


def pod_spec(workload: Doc) -> Doc:
    spec: Doc = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Doc) -> list[Doc]:
    spec = pod_spec(workload)
    found: list[Doc] = [*spec.get("initContainers", []), *spec["containers"]]
    return found


def main_container(workload: Doc) -> Doc:
    found: Doc = pod_spec(workload)["containers"][0]
    return found


def env_of(container: Doc) -> dict[str, Doc]:
    return {e["name"]: e for e in container.get("env", [])}


def workloads(docs: list[Doc]) -> Iterator[Doc]:
    yield deployment(docs)
    yield job(docs)


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def quantity(value: str | int) -> Decimal:
    """A Kubernetes resource quantity (``500m``, ``1``, ``256Mi``, ``1G``) as a number."""
    text = str(value)
    suffixes = {
        "m": Decimal("0.001"),
        "k": Decimal(10**3),
        "M": Decimal(10**6),
        "G": Decimal(10**9),
        "Ki": Decimal(2**10),
        "Mi": Decimal(2**20),
        "Gi": Decimal(2**30),
    }
    match = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", text)
    assert match and match.group(2) in ("", *suffixes), f"unparsed quantity {text!r}"
    return Decimal(match.group(1)) * suffixes.get(match.group(2), Decimal(1))


def container_port(container: Doc, port: str | int) -> int:
    """A probe's or Service's port (a number or a port name) as the container port number."""
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert numbers, f"no container port named {port!r}"
    number: int = numbers[0]
    return number


# --- schemas ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k8s_version", K8S_VERSIONS)
def test_every_document_validates_against_the_kubernetes_schemas(docs: list[Doc], k8s_version: str) -> None:
    """Strict schemas: unknown or misspelt fields are errors, and so is a kind without a schema."""
    problems = []
    for doc in docs:
        where = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        try:
            kubernetes_validate.validate(doc, k8s_version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            problems.append(f"{where}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            problems.append(f"{where}: {exc.message}")
    assert not problems, "\n".join(problems)


def test_the_kinds_deployed(docs: list[Doc], target: str) -> None:
    kinds = sorted(d["kind"] for d in docs)
    expected = [
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Job",
        *(["Namespace"] if target != "base" else []),
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    ]
    assert kinds == expected


def test_every_object_carries_the_recommended_labels(docs: list[Doc]) -> None:
    for doc in docs:
        labels = doc["metadata"].get("labels", {})
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        assert selects(APP_LABELS, labels), where
        assert labels.get("app.kubernetes.io/part-of") == "advisor", where
        assert labels.get("app.kubernetes.io/managed-by") == "kustomize", where
        assert labels.get("app.kubernetes.io/component") in COMPONENTS, where
    for workload in workloads(docs):
        pod_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert selects(APP_LABELS, pod_labels)
        assert (
            pod_labels["app.kubernetes.io/component"] == workload["metadata"]["labels"]["app.kubernetes.io/component"]
        )


def test_the_base_is_namespace_agnostic_and_production_sets_one(docs: list[Doc], target: str) -> None:
    namespaces = {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"}
    if target == "base":
        assert namespaces == {None}
    else:
        assert namespaces == {only(docs, "Namespace")["metadata"]["name"]}


# --- the Deployment ---------------------------------------------------------------------------------------


def test_at_least_three_replicas_and_rollouts_never_lose_capacity(docs: list[Doc]) -> None:
    spec = deployment(docs)["spec"]
    assert spec["replicas"] >= 3
    assert spec["replicas"] == hpa(docs)["spec"]["minReplicas"], "an apply must not scale below the HPA's floor"
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_server_runs_advisor_serve_with_one_worker_and_never_migrates(docs: list[Doc]) -> None:
    container = main_container(deployment(docs))
    assert [*container.get("command", []), *container.get("args", [])] == ["advisor", "serve", "--workers", "1"]
    env = env_of(container)
    assert env["ADVISOR_MIGRATE_ON_START"]["value"] == "false"
    assert env["ADVISOR_HOST"]["value"] == "0.0.0.0"
    assert container_port(container, "http") == int(env["ADVISOR_PORT"]["value"]) == 8000


def test_probes_readiness_on_readyz_liveness_on_healthz(docs: list[Doc]) -> None:
    container = main_container(deployment(docs))
    probes: dict[str, Doc] = {n: container.get(n) or {} for n in ("readinessProbe", "livenessProbe", "startupProbe")}
    assert all(probes.values()), f"missing probes: {[n for n, p in probes.items() if not p]}"
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    # Liveness must not depend on the database: a Postgres outage would restart every pod.
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert probes["startupProbe"]["httpGet"]["path"] == "/healthz"
    for name, probe in probes.items():
        assert container_port(container, probe["httpGet"]["port"]) == 8000, name
    # /readyz gives the database 2 s: the probe must wait longer than that.
    assert probes["readinessProbe"].get("timeoutSeconds", 1) > 2


def test_pods_run_non_root_on_a_read_only_root_filesystem(docs: list[Doc]) -> None:
    for workload in workloads(docs):
        spec = pod_spec(workload)
        pod_context = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False
        assert not any(spec.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
        assert not any("hostPath" in v for v in spec.get("volumes", []))
        for container in containers(workload):
            where = f"{workload['kind']}/{container['name']}"
            context = {**pod_context, **container.get("securityContext", {})}
            assert context.get("runAsNonRoot") is True, where
            assert context.get("runAsUser") == RUN_AS_USER, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("privileged", False) is False, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not context.get("capabilities", {}).get("add"), where
            assert context.get("seccompProfile", {}).get("type") == "RuntimeDefault", where
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            volumes = {v["name"]: v for v in spec.get("volumes", [])}
            assert "emptyDir" in volumes[mounts["/tmp"]], f"{where}: /tmp must be a writable emptyDir"


def test_run_as_user_is_the_image_user(docs: list[Doc]) -> None:
    users = re.findall(r"^USER\s+(\d+)", (REPO / "Dockerfile").read_text(encoding="utf-8"), re.MULTILINE)
    assert users, "the Dockerfile sets no numeric USER"
    assert int(users[-1]) == RUN_AS_USER


def test_every_container_has_resource_requests_and_limits(docs: list[Doc]) -> None:
    for workload in workloads(docs):
        for container in containers(workload):
            resources = container.get("resources", {})
            for resource in ("cpu", "memory"):
                request = resources.get("requests", {}).get(resource)
                limit = resources.get("limits", {}).get(resource)
                assert request and limit, f"{workload['kind']}/{container['name']}: {resource} request and limit"
                assert quantity(request) <= quantity(limit)


def test_shutdown_drains_endpoints_before_sigterm(docs: list[Doc]) -> None:
    spec = pod_spec(deployment(docs))
    grace = spec["terminationGracePeriodSeconds"]
    command = main_container(deployment(docs))["lifecycle"]["preStop"]["exec"]["command"]
    assert grace >= 30
    assert command[0] == "sleep"
    # Long enough for kube-proxy and load balancers to drop the pod, short enough to leave uvicorn time.
    assert 5 <= int(command[1]) <= grace - 20


def test_pods_spread_over_zones_and_nodes(docs: list[Doc]) -> None:
    workload = deployment(docs)
    pod_labels = workload["spec"]["template"]["metadata"]["labels"]
    constraints = {c["topologyKey"]: c for c in pod_spec(workload)["topologySpreadConstraints"]}
    zone = constraints["topology.kubernetes.io/zone"]
    assert zone["maxSkew"] == 1
    assert zone["whenUnsatisfiable"] == "DoNotSchedule"
    # In a zone outage the lost zone's nodes carry NoSchedule taints: honouring them drops that zone from
    # the count, so pods that die in the surviving zones can be replaced and the HPA can still add pods.
    # minDomains would do the opposite: with fewer eligible zones than it asks, nothing schedules.
    assert zone.get("nodeTaintsPolicy") == "Honor"
    assert "minDomains" not in zone
    host = constraints["kubernetes.io/hostname"]
    assert host["whenUnsatisfiable"] == "ScheduleAnyway"
    for constraint in (zone, host):
        assert selects(constraint["labelSelector"]["matchLabels"], pod_labels)
        assert constraint["labelSelector"]["matchLabels"] == workload["spec"]["selector"]["matchLabels"]


# --- autoscaling, disruption budget, Service --------------------------------------------------------------


def test_hpa_target_tracks_cpu_at_70_percent(docs: list[Doc]) -> None:
    autoscaler = hpa(docs)
    spec = autoscaler["spec"]
    assert autoscaler["apiVersion"] == "autoscaling/v2"
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "advisor"}
    assert spec["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}
    ]
    assert spec["minReplicas"] >= 3
    assert spec["maxReplicas"] > spec["minReplicas"]
    assert spec["behavior"]["scaleDown"]["stabilizationWindowSeconds"] >= 300
    # CPU utilisation is measured against the request: every container must have one (tested above).


def test_pdb_keeps_all_but_one_pod_through_voluntary_disruptions(docs: list[Doc]) -> None:
    budget = only(docs, "PodDisruptionBudget", "advisor")
    spec = budget["spec"]
    assert budget["apiVersion"] == "policy/v1"
    assert spec["selector"]["matchLabels"] == deployment(docs)["spec"]["selector"]["matchLabels"]
    min_replicas = hpa(docs)["spec"]["minReplicas"]
    if "maxUnavailable" in spec:
        assert spec["maxUnavailable"] == 1
    else:
        # Below the floor, or node drains could never evict a pod.
        assert 2 <= spec["minAvailable"] < min_replicas


def test_service_sends_port_80_to_the_serving_pods_only(docs: list[Doc]) -> None:
    service = only(docs, "Service", "advisor")
    spec = service["spec"]
    assert spec.get("type", "ClusterIP") == "ClusterIP"
    (port,) = spec["ports"]
    assert port["port"] == 80
    assert container_port(main_container(deployment(docs)), port["targetPort"]) == 8000
    assert selects(spec["selector"], deployment(docs)["spec"]["template"]["metadata"]["labels"])
    assert not selects(spec["selector"], job(docs)["spec"]["template"]["metadata"]["labels"])


# --- migration Job, secrets, settings ---------------------------------------------------------------------


def test_migration_job_runs_advisor_db_upgrade_with_the_same_image_as_owner_granting_the_service_role(
    docs: list[Doc],
) -> None:
    migrate = job(docs)
    container = main_container(migrate)
    assert [*container.get("command", []), *container.get("args", [])] == ["advisor", "db", "upgrade"]
    assert container["image"] == main_container(deployment(docs))["image"]
    # Two roles, two URLs of one secret: the Job migrates as the owner and grants the service role, which the pods
    # connect as.
    owner = env_of(container)["ADVISOR_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    service = env_of(main_container(deployment(docs)))["ADVISOR_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert (owner, service) == ({"name": "advisor-db", "key": "owner-url"}, {"name": "advisor-db", "key": "url"})
    assert env_of(container)["ADVISOR_DATABASE_SERVICE_ROLE"]["value"] == "advisor_service"
    assert "ADVISOR_DATABASE_SERVICE_ROLE" not in env_of(main_container(deployment(docs)))
    assert pod_spec(migrate)["restartPolicy"] == "Never"
    assert migrate["spec"]["backoffLimit"] <= 6
    assert migrate["spec"]["activeDeadlineSeconds"] <= 1800
    assert migrate["metadata"]["annotations"]["advisor.deploy/run-before"] == "deployment/advisor"
    assert not selects(
        deployment(docs)["spec"]["selector"]["matchLabels"], migrate["spec"]["template"]["metadata"]["labels"]
    )


def test_the_pre_rollout_stage_holds_the_job_and_all_it_needs_and_nothing_that_serves(docs: list[Doc]) -> None:
    """``kubectl apply -l advisor.deploy/stage=pre-rollout`` must be enough to run the migration Job."""
    staged = {(d["kind"], d["metadata"]["name"]) for d in docs if d["metadata"]["labels"].get(STAGE) == "pre-rollout"}
    migrate = job(docs)
    needs = {("Job", migrate["metadata"]["name"]), ("ServiceAccount", pod_spec(migrate)["serviceAccountName"])}
    needs |= {("Namespace", d["metadata"]["name"]) for d in docs if d["kind"] == "Namespace"}
    needs |= {("ConfigMap", d["metadata"]["name"]) for d in docs if d["kind"] == "ConfigMap"}
    assert staged == needs
    assert "Deployment" not in {kind for kind, _ in staged}


def test_secrets_are_referenced_never_inlined(docs: list[Doc]) -> None:
    assert not [d for d in docs if d["kind"] == "Secret"]
    for workload in workloads(docs):
        env = env_of(main_container(workload))
        key = "owner-url" if workload["kind"] == "Job" else "url"
        assert env["ADVISOR_DATABASE_URL"] == {
            "name": "ADVISOR_DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": "advisor-db", "key": key}},
        }
        for name, entry in env.items():
            if "value" in entry:
                assert "://" not in entry["value"], f"{name} holds a URL literally"
                assert not re.search(r"KEY|TOKEN|PASSWORD|SECRET|DATABASE_URL", name), f"{name} is set literally"
    api_keys = env_of(main_container(deployment(docs)))["ADVISOR_API_KEYS"]
    assert api_keys["valueFrom"]["secretKeyRef"] == {"name": "advisor-api-keys", "key": "keys", "optional": False}


def test_advisor_environment_names_real_settings_with_valid_values(docs: list[Doc]) -> None:
    """A misspelt ADVISOR_* variable is silently ignored by the service: catch it here."""
    known = set(Settings.model_fields)
    for workload in workloads(docs):
        literal: dict[str, str] = {}
        for name, entry in env_of(main_container(workload)).items():
            if not name.startswith("ADVISOR_"):
                continue
            field = name.removeprefix("ADVISOR_").lower()
            assert field in known, f"{name} is no setting of service/settings.py"
            if "value" in entry and field in Settings.model_fields:
                literal[field] = entry["value"]
        Settings.model_validate(literal)  # raises on a value out of range (pool size, port, log level, ...)


def test_postgres_connections_fit_the_budget(docs: list[Doc]) -> None:
    """Connections = pods x ADVISOR_DB_POOL_SIZE (no overflow), at the HPA's maximum plus the rollout surge."""
    workload = deployment(docs)
    env = env_of(main_container(workload))
    pool_size = int(env["ADVISOR_DB_POOL_SIZE"]["value"]) if "ADVISOR_DB_POOL_SIZE" in env else Settings().db_pool_size
    surge = int(workload["spec"]["strategy"]["rollingUpdate"]["maxSurge"])
    migration = 1  # the Job's single unpooled connection
    assert (hpa(docs)["spec"]["maxReplicas"] + surge) * pool_size + migration <= DB_CONNECTION_BUDGET


# --- the rules ConfigMap ----------------------------------------------------------------------------------


def test_rules_config_map_mounts_the_repository_ruleset(docs: list[Doc], tmp_path: Path) -> None:
    """Materialise the mounted volume from the rendered ConfigMap: it must load as rules/ itself."""
    workload = deployment(docs)
    container = main_container(workload)
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "rules"]
    assert mount["mountPath"] == env_of(container)["ADVISOR_RULES_DIR"]["value"] == "/app/rules"
    assert mount.get("readOnly") is True
    (volume,) = [v for v in pod_spec(workload)["volumes"] if v["name"] == "rules"]
    config_map = only(docs, "ConfigMap", volume["configMap"]["name"])
    assert config_map["metadata"]["name"].startswith("advisor-rules")
    data: dict[str, str] = config_map["data"]
    items = volume["configMap"]["items"]
    assert sorted(i["key"] for i in items) == sorted(data), "every key mounted, no item without a key"
    for item in items:
        path = tmp_path / item["path"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data[item["key"]], encoding="utf-8")
    mounted, repository = load_ruleset(tmp_path), load_ruleset(REPO / "rules")
    assert (mounted.version, mounted.sha256) == (repository.version, repository.sha256)
    # kubectl apply --server-side: an object (and so a ConfigMap) is stored whole in etcd, 1 MiB at most.
    assert len(yaml.safe_dump(config_map).encode()) < 1_000_000


# --- images and renders -----------------------------------------------------------------------------------


def test_production_pins_a_released_image(renders: Callable[[str, str], list[Doc]]) -> None:
    docs = renders("production", "offline")
    images = {c["image"] for w in workloads(docs) for c in containers(w)}
    (image,) = images
    name, _, tag = image.rpartition(":")
    assert "@sha256:" in image or (name and tag and tag != "latest"), image
    assert "/" in image, "a registry path, not the local build's name"


def test_offline_render_matches_kubectl_kustomize(target: str, renders: Callable[[str, str], list[Doc]]) -> None:
    """The offline renderer is only trusted while it agrees with the real kustomize."""
    real, offline = renders(target, "kubectl"), renders(target, "offline")
    # kustomize appends a content hash to a generated ConfigMap's name and rewrites its references.
    hashed = {
        d["metadata"]["name"]: re.sub(r"-[a-z0-9]{10}$", "", d["metadata"]["name"])
        for d in real
        if d["kind"] == "ConfigMap"
    }

    def unhash(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: unhash(v) for k, v in node.items()}
        if isinstance(node, list):
            return [unhash(v) for v in node]
        return hashed.get(node, node) if isinstance(node, str) else node

    def key(doc: Doc) -> tuple[str, str]:
        return doc["kind"], doc["metadata"]["name"]

    assert sorted((unhash(d) for d in real), key=key) == sorted(offline, key=key)
