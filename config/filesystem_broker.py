"""The embedded broker's transport: kombu's filesystem transport, with messages written atomically.

Kombu creates a message's file under its final name and then writes it, so a
worker polling the folder can take the file while it is still empty, fail to
decode it and stop. Here each message is written under a name no queue reads
and renamed into place once complete; a rename within one folder is atomic.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    # Kombu's own filesystem channel already differs from its base class here.
    def _put(self, queue: str, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        name = f"{round(time.monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            with open(partial, "wb") as file:
                file.write(dumps(payload).encode())
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    Channel = Channel

    @property
    def default_connection_params(self) -> dict[str, Any]:
        # Folders, not a server: no host to default to. Kombu's base class names
        # "localhost", and a connection without a hostname then warns "No hostname
        # was supplied" each time it is described (each publish's pooled connection).
        return {}


def register() -> None:
    """Make `filesystem://` broker URLs use this transport."""
    TRANSPORT_ALIASES["filesystem"] = "config.filesystem_broker:Transport"
