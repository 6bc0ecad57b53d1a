"""The product across hosts: two web hosts, a worker host and a services host.

Each host is a network namespace of its own on a bridge, with its own
loopback, and its processes run in a mount namespace of their own: a private
tmpfs on /tmp (the host's only writable directory: its var directory, its
metrics files, HOME and TMPDIR), a private /dev/shm, and the source tree and
its virtualenv mounted read-only. So nothing is shared but the network: a
process that counted on another host's loopback (a Redis on 127.0.0.1, say)
or on a disk another host writes (media, metrics, a broker directory) fails.

The services host runs a PostgreSQL, a Redis and moto's S3 server of the
test's own. The web hosts run gunicorn with the production settings; the
worker host runs a Celery worker and the server that serves its metrics.
Through both web hosts the test signs in, uploads, follows the jobs to
success on the worker host, downloads files and thumbnails through the other
web host, revokes a token through one and sees it refused at the other on the
next request, counts a rate limit exactly across both, and scrapes each host.

Needs root and `ip netns` (iproute2): skipped, saying so, elsewhere.
"""

from __future__ import annotations

import io
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from django.conf import settings
from PIL import Image as Picture
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration

BASE_DIR = Path(settings.BASE_DIR)
IP = shutil.which("ip") or "/usr/sbin/ip"
STATIC_FILES = "django.contrib.staticfiles.storage.StaticFilesStorage"
VENV = Path(sys.executable).parent.parent
METRICS_TOKEN = secrets.token_urlsafe(24)
PASSWORD = secrets.token_urlsafe(18)
BUCKET = "vantage-media"
HOSTS = ("services", "web1", "web2", "worker")
# The last byte of each host's address on the test's own /24.
OCTET = {"services": 10, "web1": 21, "web2": 22, "worker": 31, "client": 100}
STARTUP_SECONDS = 90


def _run(*command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=check)


def _netns_usable() -> str | None:
    """Return why network namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to make network namespaces"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    probe = f"vops-probe-{os.getpid()}"
    made = _run("ip", "netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    _run("ip", "netns", "delete", probe, check=False)
    return None


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(path) for path in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None
    )
    if found is None:
        pytest.fail(f"{name} is missing: the services host needs it")
    return found


def _outside_tmp(path: Path) -> bool:
    return not path.resolve().is_relative_to("/tmp")


@dataclass
class Network:
    """A bridge in a namespace of its own, one host namespace per host, and the test's side."""

    token: str = field(default_factory=lambda: f"{os.getpid() % 100000}")
    subnet: str = ""
    made: list[str] = field(default_factory=list)
    client_link: str = ""

    def namespace(self, host: str) -> str:
        return f"vops-{self.token}-{host}"

    def address(self, host: str) -> str:
        return f"{self.subnet}.{OCTET[host]}"

    def create(self) -> None:
        taken = _run("ip", "-4", "-o", "addr").stdout + _run("ip", "-4", "route").stdout
        free = [n for n in range(200, 250) if f"10.254.{n}." not in taken]
        assert free, "no free /24 in 10.254.200-249 for the test hosts"
        self.subnet = f"10.254.{free[int(self.token) % len(free)]}"
        lan = self.namespace("lan")
        self._ns(lan)
        _run("ip", "netns", "exec", lan, "ip", "link", "add", "br0", "type", "bridge")
        _run("ip", "netns", "exec", lan, "ip", "link", "set", "br0", "up")
        for index, host in enumerate(HOSTS):
            namespace = self.namespace(host)
            self._ns(namespace)
            inside, outside = f"vo{self.token}h{index}", f"vo{self.token}b{index}"
            _run("ip", "link", "add", inside, "type", "veth", "peer", "name", outside)
            _run("ip", "link", "set", inside, "netns", namespace)
            _run("ip", "link", "set", outside, "netns", lan)
            in_ns = ("ip", "netns", "exec", namespace, "ip")
            _run(*in_ns, "link", "set", inside, "name", "eth0")
            _run(*in_ns, "addr", "add", f"{self.address(host)}/24", "dev", "eth0")
            _run(*in_ns, "link", "set", "eth0", "up")
            _run(*in_ns, "link", "set", "lo", "up")
            _run("ip", "netns", "exec", lan, "ip", "link", "set", outside, "master", "br0", "up")
        # The test's own side: it talks to the hosts as a client would.
        self.client_link, peer = f"vo{self.token}c", f"vo{self.token}d"
        _run("ip", "link", "add", self.client_link, "type", "veth", "peer", "name", peer)
        _run("ip", "link", "set", peer, "netns", lan)
        _run("ip", "netns", "exec", lan, "ip", "link", "set", peer, "master", "br0", "up")
        _run("ip", "addr", "add", f"{self.address('client')}/24", "dev", self.client_link)
        _run("ip", "link", "set", self.client_link, "up")

    def _ns(self, name: str) -> None:
        _run("ip", "netns", "add", name)
        self.made.append(name)

    def delete(self) -> None:
        if self.client_link:
            _run("ip", "link", "delete", self.client_link, check=False)
        for name in reversed(self.made):
            _run("ip", "netns", "delete", name, check=False)


class Host:
    """One host: a shell script run in its network namespace with a private filesystem view."""

    def __init__(self, network: Network, name: str, logs: Path) -> None:
        self.network = network
        self.name = name
        self.address = network.address(name)
        self.log_path = logs / f"{name}.log"
        self.processes: list[subprocess.Popen[bytes]] = []

    def script(self, body: str) -> str:
        """Wrap `body` in the host's private filesystem: its own /tmp, the source read-only."""
        keep = [path for path in (BASE_DIR, VENV.resolve()) if not _outside_tmp(path)]
        stage = "\n".join(
            f"mkdir -p /run/vantage-stage/{i} && mount --bind {shlex.quote(str(p))} "
            f"/run/vantage-stage/{i}"
            for i, p in enumerate(keep)
        )
        back = "\n".join(
            f"mkdir -p {shlex.quote(str(p))} && mount --bind /run/vantage-stage/{i} "
            f"{shlex.quote(str(p))}"
            for i, p in enumerate(keep)
        )
        readonly = "\n".join(
            f"mount --bind {shlex.quote(str(p))} {shlex.quote(str(p))} && "
            f"mount -o remount,bind,ro {shlex.quote(str(p))}"
            for p in dict.fromkeys([BASE_DIR, VENV.resolve()])
        )
        return f"""set -e
{stage}
mount -t tmpfs -o size=768m,mode=1777 tmpfs /tmp
mount -t tmpfs -o size=64m tmpfs /dev/shm
{back}
{readonly}
mkdir -p /tmp/host/var
export HOME=/tmp/host TMPDIR=/tmp/host
cd {shlex.quote(str(BASE_DIR))}
{body}
"""

    def start(self, body: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                [
                    IP,
                    "netns",
                    "exec",
                    self.network.namespace(self.name),
                    "sh",
                    "-c",
                    self.script(body),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append(process)
        return process

    def run(self, body: str, env: dict[str, str], timeout: float = 180) -> str:
        """Run `body` to its end on this host and return what it printed."""
        done = subprocess.run(
            [IP, "netns", "exec", self.network.namespace(self.name), "sh", "-c", self.script(body)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"{self.name}: {done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


def _wait(condition: Callable[[], bool], what: str, hosts: list[Host]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if condition():
            return
        for host in hosts:
            for process in host.processes:
                if process.poll() is not None:
                    raise AssertionError(f"{host.name} stopped:\n{host.log_tail()}")
        time.sleep(0.3)
    tails = "\n".join(f"--- {host.name}\n{host.log_tail()}" for host in hosts)
    raise AssertionError(f"{what} not within {STARTUP_SECONDS}s\n{tails}")


def _s3(address: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=f"http://{address}:5000",
        region_name="us-east-1",
        aws_access_key_id="vantage",
        aws_secret_access_key="vantage-secret",
    )


def _port_open(address: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((address, port)) == 0


@dataclass
class Cluster:
    network: Network
    hosts: dict[str, Host]
    app_env: Callable[[str], dict[str, str]]

    def url(self, host: str) -> str:
        return f"http://{self.hosts[host].address}:8000"


def _services_script(host: Host) -> str:
    postgres, initdb = _binary("postgres"), _binary("initdb")
    redis, moto = _binary("redis-server"), str(VENV / "bin" / "moto_server")
    return f"""
mkdir -p /tmp/host/pg /tmp/host/redis && chown postgres /tmp/host/pg
runuser -u postgres -- {initdb} -D /tmp/host/pg -U postgres --auth=trust -E UTF8 >/dev/null
echo "host all all {host.address.rsplit(".", 1)[0]}.0/24 trust" >> /tmp/host/pg/pg_hba.conf
{redis} --bind {host.address} --port 6379 --protected-mode no --save "" --appendonly no \
    --dir /tmp/host/redis &
{moto} -H {host.address} -p 5000 >/dev/null 2>&1 &
exec runuser -u postgres -- {postgres} -D /tmp/host/pg -c listen_addresses={host.address} \
    -c unix_socket_directories=/tmp/host/pg -c fsync=off -c max_connections=60 \
    -c shared_buffers=32MB
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = _netns_usable()
    if reason:
        pytest.skip(f"multi-host test: {reason}")
    tmp_path = tmp_path_factory.mktemp("hosts")
    network = Network()
    hosts: dict[str, Host] = {}
    try:
        network.create()
        hosts = {name: Host(network, name, tmp_path) for name in HOSTS}
        services = hosts["services"]
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
        services.start(_services_script(services), base)
        _wait(
            lambda: all(_port_open(services.address, port) for port in (5432, 6379, 5000)),
            "the services host's PostgreSQL, Redis and S3",
            [services],
        )
        _s3(services.address).create_bucket(Bucket=BUCKET)
        secret_key = secrets.token_urlsafe(64)

        def app_env(host: str) -> dict[str, str]:
            address = network.address(host)
            return {
                **base,
                "PYTHONDONTWRITEBYTECODE": "1",
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DJANGO_DEBUG": "false",
                "DJANGO_SECRET_KEY": secret_key,
                "DJANGO_ALLOWED_HOSTS": address,
                "DJANGO_STATICFILES_STORAGE": STATIC_FILES,
                "VANTAGE_VAR_DIR": "/tmp/host/var",
                "DATABASE_URL": f"postgres://postgres@{services.address}:5432/postgres",
                "REDIS_URL": f"redis://{services.address}:6379/0",
                "CELERY_BROKER_URL": f"redis://{services.address}:6379/1",
                "STORAGE_S3_BUCKET": BUCKET,
                "STORAGE_S3_ENDPOINT_URL": f"http://{services.address}:5000",
                "STORAGE_S3_ACCESS_KEY_ID": "vantage",
                "STORAGE_S3_SECRET_ACCESS_KEY": "vantage-secret",
                "STORAGE_S3_REGION": "us-east-1",
                "STORAGE_S3_ADDRESSING_STYLE": "path",
                "METRICS_TOKEN": METRICS_TOKEN,
                "GUNICORN_BIND": f"{address}:8000",
                "WEB_CONCURRENCY": "1",
                "GUNICORN_THREADS": "4",
                "CLASSIFIER_ONNX_THREADS": "1",
                "LOG_FORMAT": "json",
                "LOG_LEVEL": "WARNING",
            }

        python = shlex.quote(sys.executable)
        # The release step, from the first web host: migrations and the accounts.
        hosts["web1"].run(
            f"""
{python} manage.py migrate --no-input >/dev/null
{python} manage.py create_org acme --name Acme --tier enterprise >/dev/null
printf '%s' "$VANTAGE_PASSWORD" | {python} manage.py create_user alice --email alice@example.com \
    --org acme --role admin --password-stdin >/dev/null
{python} manage.py create_org small --name Small --tier free >/dev/null
{python} manage.py add_member alice small --role admin >/dev/null
""",
            {**app_env("web1"), "VANTAGE_PASSWORD": PASSWORD},
        )
        gunicorn = f"exec {python} -m gunicorn config.wsgi -c config/gunicorn.py"
        for name in ("web1", "web2"):
            hosts[name].start(gunicorn, app_env(name))
        worker = (
            f"{python} -m celery -A config worker --pool solo --loglevel WARNING "
            "--without-heartbeat --without-gossip --without-mingle --hostname worker@%h &\n"
            f"{gunicorn}\n"
        )
        hosts["worker"].start(worker, app_env("worker"))
        for name in ("web1", "web2", "worker"):
            address = network.address(name)
            _wait(partial(_answers_health, address), f"{name}'s web server", list(hosts.values()))
        yield Cluster(network, hosts, app_env)
    finally:
        for host in reversed(list(hosts.values())):
            host.stop()
        network.delete()


def _answers_health(address: str) -> bool:
    try:
        return httpx.get(f"http://{address}:8000/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _jpeg(index: int) -> bytes:
    buffer = io.BytesIO()
    Picture.new("RGB", (640 + index, 480), (20 * index % 256, 110, 190)).save(buffer, "JPEG")
    return buffer.getvalue()


def _job_done(client: httpx.Client, job_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 90
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/images/jobs/{job_id}").json()
        if body["status"] in ("succeeded", "failed"):
            return body
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} unfinished: {body}")


def _samples(url: str) -> dict[str, list[Any]]:
    response = httpx.get(
        f"{url}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=10
    )
    assert response.status_code == 200, response.text
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def _total(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    return sum(
        sample.value
        for sample in samples.get(name, [])
        if all(sample.labels.get(key) == value for key, value in labels.items())
    )


def test_the_product_runs_across_hosts_sharing_only_the_network(cluster: Cluster) -> None:
    hosts = cluster.hosts
    web = {name: httpx.Client(base_url=cluster.url(name), timeout=30) for name in ("web1", "web2")}
    # Signed in through each web host.
    bearer = {}
    for name, client in web.items():
        signed_in = client.post(
            "/api/v1/auth/token", json={"username": "alice", "password": PASSWORD}
        )
        assert signed_in.status_code == 200, signed_in.text
        bearer[name] = {"Authorization": f"Bearer {signed_in.json()['access']}"}
    # A token made through one host works at once through the other.
    for name, client in web.items():
        client.headers.update(bearer[name])

    # Uploads through each web host, their jobs run on the worker host, and the
    # files and thumbnails come back through the other web host (from the bucket).
    for index, (through, back) in enumerate((("web1", "web2"), ("web2", "web1"))):
        photo = _jpeg(index)
        upload = {"file": (f"{index}.jpg", photo, "image/jpeg")}
        accepted = web[through].post("/api/v1/images/upload", files=upload)
        assert accepted.status_code == 202, accepted.text
        job = _job_done(web[back], accepted.json()["job_id"])
        assert job["status"] == "succeeded", job
        original = web[back].get(f"/api/v1/images/{job['image_id']}/file")
        assert original.status_code == 200, original.text
        assert Picture.open(io.BytesIO(original.content)).size == (640 + index, 480)
        thumbnail = web[through].get(f"/api/v1/images/{job['image_id']}/thumbnail")
        assert thumbnail.status_code == 200, thumbnail.text
        assert max(Picture.open(io.BytesIO(thumbnail.content)).size) <= 256
    services = hosts["services"].address
    s3 = _s3(services)
    assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] >= 4  # two originals, two thumbnails

    # A token revoked through one web host is refused by the other on the next request.
    made = web["web1"].post("/api/v1/tokens", json={"name": "across", "scopes": ["image:read"]})
    assert made.status_code == 201, made.text
    token = {"Authorization": f"Bearer {made.json()['token']}"}
    assert web["web2"].get("/api/v1/images", headers=token).status_code == 200
    assert web["web1"].delete(f"/api/v1/tokens/{made.json()['id']}").status_code == 204
    refused = web["web2"].get("/api/v1/images", headers=token)
    assert refused.status_code == 401, refused.text

    # A rate limit is exact across both web hosts: a free organization's
    # token gets its tier's requests a minute, counted in one window.
    issued = hosts["web1"].run(
        f"{shlex.quote(sys.executable)} manage.py create_service_token --org small "
        "--name limits --scopes image:read --created-by alice",
        cluster.app_env("web1"),
    )
    limited = {"Authorization": f"Bearer {issued.strip().splitlines()[-1]}"}
    answers = [web[f"web{n % 2 + 1}"].get("/api/v1/images", headers=limited) for n in range(12)]
    limit = int(answers[0].headers["X-RateLimit-Limit"])
    statuses = [answer.status_code for answer in answers]
    assert statuses == [200] * limit + [429] * (12 - limit), statuses
    remaining = [int(answer.headers["X-RateLimit-Remaining"]) for answer in answers[:limit]]
    assert remaining == list(range(limit - 1, -1, -1)), remaining

    # Each host's metrics, scraped from that host: the jobs ran on the worker host.
    scraped = {name: _samples(cluster.url(name)) for name in ("web1", "web2", "worker")}
    for name in ("web1", "web2"):
        assert _total(scraped[name], "django_http_requests_total_by_method_total") > 0, name
        assert _total(scraped[name], "vantage_http_requests_in_flight") == 1, name
        assert _total(scraped[name], "vantage_jobs_completed_total") == 0, name
        assert _total(scraped[name], "django_db_execute_total") > 0, name
        assert _total(scraped[name], "vantage_redis_pool_connections") > 0, name
    assert _total(scraped["worker"], "vantage_jobs_completed_total", status="succeeded") == 2
    assert (
        _total(scraped["web1"], "vantage_rate_limit_rejections_total")
        + _total(scraped["web2"], "vantage_rate_limit_rejections_total")
        == 12 - limit
    )


def test_a_host_reaches_neither_the_machines_services_nor_another_hosts_files(
    cluster: Cluster,
) -> None:
    probe = f"""
{shlex.quote(sys.executable)} - <<'EOF'
import pathlib, socket
for port in (5432, 6379, 5000, 8000):
    with socket.socket() as sock:
        sock.settimeout(1)
        assert sock.connect_ex(("127.0.0.1", port)) != 0, f"loopback port {{port}} answered"
source = pathlib.Path({str(BASE_DIR)!r})
try:
    (source / "written-by-a-host").write_text("x")
except OSError:
    pass
else:
    raise AssertionError("the source tree is writable from a host")
assert not list(pathlib.Path("/tmp").glob("pytest-of-*")), "the test's files are visible"
print("isolated")
EOF
"""
    # A fresh process on the first web host: its loopback has nothing of the
    # machine's (nor of the services host's), and no other host's files show.
    assert cluster.hosts["web1"].run(probe, cluster.app_env("web1")).strip() == "isolated"
    assert not (BASE_DIR / "written-by-a-host").exists()
