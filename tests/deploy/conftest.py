"""Rendering deploy/ for the manifest tests: offline (always) and with `kubectl kustomize` (when installed).

The offline renderer models exactly the kustomize features deploy/ uses -- ``resources`` (files and
directories), ``configMapGenerator`` (``files`` with ``key=path``, ``options.labels``), JSON 6902
``patches`` targeted by kind and name, ``replicas``, ``images`` and ``namespace`` -- and refuses anything
else, so a manifest change that needs more kustomize fails here instead of being checked half-way. Where
kubectl is installed the real kustomize renders too, and a test checks that both renders agree.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"

# Every kustomization under deploy/, by the name the tests use.
TARGETS = {"base": DEPLOY / "base", "production": DEPLOY / "overlays" / "production"}

# The rules ConfigMap reads ../../rules, outside deploy/base: kustomize needs its load restrictor lifted.
KUBECTL_KUSTOMIZE = ("kustomize", "--load-restrictor", "LoadRestrictionsNone")

Doc = dict[str, Any]

_SUPPORTED_FIELDS = {
    "apiVersion",
    "kind",
    "namespace",
    "resources",
    "configMapGenerator",
    "patches",
    "replicas",
    "images",
}
_CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PriorityClass", "StorageClass"}


class UnsupportedKustomization(Exception):
    """deploy/ uses a kustomize feature the offline renderer does not model."""


def render_offline(directory: Path) -> list[Doc]:
    """The documents ``kustomize build directory`` produces, for the subset of kustomize deploy/ uses.

    Generated ConfigMaps keep their plain name (kustomize appends a content hash to the name and to
    every reference; the tests look names up through the references, so both forms work).
    """
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text(encoding="utf-8"))
    unknown = set(kustomization) - _SUPPORTED_FIELDS
    if unknown:
        raise UnsupportedKustomization(f"{directory}: fields {sorted(unknown)} are not modelled offline")
    docs: list[Doc] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            docs.extend(render_offline(path))
        else:
            docs.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None)
    docs.extend(_config_map(directory, generator) for generator in kustomization.get("configMapGenerator", []))
    for patch in kustomization.get("patches", []):
        _apply_patch(docs, patch)
    for replicas in kustomization.get("replicas", []):
        targets = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == replicas["name"]]
        if not targets:
            raise UnsupportedKustomization(f"replicas: no Deployment named {replicas['name']}")
        for doc in targets:
            doc["spec"]["replicas"] = replicas["count"]
    for image in kustomization.get("images", []):
        for doc in docs:
            _set_image(doc, image)
    if "namespace" in kustomization:
        for doc in docs:
            if doc["kind"] not in _CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = kustomization["namespace"]
    return docs


def _config_map(directory: Path, generator: Doc) -> Doc:
    unknown = set(generator) - {"name", "files", "options"} or set(generator.get("options", {})) - {"labels"}
    if unknown:
        raise UnsupportedKustomization(f"configMapGenerator {generator['name']}: {sorted(unknown)}")
    data: dict[str, str] = {}
    for entry in generator["files"]:
        key, _, source = entry.rpartition("=")
        path = directory / source
        data[key or path.name] = path.read_text(encoding="utf-8")
    metadata: Doc = {"name": generator["name"]}
    if labels := generator.get("options", {}).get("labels"):
        metadata["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": data}


def _apply_patch(docs: list[Doc], patch: Doc) -> None:
    target = patch.get("target", {})
    if set(patch) != {"target", "patch"} or set(target) - {"kind", "name"}:
        raise UnsupportedKustomization(f"only inline JSON 6902 patches targeted by kind and name: {patch}")
    operations = yaml.safe_load(patch["patch"])
    if not isinstance(operations, list):
        raise UnsupportedKustomization(f"not a JSON 6902 patch (a strategic merge patch?): {patch['patch']}")
    matched = [
        d
        for d in docs
        if d["kind"] == target.get("kind", d["kind"])
        and d["metadata"]["name"] == target.get("name", d["metadata"]["name"])
    ]
    if not matched:
        raise UnsupportedKustomization(f"patch target {target} matches no resource")
    for doc in matched:
        for operation in operations:
            _apply_operation(doc, operation)


def _apply_operation(doc: Doc, operation: Doc) -> None:
    op, pointer = operation["op"], operation["path"]
    if op not in ("add", "replace", "remove"):
        raise UnsupportedKustomization(f"JSON 6902 op {op!r} is not modelled offline")
    keys = [part.replace("~1", "/").replace("~0", "~") for part in pointer.split("/")[1:]]
    parent: Any = doc
    for key in keys[:-1]:
        parent = parent[int(key)] if isinstance(parent, list) else parent[key]
    last = keys[-1]
    if isinstance(parent, list):
        if op == "add":
            parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(operation["value"]))
        elif op == "replace":
            parent[int(last)] = copy.deepcopy(operation["value"])
        else:
            del parent[int(last)]
        return
    if op != "add" and last not in parent:
        raise UnsupportedKustomization(f"JSON 6902 {op} of missing path {pointer}")
    if op == "remove":
        del parent[last]
    else:
        parent[last] = copy.deepcopy(operation["value"])


def _set_image(node: Any, image: Doc) -> None:
    """kustomize's image transformer: every ``containers[].image``/``initContainers[].image`` named so."""
    if isinstance(node, list):
        for item in node:
            _set_image(item, image)
        return
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        if key in ("containers", "initContainers") and isinstance(value, list):
            for container in value:
                current = container.get("image", "")
                name = current.split("@", 1)[0]
                if ":" in name.rsplit("/", 1)[-1]:
                    name = name.rsplit(":", 1)[0]
                if name == image["name"]:
                    new = image.get("newName", name)
                    if "digest" in image:
                        container["image"] = f"{new}@{image['digest']}"
                    elif "newTag" in image:
                        container["image"] = f"{new}:{image['newTag']}"
                    else:
                        container["image"] = new + current[len(name) :]
        _set_image(value, image)


def kubectl() -> str | None:
    return shutil.which("kubectl")


def render_kubectl(directory: Path) -> list[Doc]:
    """``kubectl kustomize`` (kustomize built into kubectl), as the deploy README runs it."""
    executable = kubectl()
    assert executable is not None
    done = subprocess.run(
        [executable, *KUBECTL_KUSTOMIZE, str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"kubectl kustomize {directory} failed:\n{done.stderr}"
    return [d for d in yaml.safe_load_all(done.stdout) if d is not None]


_RENDERERS: dict[str, Callable[[Path], list[Doc]]] = {"offline": render_offline, "kubectl": render_kubectl}
_cache: dict[tuple[str, str], list[Doc]] = {}


def render(target: str, renderer: str) -> list[Doc]:
    """The rendered documents of ``target`` (a TARGETS key), rendered once per session; a fresh copy."""
    if renderer == "kubectl" and kubectl() is None:
        pytest.skip("kubectl is not installed: only the offline render is checked")
    key = (target, renderer)
    if key not in _cache:
        _cache[key] = _RENDERERS[renderer](TARGETS[target])
    return copy.deepcopy(_cache[key])


@pytest.fixture(params=list(TARGETS))
def target(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=list(_RENDERERS))
def renderer(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def docs(target: str, renderer: str) -> list[Doc]:
    """Every document of one kustomization, rendered one way (ids like ``production-kubectl``)."""
    return render(target, renderer)


@pytest.fixture
def renders() -> Callable[[str, str], list[Doc]]:
    """``render(target, renderer)``, for tests that compare renders."""
    return render
