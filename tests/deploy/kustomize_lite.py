"""A small kustomize renderer for exactly the features deploy/ uses, and nothing more.

Why it exists: `make test` must render every kustomization on any machine, and a kustomize
binary is not always at hand (kubectl embeds one, but it is not a package this project can
install from its registries). So the tests render with this module and, wherever `kubectl` is
installed, also check that it agrees with `kubectl kustomize` object for object.

Supported, as kustomize (v5) defines them:
- `resources`: YAML files (multi-document) and directories holding a kustomization.yaml;
- `labels`: `pairs` added to every object's metadata.labels (no selectors, no templates);
- `configMapGenerator`: `name` and `literals` only, with kustomize's content-hash name suffix,
  and references to the generated ConfigMap from pod templates rewritten to the hashed name;
- `patches`: `path` to a strategic-merge patch whose kind and name pick the target;
- `images`: `name` with `newName` and/or `newTag`, on the containers of pod templates.

Anything else (another field, a generator option, a patch directive, a strategic merge into a
list this module does not know) raises UnsupportedFeature instead of rendering something that
kustomize would not.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

KUSTOMIZATION_FIELDS = {
    "apiVersion",
    "kind",
    "resources",
    "labels",
    "configMapGenerator",
    "patches",
    "images",
}
WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}

# Strategic-merge keys of the lists we patch, by the path of field names from the pod spec
# (lists of a Service by the path from the object root). They are the patchMergeKey tags of the
# Kubernetes API types.
POD_SPEC_MERGE_KEYS = {
    ("containers",): "name",
    ("initContainers",): "name",
    ("volumes",): "name",
    ("containers", "env"): "name",
    ("containers", "volumeMounts"): "mountPath",
    ("containers", "ports"): "containerPort",
    ("initContainers", "env"): "name",
    ("initContainers", "volumeMounts"): "mountPath",
}
SERVICE_MERGE_KEYS: dict[tuple[str, ...], str] = {("spec", "ports"): "port"}
# Lists without a merge strategy in the API types: a patch replaces them whole.
ATOMIC_LISTS = {
    "volumeClaimTemplates",
    "accessModes",
    "args",
    "command",
    "drop",
    "add",
    "envFrom",
}


class UnsupportedFeature(Exception):
    """The kustomization uses something this renderer does not implement."""


@dataclass
class Resource:
    obj: Obj
    # Name before a generator's hash suffix, used to fix references (kustomize tracks the same).
    original_name: str
    generated: bool = False


def render(directory: Path) -> list[Obj]:
    """Render the kustomization in `directory` to a list of Kubernetes objects."""
    return [r.obj for r in _build(directory.resolve())]


def _build(directory: Path) -> list[Resource]:
    kfile = directory / "kustomization.yaml"
    spec = yaml.safe_load(kfile.read_text())
    unknown = set(spec) - KUSTOMIZATION_FIELDS
    if unknown:
        raise UnsupportedFeature(f"{kfile}: fields {sorted(unknown)}")
    if spec.get("kind") != "Kustomization":
        raise UnsupportedFeature(f"{kfile}: kind {spec.get('kind')!r}")

    resources: list[Resource] = []
    for entry in spec.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(_build(path))
        else:
            for doc in yaml.safe_load_all(path.read_text()):
                if doc is not None:
                    resources.append(Resource(doc, doc["metadata"]["name"]))

    for gen in spec.get("configMapGenerator", []):
        resources.append(_generate_configmap(gen, kfile))

    for patch in spec.get("patches", []):
        _apply_patch(resources, patch, directory)

    for group in spec.get("labels", []):
        if set(group) - {"pairs"}:
            raise UnsupportedFeature(f"{kfile}: labels options {sorted(set(group) - {'pairs'})}")
        for res in resources:
            res.obj.setdefault("metadata", {}).setdefault("labels", {}).update(group["pairs"])

    for image in spec.get("images", []):
        _apply_image(resources, image, kfile)

    # Generated names get their hash once the object is final, then references follow them.
    for res in resources:
        if res.generated and res.obj["metadata"]["name"] == res.original_name:
            res.obj["metadata"]["name"] = f"{res.original_name}-{_configmap_hash(res.obj)}"
    _fix_configmap_references(resources)
    _check_unique(resources, kfile)
    return resources


def _generate_configmap(gen: Obj, kfile: Path) -> Resource:
    if set(gen) - {"name", "literals"}:
        raise UnsupportedFeature(f"{kfile}: configMapGenerator options {sorted(gen)}")
    data: dict[str, str] = {}
    for literal in gen.get("literals", []):
        key, sep, value = literal.partition("=")
        if not sep:
            raise UnsupportedFeature(f"{kfile}: literal without '=': {literal!r}")
        data[key] = value
    obj = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": gen["name"]}}
    obj["data"] = data
    return Resource(obj, gen["name"], generated=True)


def _configmap_hash(obj: Obj) -> str:
    """kustomize's ConfigMap name suffix, as its api/hasher computes it.

    sha256 over Go's json.Marshal of {kind, name, data} (sorted keys, HTML characters escaped),
    its first ten hex digits with 0, 1, 3, a, e spelled g, h, k, m, t. The hasher looks the name
    up with the single field name "metadata/name", which never matches, so `name` is always ""
    there: the suffix depends on the data alone. (Checked against `kubectl kustomize` in
    test_deploy_manifests.py.)
    """
    encoded = json.dumps(
        {"kind": "ConfigMap", "name": "", "data": obj.get("data", {})},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    for char, escape in (("&", "\\u0026"), ("<", "\\u003c"), (">", "\\u003e")):
        encoded = encoded.replace(char, escape)
    digest = hashlib.sha256(encoded.encode()).hexdigest()[:10]
    return digest.translate(str.maketrans("013ae", "ghkmt"))


def _apply_patch(resources: list[Resource], patch: Obj, directory: Path) -> None:
    if set(patch) != {"path"}:
        raise UnsupportedFeature(f"patch options {sorted(patch)} (only `path` is supported)")
    body = yaml.safe_load((directory / patch["path"]).read_text())
    kind, name = body["kind"], body["metadata"]["name"]
    targets = [
        r
        for r in resources
        if r.obj["kind"] == kind
        and r.obj["apiVersion"] == body["apiVersion"]
        and r.original_name == name
    ]
    if len(targets) != 1:
        raise UnsupportedFeature(f"patch {patch['path']}: {len(targets)} targets for {kind}/{name}")
    target = targets[0].obj
    keys: dict[tuple[str, ...], str] = {}
    if kind in WORKLOAD_KINDS:
        keys = {("spec", "template", "spec", *k): v for k, v in POD_SPEC_MERGE_KEYS.items()}
    elif kind == "Pod":
        keys = {("spec", *k): v for k, v in POD_SPEC_MERGE_KEYS.items()}
    elif kind == "Service":
        keys = dict(SERVICE_MERGE_KEYS)
    _merge(target, body, (), keys)


def _merge(base: Obj, patch: Obj, path: tuple[str, ...], keys: dict[tuple[str, ...], str]) -> None:
    for key, value in patch.items():
        if key.startswith("$"):
            raise UnsupportedFeature(f"patch directive {key} at {'.'.join(path)}")
        here = (*path, key)
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, here, keys)
        elif isinstance(value, list) and isinstance(base.get(key), list):
            if here in keys:
                _merge_list(base[key], value, here, keys)
            elif key in ATOMIC_LISTS:
                base[key] = copy.deepcopy(value)
            else:
                raise UnsupportedFeature(f"strategic merge into list {'.'.join(here)}")
        else:
            base[key] = copy.deepcopy(value)


def _merge_list(
    base: list[Any], patch: list[Any], path: tuple[str, ...], keys: dict[tuple[str, ...], str]
) -> None:
    merge_key = keys[path]
    for item in patch:
        match = [b for b in base if b.get(merge_key) == item[merge_key]]
        if match:
            _merge(match[0], item, path, keys)
        else:
            base.append(copy.deepcopy(item))


def _pod_specs(obj: Obj) -> list[Obj]:
    if obj["kind"] in WORKLOAD_KINDS:
        return [obj["spec"]["template"]["spec"]]
    if obj["kind"] == "Pod":
        return [obj["spec"]]
    return []


def _containers(obj: Obj) -> list[Obj]:
    return [
        c
        for spec in _pod_specs(obj)
        for c in spec.get("initContainers", []) + spec.get("containers", [])
    ]


def _apply_image(resources: list[Resource], image: Obj, kfile: Path) -> None:
    if set(image) - {"name", "newName", "newTag"}:
        raise UnsupportedFeature(f"{kfile}: images options {sorted(image)}")
    for res in resources:
        for container in _containers(res.obj):
            ref = container["image"]
            name, tag = ref, None
            if "@" in ref:
                raise UnsupportedFeature(f"image by digest: {ref}")
            if ":" in ref.rsplit("/", 1)[-1]:
                name, tag = ref.rsplit(":", 1)
            if name != image["name"]:
                continue
            name = image.get("newName", name)
            tag = image.get("newTag", tag)
            container["image"] = f"{name}:{tag}" if tag else name


def _fix_configmap_references(resources: list[Resource]) -> None:
    current = {
        r.original_name: r.obj["metadata"]["name"]
        for r in resources
        if r.obj["kind"] == "ConfigMap"
    }

    def fix(holder: Obj | None) -> None:
        if holder is not None and holder.get("name") in current:
            holder["name"] = current[holder["name"]]

    for res in resources:
        for spec in _pod_specs(res.obj):
            for volume in spec.get("volumes", []):
                fix(volume.get("configMap"))
                for source in volume.get("projected", {}).get("sources", []):
                    fix(source.get("configMap"))
        for container in _containers(res.obj):
            for source in container.get("envFrom", []):
                fix(source.get("configMapRef"))
            for var in container.get("env", []):
                fix(var.get("valueFrom", {}).get("configMapKeyRef"))


def _check_unique(resources: list[Resource], kfile: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for res in resources:
        key = (res.obj["apiVersion"], res.obj["kind"], res.obj["metadata"]["name"])
        if key in seen:
            raise UnsupportedFeature(f"{kfile}: duplicate object {key}")
        seen.add(key)
