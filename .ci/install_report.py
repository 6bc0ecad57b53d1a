"""What `make run` and `make test` install on a machine with only the public package index.

Each target's requirements are resolved by pip (`--dry-run --ignore-installed
--report`) with every pip configuration file, local wheel directory and extra
index of this machine switched off, as a new machine has them. Fails when any
target would install PyTorch or a CUDA library.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What each make target installs: (requirements files, installed with --no-deps).
TARGETS: dict[str, list[tuple[tuple[str, ...], bool]]] = {
    "make run": [(("requirements.txt",), False)],
    "make test": [
        (("requirements.txt", "requirements-dev.txt"), False),
        (("requirements-dev-nodeps.txt",), True),
    ],
}
FORBIDDEN = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-.*)$")
# Settings that point pip anywhere but the public index.
LOCAL_SOURCES = (
    "PIP_FIND_LINKS",
    "PIP_EXTRA_INDEX_URL",
    "PIP_INDEX_URL",
    "PIP_NO_INDEX",
    "PIP_CONSTRAINT",
    "PIP_CONFIG_FILE",
)


def resolved(files: tuple[str, ...], no_deps: bool) -> list[dict]:
    """Return pip's report of what installing `files` would install from the public index."""
    env = {key: value for key, value in os.environ.items() if key not in LOCAL_SOURCES}
    env["PIP_CONFIG_FILE"] = os.devnull  # no global, user or site pip.conf either
    with tempfile.TemporaryDirectory() as work:
        report = Path(work) / "report.json"
        command = [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(report),
        ]
        if no_deps:
            command.append("--no-deps")
        for name in files:
            command += ["-r", str(ROOT / name)]
        subprocess.run(command, env=env, check=True, timeout=600)
        return json.loads(report.read_text())["install"]


def main() -> int:
    failed = False
    for target, steps in TARGETS.items():
        installs = [item for files, no_deps in steps for item in resolved(files, no_deps)]
        names = sorted({item["metadata"]["name"].lower() for item in installs})
        local = [
            item["metadata"]["name"]
            for item in installs
            if not item["download_info"]["url"].startswith("https://")
        ]
        forbidden = [name for name in names if FORBIDDEN.match(name)]
        print(
            f"{target}: {len(names)} packages from the public index; "
            f"PyTorch or CUDA: {', '.join(forbidden) or 'none'}"
        )
        if forbidden or local:
            failed = True
            if local:
                print(f"  not from the public index: {', '.join(local)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
