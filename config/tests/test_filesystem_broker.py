"""The embedded broker never hands a worker a message that is still being written."""

from __future__ import annotations

import logging
import queue

import pytest
from kombu import Connection

from config.filesystem_broker import Transport


def _connection(folder) -> Connection:
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder / "control"),
    }
    return Connection("filesystem://", transport_options=options)


def test_filesystem_urls_use_the_atomic_transport(tmp_path):
    with _connection(tmp_path) as connection:
        assert isinstance(connection.transport, Transport)


def test_a_message_being_written_is_not_read_and_a_complete_one_is(tmp_path):
    with _connection(tmp_path) as connection:
        jobs = connection.SimpleQueue("jobs")
        # What a writer leaves while the payload is not yet complete.
        (tmp_path / ".1_x.jobs.msg.partial").write_bytes(b"")
        with pytest.raises(queue.Empty):
            jobs.get(block=False)

        jobs.put({"job": 1})

        assert jobs.get(block=False).payload == {"job": 1}
        files = sorted(path.name for path in tmp_path.iterdir() if path.is_file())
        assert files == [".1_x.jobs.msg.partial"]
        jobs.close()


def test_sending_a_message_never_warns_of_a_missing_hostname(tmp_path, caplog):
    # Folders, not a server: kombu's "No hostname was supplied" was logged on every send.
    kombu_warnings = caplog.at_level(logging.WARNING, logger="kombu.connection")
    with kombu_warnings, _connection(tmp_path) as connection:
        jobs = connection.SimpleQueue("jobs")
        jobs.put({"job": 1})
        jobs.close()
        connection.clone().release()
        connection.info()

    assert not [record for record in caplog.records if "hostname" in record.getMessage()]
