"""The Helm chart (deploy/helm/vtts), rendered and linted by Helm's own library, every object checked against
Kubernetes' schemas, and the promises the chart makes checked against the server's code: probe paths are
routes the frontend has, the grace period covers the configured drain, the HPA's metric is one /metrics
exports, keys never sit in the ConfigMap, the container runs non-root on a read-only root.

No cluster and no helm binary: ``helm-python-sdk`` embeds Helm's Go library; the tests skip without it.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

try:  # the native library may also fail to load (another libc or CPU architecture than the wheel's)
    import helm_python as helm
    import kubernetes_validate as kv
    import yaml
    from helm_python import _native
except (ImportError, OSError) as exc:  # pragma: no cover
    pytest.skip(f"chart tests need the test extra's helm-python-sdk and kubernetes-validate ({exc})",
                allow_module_level=True)

from vtts import config as cfg  # noqa: E402
from vtts.frontend.metrics import Metrics  # noqa: E402

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "vtts"
ADAPTER_VALUES = ROOT / "deploy" / "helm" / "prometheus-adapter-values.yaml"
#: two recent Kubernetes versions whose schemas kubernetes-validate bundles
KUBE_VERSIONS = ("1.33.0", "1.36.0")
SERVICE_MONITOR = "monitoring.coreos.com/v1/ServiceMonitor"
#: custom resources: no schema in kubernetes-validate, checked by the tests below instead
CRD_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}
VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    **{p.stem.removesuffix("-values"): yaml.safe_load(p.read_text()) for p in sorted((CHART / "ci").glob("*.yaml"))},
}


def render(values: dict[str, Any] | None = None, *, kube_version: str = "1.36.0",
           api_versions: tuple[str, ...] = (SERVICE_MONITOR,)) -> dict[str, list[dict[str, Any]]]:
    """Rendered objects by kind, as ``helm template --kube-version --api-versions`` would make them.

    ``Chart.render`` does not pass capabilities through, so this calls the same native entry point with
    them (the cluster's API versions decide whether a ServiceMonitor is made)."""
    with helm.Chart.load(CHART) as chart:
        opts = {"name": "rel", "namespace": "tts", "kube_version": f"v{kube_version}",
                "api_versions": list(api_versions)}
        out = json.loads(_native.call_string("helm_render", chart._raw(), json.dumps(values or {}),
                                             json.dumps(opts)))
    objects: dict[str, list[dict[str, Any]]] = {}
    for name, text in out.items():
        if name.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.setdefault(doc["kind"], []).append(doc)
    return objects


def one(objects: dict[str, list[dict[str, Any]]], kind: str) -> dict[str, Any]:
    (obj,) = objects[kind]
    return obj


def container(objects: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    (c,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def server_config(objects: dict[str, list[dict[str, Any]]]) -> cfg.Config:
    """The ConfigMap's TOML, loaded by vTTS's own config loader (so it is a config the server accepts)."""
    return cfg.parse(tomllib.loads(one(objects, "ConfigMap")["data"]["vtts.toml"]))


def exported_metric_names() -> set[str]:
    """Metric names the server's /metrics exposes (the ``# TYPE`` lines of the frontend's registry)."""
    text = Metrics().render().decode()
    return set(re.findall(r"^# TYPE (\S+) ", text, re.M))


@pytest.fixture(scope="module", params=sorted(VALUE_SETS))
def value_set(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param, VALUE_SETS[request.param]


# -- Helm and Kubernetes schemas -------------------------------------------------------------------------------

def test_at_least_the_value_sets_the_issue_asks_for() -> None:
    assert {"default", "cpu", "gpu", "autoscaling", "ingress-networkpolicy"} <= set(VALUE_SETS)


def test_helm_lint_is_clean(value_set: tuple[str, dict[str, Any]]) -> None:
    """``helm lint --strict``: no warning and no error (an info about the missing icon is all)."""
    report = helm.lint(CHART, value_set[1], strict=True, namespace="tts")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_object_is_valid_for_kubernetes(value_set: tuple[str, dict[str, Any]], kube_version: str) -> None:
    """Every rendered object against that version's strict schema (unknown fields are errors)."""
    objects = render(value_set[1], kube_version=kube_version)
    assert {"Deployment", "Service", "ConfigMap"} <= set(objects)
    for kind, docs in objects.items():
        for doc in docs:
            if (doc["apiVersion"], kind) in CRD_KINDS:
                continue
            try:
                kv.validate(doc, kube_version, strict=True)
            except kv.ValidationError as exc:
                pytest.fail(f"{kind} {doc['metadata']['name']}: {exc.message} at {list(exc.absolute_path)}",
                            pytrace=False)


def test_the_config_map_is_a_config_the_server_loads(value_set: tuple[str, dict[str, Any]]) -> None:
    """Each value set's TOML passes vTTS's own loader (unknown fields and bad values would fail here)."""
    objects = render(value_set[1])
    config = server_config(objects)
    assert config.models
    run_mount = {m["name"]: m["mountPath"] for m in container(objects)["volumeMounts"]}["run"]
    assert config.server.run_dir in ("", run_mount)


# -- what the pod promises ---------------------------------------------------------------------------------------

def test_one_vtts_serve_per_pod_on_the_mounted_config() -> None:
    objects = render()
    c = container(objects)
    assert c["command"] == ["vtts"] and c["args"][:3] == ["serve", "--config", "/etc/vtts/vtts.toml"]
    assert c["args"][c["args"].index("--host") + 1] == "0.0.0.0"
    port = int(c["args"][c["args"].index("--port") + 1])
    assert c["ports"] == [{"name": "http", "containerPort": port, "protocol": "TCP"}]
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["config"]["mountPath"] == "/etc/vtts" and mounts["config"]["readOnly"]
    volumes = {v["name"]: v for v in one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == one(objects, "ConfigMap")["metadata"]["name"]


def test_probes_point_at_routes_the_server_has(monkeypatch: pytest.MonkeyPatch) -> None:
    """liveness /health, readiness and startup /ready: GET routes of the real frontend app (built without its
    sockets: only the route table is read)."""
    from vtts.frontend import app as frontend_app
    from vtts.frontend.state import EXECUTOR

    monkeypatch.setattr(frontend_app, "WorkerPool", lambda *a, **k: SimpleNamespace(ctx=None))
    monkeypatch.setattr(frontend_app, "SupervisorLink", lambda *a, **k: SimpleNamespace())
    app = frontend_app.build_app(cfg.load(None), "ipc://unused", "ipc://unused")
    app[EXECUTOR].shutdown()
    routes = {r.resource.canonical for r in app.router.routes() if r.method == "GET"}
    c = container(render())
    paths = {probe: c[probe]["httpGet"]["path"] for probe in ("livenessProbe", "readinessProbe", "startupProbe")}
    assert paths == {"livenessProbe": "/health", "readinessProbe": "/ready", "startupProbe": "/ready"}
    assert set(paths.values()) <= routes
    assert all(c[probe]["httpGet"]["port"] == "http" for probe in paths)
    startup = c["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # model loading, minutes on a GPU


@pytest.mark.parametrize("timeouts", [{}, {"drain_timeout_s": 90.0, "shutdown_timeout_s": 20.0},
                                      {"drain_timeout_s": 5.0, "shutdown_timeout_s": 75.0}])
def test_grace_period_covers_prestop_and_the_drain(timeouts: dict[str, float]) -> None:
    """SIGTERM comes after preStop's sleep; the streams then get the config's timeouts: the kubelet must not
    SIGKILL before both have passed."""
    server = "\n".join(f"{k} = {v}" for k, v in timeouts.items())
    toml = f'[server]\nrun_dir = "/run/vtts"\n{server}\n[[models]]\nid = "j"\nengine = "piper"\n'
    objects = render({"config": toml})
    config = server_config(objects)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    (sleep,) = [int(x) for x in container(objects)["lifecycle"]["preStop"]["exec"]["command"][1:]]
    assert sleep > 0
    need = sleep + max(config.server.drain_timeout_s, config.server.shutdown_timeout_s)
    assert pod["terminationGracePeriodSeconds"] >= need
    assert pod["terminationGracePeriodSeconds"] >= config.server.drain_timeout_s


def test_a_grace_period_shorter_than_the_drain_is_refused() -> None:
    with pytest.raises(helm.HelmError, match="terminationGracePeriodSeconds=30 is shorter"):
        render({"terminationGracePeriodSeconds": 30})
    assert one(render({"terminationGracePeriodSeconds": 120}), "Deployment")[
        "spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 120


def test_keys_come_from_secrets_and_never_sit_in_the_config_map() -> None:
    objects = render(VALUE_SETS["cpu"])
    assert "Secret" not in objects
    env = {e["name"]: e for e in container(objects)["env"]}
    assert env["VTTS_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "vtts-keys", "key": "api-keys"}
    assert env["VTTS_ADMIN_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "vtts-keys", "key": "admin-keys"}
    assert all("value" not in env[k] for k in ("VTTS_API_KEY", "VTTS_ADMIN_KEY"))
    config = tomllib.loads(one(objects, "ConfigMap")["data"]["vtts.toml"])
    assert not config["server"].get("api_keys") and not config["server"].get("admin_keys")
    # by default no key at all: no variable, so /admin stays loopback-only
    assert not {"VTTS_API_KEY", "VTTS_ADMIN_KEY"} & {e["name"] for e in container(render())["env"]}


@pytest.mark.parametrize("field", ["api_keys", "admin_keys"])
def test_a_key_written_into_the_config_is_refused(field: str) -> None:
    with pytest.raises(helm.HelmError, match="existingSecret"):
        render({"config": f'[server]\n{field} = ["sk-live-123"]\n[[models]]\nid = "j"\nengine = "piper"\n'})


def test_the_images_user_is_the_charts_user() -> None:
    """The chart runs the pod as a fixed uid; the images must create their user with it, or the home and
    data directories they own are not the pod's to write."""
    pod = one(render(), "Deployment")["spec"]["template"]["spec"]["securityContext"]
    for dockerfile in ("Dockerfile", "Dockerfile.cuda"):
        text = (ROOT / dockerfile).read_text()
        uid, gid = (re.search(rf"useradd [^\n]*--{flag} (\d+)", text) for flag in ("uid", "gid"))
        assert uid and gid, f"{dockerfile} creates its user without a fixed uid and gid"
        assert re.search(rf"groupadd [^\n]*--gid {gid.group(1)}\b", text), f"{dockerfile}: group not created"
        assert (int(uid.group(1)), int(gid.group(1))) == (pod["runAsUser"], pod["runAsGroup"]), dockerfile


def test_security_context_non_root_read_only_no_capabilities(value_set: tuple[str, dict[str, Any]]) -> None:
    objects = render(value_set[1])
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
    assert pod["automountServiceAccountToken"] is False
    for c in pod["containers"] + pod.get("initContainers", []):
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"]
        assert sc.get("privileged") is not True
    # what the server writes: the run directory and $TMPDIR, both emptyDirs
    c = container(objects)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    env = {e["name"]: e.get("value") for e in c["env"]}
    run_dir = server_config(objects).server.run_dir or env["TMPDIR"]
    assert "emptyDir" in volumes[mounts[run_dir]] and "emptyDir" in volumes[mounts[env["TMPDIR"]]]


# -- autoscaling and monitoring ----------------------------------------------------------------------------------

def test_hpa_scales_on_a_metric_the_server_exports_with_cpu_beside_it() -> None:
    hpa = one(render(VALUE_SETS["autoscaling"]), "HorizontalPodAutoscaler")
    pods = [m["pods"] for m in hpa["spec"]["metrics"] if m["type"] == "Pods"]
    assert pods and {p["metric"]["name"] for p in pods} <= exported_metric_names()
    assert all(p["target"]["type"] == "AverageValue" for p in pods)
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"] == ["cpu"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == one(render(VALUE_SETS["autoscaling"]), "Deployment")[
        "metadata"]["name"]
    assert "replicas" not in one(render(VALUE_SETS["autoscaling"]), "Deployment")["spec"]


def test_hpa_falls_back_to_cpu_when_the_adapter_metric_is_off() -> None:
    hpa = one(render({"autoscaling": {"enabled": True}}), "HorizontalPodAutoscaler")
    assert [m["type"] for m in hpa["spec"]["metrics"]] == ["Resource"]
    assert "HorizontalPodAutoscaler" not in render()


def test_chart_default_metric_and_adapter_rules_name_exported_metrics() -> None:
    """The values' default load metric and every series the adapter rules read are real /metrics names, and
    the adapter serves the name the HPA asks for."""
    exported = exported_metric_names()
    with helm.Chart.load(CHART) as chart:
        default_name = chart.values["autoscaling"]["loadMetric"]["name"]
    rules = yaml.safe_load(ADAPTER_VALUES.read_text())["rules"]["custom"]
    series = {re.match(r"([a-zA-Z_:][a-zA-Z0-9_:]*)", r["seriesQuery"].strip("'\"")).group(1) for r in rules}
    served = {r["name"]["as"] for r in rules}
    assert series <= exported and served <= exported
    assert default_name in served and default_name in exported


def test_service_monitor_only_where_the_crd_exists() -> None:
    values = {"serviceMonitor": {"enabled": True}}
    assert "ServiceMonitor" not in render(values, api_versions=())
    monitor = one(render(values), "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics" and endpoint["port"] == "http"
    service = one(render(values), "Service") if len(render(values)["Service"]) == 1 else next(
        s for s in render(values)["Service"] if s["spec"].get("clusterIP") != "None")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert "ServiceMonitor" not in render()


def test_pod_disruption_budget_selects_the_pods() -> None:
    objects = render()
    pdb = one(objects, "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == one(objects, "Deployment")["spec"]["selector"]["matchLabels"]
    assert one(render(VALUE_SETS["autoscaling"]), "PodDisruptionBudget")["spec"] == {
        "minAvailable": 1, "selector": pdb["spec"]["selector"]}


# -- GPU, volumes, network ------------------------------------------------------------------------------------------

def test_gpu_mode_requests_the_gpu_on_gpu_nodes() -> None:
    objects = render(VALUE_SETS["gpu"])
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert container(objects)["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    assert container(objects)["image"].endswith(":cuda")
    assert all(m.device.startswith("cuda") for m in server_config(objects).models)
    other = render({**VALUE_SETS["gpu"], "gpu": {"enabled": True, "resourceName": "amd.com/gpu", "count": 2}})
    assert container(other)["resources"]["limits"]["amd.com/gpu"] == 2
    # CPU only by default: no GPU anywhere
    assert "gpu" not in json.dumps(container(render())["resources"])


def test_gpu_switch_and_model_devices_must_agree() -> None:
    with pytest.raises(helm.HelmError, match="gpu.enabled is false"):
        render({"config": '[[models]]\nid = "k"\nengine = "kokoro"\ndevice = "cuda:0"\n'})
    with pytest.raises(helm.HelmError, match="GPU would sit idle"):
        render({"gpu": {"enabled": True}})


@pytest.mark.parametrize("source, check", [
    ("pvc", lambda v: v["persistentVolumeClaim"] == {"claimName": "vtts-models", "readOnly": True}),
    ("hostPath", lambda v: v["hostPath"] == {"path": "/srv/vtts/models", "type": "Directory"}),
    ("image", lambda v: "emptyDir" in v),
])
def test_weights_volume_options(source: str, check: Any) -> None:
    values = {"weights": {"source": source, "pvc": {"existingClaim": "vtts-models"},
                          "image": {"repository": "registry.example.com/w", "tag": "1"}}}
    objects = render(values)
    pod = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert check({v["name"]: v for v in pod["volumes"]}["weights"])
    mount = {m["name"]: m for m in container(objects)["volumeMounts"]}["weights"]
    assert mount == {"name": "weights", "mountPath": "/models", "readOnly": True}
    if source == "image":
        (init,) = pod["initContainers"]
        assert init["image"] == "registry.example.com/w:1"
        assert init["command"] == ["cp", "-R", "/models/.", "/weights/"]
        assert init["volumeMounts"] == [{"name": "weights", "mountPath": "/weights"}]
    else:
        assert "initContainers" not in pod
    assert "weights" not in {v["name"] for v in one(render(), "Deployment")["spec"]["template"]["spec"]["volumes"]}
    with pytest.raises(helm.HelmError, match="weights.source must be"):
        render({"weights": {"source": "s3"}})


def test_voice_library_claim() -> None:
    objects = render(VALUE_SETS["cpu"])
    pvc = one(objects, "PersistentVolumeClaim")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    volumes = {v["name"]: v for v in one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]}
    assert volumes["data"]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    existing = render({"persistence": {"enabled": True, "existingClaim": "voices"}})
    assert "PersistentVolumeClaim" not in existing


def test_headless_service_is_what_admin_all_resolves() -> None:
    objects = render()
    services = {s["metadata"]["name"]: s for s in objects["Service"]}
    headless = services["rel-vtts-headless"]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["selector"] == services["rel-vtts"]["spec"]["selector"]
    env = {e["name"]: e.get("value") for e in container(objects)["env"]}
    assert env["VTTS_ADMIN_SERVICE"] == "rel-vtts-headless.tts.svc"
    assert int(env["VTTS_ADMIN_PORT"]) == headless["spec"]["ports"][0]["port"]


def test_network_policy_opens_the_port_only_to_allowed_namespaces_and_the_release() -> None:
    objects = render(VALUE_SETS["ingress-networkpolicy"])
    policy = one(objects, "NetworkPolicy")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["podSelector"]["matchLabels"] == one(objects, "Deployment")["spec"]["selector"][
        "matchLabels"]
    (rule,) = policy["spec"]["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    namespaces = {p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                  for p in rule["from"] if "namespaceSelector" in p}
    assert namespaces == {"tts-ops", "tts", "ingress-nginx", "monitoring"}
    assert all(p.get("namespaceSelector") or p.get("podSelector") for p in rule["from"])
    assert "NetworkPolicy" not in render()


def test_ingress_routes_v1_only() -> None:
    """/admin and /metrics stay inside the cluster: the Ingress routes the OpenAI API alone."""
    ingress = one(render(VALUE_SETS["ingress-networkpolicy"]), "Ingress")
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert paths == ["/v1"]
    assert ingress["spec"]["tls"][0]["secretName"] == "tts-example-tls"
