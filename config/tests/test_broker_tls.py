"""The broker and cache settings for TLS, Sentinel, transport options and a transaction pooler.

Each case loads the real settings in a fresh interpreter with its own
environment. A redis-server of the test's own that speaks TLS only (with a
certificate of an authority made here) is then the broker and the cache of a
real gunicorn server: /health reaches both when CELERY_BROKER_SSL_CA_CERTS
names that authority, and reports the broker failing when it does not.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.conf import settings

from config.testing.processes import free_port

READ = """
import json
import config.settings_test as s
print(json.dumps({
    "use_ssl": s.CELERY_BROKER_USE_SSL, "transport": s.CELERY_BROKER_TRANSPORT_OPTIONS,
    "cache": s.CACHES["default"], "database": s.DATABASES["default"],
}, default=str))
"""


def _settings(**environment: str) -> subprocess.CompletedProcess[str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CELERY_BROKER", "REDIS_", "DATABASE_"))
    }
    env |= {"DJANGO_SETTINGS_MODULE": "config.settings_test", **environment}
    return subprocess.run(
        [sys.executable, "-c", READ],
        cwd=settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _read(**environment: str) -> dict[str, Any]:
    done = _settings(**environment)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.splitlines()[-1]))


def test_tls_is_on_for_rediss_and_amqps_with_the_given_files():
    rediss = _read(
        CELERY_BROKER_URL="rediss://broker:6380/0", CELERY_BROKER_SSL_CA_CERTS="/etc/ca.pem"
    )
    assert rediss["use_ssl"] == {
        "ssl_cert_reqs": int(ssl.CERT_REQUIRED),
        "ssl_ca_certs": "/etc/ca.pem",
    }
    amqps = _read(
        CELERY_BROKER_URL="amqps://broker:5671//",
        CELERY_BROKER_SSL_CERT_REQS="none",
        CELERY_BROKER_SSL_CERTFILE="/c.pem",
        CELERY_BROKER_SSL_KEYFILE="/k.pem",
    )
    assert amqps["use_ssl"] == {
        "cert_reqs": int(ssl.CERT_NONE),
        "certfile": "/c.pem",
        "keyfile": "/k.pem",
    }
    assert _read(CELERY_BROKER_URL="redis://broker:6379/0")["use_ssl"] is False
    refused = _settings(CELERY_BROKER_URL="rediss://b/0", CELERY_BROKER_SSL_CERT_REQS="maybe")
    assert refused.returncode != 0
    assert "CELERY_BROKER_SSL_CERT_REQS" in refused.stderr


def test_transport_options_from_the_environment_apply_last():
    read = _read(
        CELERY_BROKER_URL="redis://broker:6379/0",
        CELERY_BROKER_TRANSPORT_OPTIONS='{"visibility_timeout": 7200, "x": [1]}',
    )
    assert read["transport"]["visibility_timeout"] == 7200
    assert read["transport"]["x"] == [1]
    assert read["transport"]["socket_timeout"] == 2.0
    refused = _settings(CELERY_BROKER_URL="redis://b/0", CELERY_BROKER_TRANSPORT_OPTIONS="[1]")
    assert refused.returncode != 0


def test_sentinel_settings_for_the_cache_and_the_broker():
    read = _read(
        REDIS_URL="redis://:pw@vantage-ha/2",
        REDIS_SENTINELS="s1:26379, [::1]:26380",
        REDIS_SENTINEL_PASSWORD="spw",
        CELERY_BROKER_URL="sentinel://s1:26379/1;sentinel://s2:26379/1",
        CELERY_BROKER_SENTINEL_MASTER="vantage-ha",
    )
    options = read["cache"]["OPTIONS"]
    assert options["CONNECTION_FACTORY"] == "django_redis.pool.SentinelConnectionFactory"
    assert options["CONNECTION_POOL_CLASS"] == "config.redis_guard.GuardedSentinelConnectionPool"
    assert options["SENTINELS"] == [["s1", 26379], ["::1", 26380]]
    assert options["SENTINEL_KWARGS"]["password"] == "spw"
    assert read["transport"]["master_name"] == "vantage-ha"
    assert read["transport"]["socket_timeout"] == 2.0
    refused = _settings(CELERY_BROKER_URL="sentinel://s1:26379/1")
    assert refused.returncode != 0
    assert "CELERY_BROKER_SENTINEL_MASTER" in refused.stderr
    assert _settings(REDIS_URL="redis://m/0", REDIS_SENTINELS="nohost").returncode != 0


def test_transaction_pooling_switches_off_server_side_cursors_and_prepared_statements():
    url = "postgres://u@db.example.internal:6432/vantage"
    pooled = _read(DATABASE_URL=url, DATABASE_TRANSACTION_POOLING="true")["database"]
    assert pooled["DISABLE_SERVER_SIDE_CURSORS"] is True
    assert pooled["OPTIONS"]["prepare_threshold"] is None
    plain = _read(DATABASE_URL=url)["database"]
    assert not plain.get("DISABLE_SERVER_SIDE_CURSORS")
    assert "prepare_threshold" not in plain["OPTIONS"]
    assert plain["ENGINE"] == "django_prometheus.db.backends.postgresql"


# --- A real Redis speaking TLS only ---------------------------------------------------


def _certificate(directory: Path) -> tuple[Path, Path, Path]:
    """Write an authority and a certificate it signed for 127.0.0.1; return ca, cert, key."""
    now = dt.datetime.now(dt.UTC)

    def issue(subject: str, key: Any, issuer: x509.Name, signer: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(issuer)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
        return builder.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vantage test authority")])
    authority = issue("vantage test authority", ca_key, ca_name, ca_key, True)
    server = issue("127.0.0.1", key, ca_name, ca_key, False)
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(authority.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(server.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths


@pytest.mark.django_db(transaction=True)
def test_a_tls_only_redis_is_reached_as_broker_and_cache_with_the_given_authority(
    server_processes: Any, tmp_path: Path
) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    ca, certificate, key = _certificate(tmp_path)
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--tls-cert-file",
            str(certificate),
            "--tls-key-file",
            str(key),
            "--tls-ca-cert-file",
            str(ca),
            "--tls-auth-clients",
            "no",
            "--save",
            "",
            "--dir",
            str(tmp_path),
        ],
        stdout=(tmp_path / "redis.log").open("wb"),
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(0.5)
        base = f"rediss://127.0.0.1:{port}"
        services = {"REDIS_URL": f"{base}/0?ssl_ca_certs={ca}", "CELERY_BROKER_URL": f"{base}/1"}
        (trusted,) = server_processes(count=1, CELERY_BROKER_SSL_CA_CERTS=str(ca), **services)
        (untrusted,) = server_processes(count=1, **services)  # the system's authorities only

        good = httpx.get(f"{trusted.url}/health", timeout=10).json()
        bad = httpx.get(f"{untrusted.url}/health", timeout=10).json()
    finally:
        process.kill()
        process.wait(timeout=10)

    assert good["status"] == "healthy", good
    assert good["checks"]["cache"]["status"] == good["checks"]["broker"]["status"] == "ok"
    # Without the authority the broker's certificate is refused, not trusted blindly.
    assert bad["checks"]["cache"]["status"] == "ok", bad
    assert bad["checks"]["broker"]["status"] == "error", bad
