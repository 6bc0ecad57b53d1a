"""Image jobs end to end: upload-to-succeeded latency, and throughput against the CPU bound.

A gunicorn server and a Celery worker (prefork, one process per CPU) run on the
benchmark's database and one broker: Redis when it answers, else the embedded
filesystem broker. Every job is a 1-megapixel JPEG uploaded over HTTP.

Latency: one job at a time on a warm worker, from sending the upload to the
job's recorded finish, and to the status endpoint first answering `succeeded`
(polled every 10 ms, as an eager client would).

Throughput: a batch is uploaded while the worker is stopped (SIGSTOP), so the
server does not compete with it for the CPUs, then the worker is resumed. Its
CPU time (user + system, its pool processes included, from /proc) until the
batch is done, divided by the batch size, is the CPU cost of one job; the CPUs
divided by that cost is the most jobs per second this machine could do. The
measured rate is the batch size over the time from resuming the worker to the
last job's recorded finish; the bench meanwhile asks for the jobs' status
only twice a second.
"""

from __future__ import annotations

import io
import os
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx
from django.conf import settings
from django.core.management import call_command
from PIL import Image as Picture

from bench.bench_authz import REDIS_URL, _redis_reachable

if TYPE_CHECKING:
    from config.testing.processes import WorkerProcess

PHOTO_SIZE = (1152, 864)  # one megapixel, 4:3
WARMUP = 6
SAMPLES = 40
BATCH = 100
UPLOAD = "/api/v1/images/upload"


def _photo_jpeg() -> bytes:
    """Return a JPEG with a photo's fine-grained texture (which costs decoding)."""
    gradient = Picture.linear_gradient("L").resize(PHOTO_SIZE)
    channels = [
        Picture.blend(gradient.rotate(angle), Picture.effect_noise(PHOTO_SIZE, 24), 0.3)
        for angle in (0, 90, 180)
    ]
    buffer = io.BytesIO()
    Picture.merge("RGB", channels).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def _token() -> str:
    from accounts.services.organizations import member_add, organization_create, user_create
    from accounts.services.tokens import token_create

    org = organization_create(name="Bench images", slug="bench-images", tier="enterprise")
    user = user_create(username="images", email="images@example.com", password="bench-pass-12345")
    member_add(organization=org, user=user, role="admin")
    issued = token_create(
        organization=org, name="images", scopes=["image:upload", "image:read"], created_by=user
    )
    return issued.secret


def _worker(broker_url: str, concurrency: int) -> WorkerProcess:
    from config.testing.processes import WorkerProcess, database_url_for_subprocess

    log_path = settings.VAR_DIR / "bench-images-worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": database_url_for_subprocess(),
        "CELERY_BROKER_URL": broker_url,
    }
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool",
                "prefork",
                "--concurrency",
                str(concurrency),
                "--loglevel",
                "INFO",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--hostname",
                f"bench-images-{os.getpid()}@%h",
            ],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped and resumed as one
        )
    worker = WorkerProcess(process, log_path)
    worker.wait_for_log(lambda line: "ready" in str(line.get("event", "")), timeout=60)
    return worker


def _cpu_seconds(root: int) -> float:
    """Return the CPU time a process and its living children have used so far."""
    ticks = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as stat:
                # The fields after the command name: state, ppid, ..., utime (11), stime (12),
                # and the reaped children's cutime (13), cstime (14).
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue  # it ended meanwhile
        pid, parent = int(entry.name), int(fields[1])
        if pid == root:
            ticks += sum(int(value) for value in fields[11:15])
        elif parent == root:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _upload(client: httpx.Client, jpeg: bytes) -> str:
    response = client.post(UPLOAD, files={"file": ("photo.jpg", jpeg, "image/jpeg")})
    if response.status_code != 202:
        raise AssertionError(f"upload answered {response.status_code}: {response.text}")
    return str(response.json()["status_url"])


def _finished(
    client: httpx.Client, status_url: str, *, every: float = 0.01, timeout: float = 60
) -> dict[str, Any]:
    """Poll the job until it has finished; return its body, which must say `succeeded`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(status_url).json()
        if body["status"] in ("succeeded", "failed"):
            if body["status"] != "succeeded":
                raise AssertionError(f"job failed: {body}")
            return dict(body)
        time.sleep(every)
    raise AssertionError(f"job not finished in {timeout}s: {status_url}")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _moment(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def _latency(client: httpx.Client, jpeg: bytes) -> dict[str, list[float]]:
    """Time SAMPLES jobs one after another; return seconds per phase."""
    phases: dict[str, list[float]] = {"recorded": [], "seen": [], "queued": [], "running": []}
    for _ in range(SAMPLES):
        sent, started = time.time(), time.perf_counter()
        body = _finished(client, _upload(client, jpeg))
        phases["seen"].append(time.perf_counter() - started)
        phases["recorded"].append(_moment(body["finished_at"]) - sent)
        phases["queued"].append(_moment(body["started_at"]) - _moment(body["created_at"]))
        phases["running"].append(_moment(body["finished_at"]) - _moment(body["started_at"]))
    return phases


def _idle_gaps(worker: WorkerProcess, since: float) -> list[float]:
    """Return how long each pool process waited between finishing a job and starting the next."""
    finished: dict[int, float] = {}
    gaps = []
    for line in worker.log_lines():
        if line.get("task_name") != "images.job_run" or "timestamp" not in line:
            continue
        moment = _moment(line["timestamp"])
        if moment < since:
            continue
        if line.get("event") == "task_started" and line["pid"] in finished:
            gaps.append(moment - finished[line["pid"]])
        elif line.get("event") == "task_finished":
            finished[line["pid"]] = moment
    return gaps


def _throughput(client: httpx.Client, jpeg: bytes, worker: WorkerProcess) -> dict[str, float]:
    """Queue BATCH jobs while the worker is stopped, then let it run them; return figures.

    The figures: CPU seconds per job, jobs per second, and the median wait of a
    pool process between two jobs.
    """
    worker_pid = worker.pid
    os.killpg(worker_pid, signal.SIGSTOP)
    try:
        status_urls = [_upload(client, jpeg) for _ in range(BATCH)]
    finally:
        cpu_before, resumed = _cpu_seconds(worker_pid), time.time()
        os.killpg(worker_pid, signal.SIGCONT)
    bodies = [_finished(client, url, every=0.5, timeout=600) for url in status_urls]
    cpu_per_job = (_cpu_seconds(worker_pid) - cpu_before) / BATCH
    last = max(_moment(body["finished_at"]) for body in bodies)
    return {
        "cpu_per_job": cpu_per_job,
        "measured": BATCH / (last - resumed),
        "idle": statistics.median(_idle_gaps(worker, resumed)),
    }


def run() -> None:
    from config.testing.processes import server_spawn

    if not settings.CLASSIFIER_MODEL_PATH.exists():
        call_command("classifier_export_model")
    cpus = len(os.sched_getaffinity(0))
    broker = REDIS_URL if _redis_reachable() else "filesystem://"
    jpeg = _photo_jpeg()
    secret = _token()
    server = server_spawn(
        log_path=settings.VAR_DIR / "bench-images-server.log",
        workers=1,
        CELERY_BROKER_URL=broker,
        LOG_LEVEL="INFO",
    )
    worker = None
    try:
        server.wait_until_ready()
        worker = _worker(broker, concurrency=cpus)
        headers = {"Authorization": f"Bearer {secret}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            # Every pool process loads the model on its first job.
            for url in [_upload(client, jpeg) for _ in range(WARMUP)]:
                _finished(client, url)
            phases = _latency(client, jpeg)
            batch = _throughput(client, jpeg, worker)
    finally:
        for process in (server.process, worker.process if worker else None):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
    _report(broker, cpus, size=len(jpeg), phases=phases, batch=batch)


PHASES = {
    "recorded": "sent -> finished (recorded)",
    "seen": "sent -> seen succeeded",
    "queued": "  created -> started",
    "running": "  started -> finished",
}


def _report(
    broker: str,
    cpus: int,
    *,
    size: int,
    phases: dict[str, list[float]],
    batch: dict[str, float],
) -> None:
    width, height = PHOTO_SIZE
    print(
        f"\n== image jobs: {width}x{height} JPEG ({size / 1e6:.2f} MB), broker "
        f"{broker}, worker prefork x{cpus}, {cpus} CPUs, ONNX threads "
        f"{settings.CLASSIFIER_ONNX_THREADS} =="
    )
    print(f"  upload to succeeded, one job at a time on a warm worker ({SAMPLES} jobs):")
    for name, label in PHASES.items():
        values = [seconds * 1000 for seconds in phases[name]]
        print(
            f"    {label:<30} p50 {statistics.median(values):7.1f} ms   "
            f"p95 {_percentile(values, 0.95):7.1f} ms"
        )
    ideal, measured = cpus / batch["cpu_per_job"], batch["measured"]
    print(f"  throughput, {BATCH} jobs queued, then the worker resumed:")
    print(f"    {'worker CPU per job':<30} {batch['cpu_per_job'] * 1000:7.1f} ms (user + system)")
    print(f"    {'CPU bound':<30} {ideal:7.2f} jobs/s ({cpus} CPUs / CPU per job)")
    print(f"    {'measured':<30} {measured:7.2f} jobs/s ({measured / ideal:.0%} of the bound)")
    print(f"    {'a process idle between jobs':<30} {batch['idle'] * 1000:7.1f} ms (p50)")
