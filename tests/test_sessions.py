"""Each visitor's session: their folder, data and training are theirs, and nothing outlives the session."""

from __future__ import annotations

import threading
import time

import pytest

from conftest import write_dataset_zip
from emotion.config import TrainConfig
from emotion.sessions import SessionClosed, SessionStore

CONFIG = TrainConfig(epochs=1, batch_size=8, base_filters=8, init="scratch")


class RunningJob:
    """Stands in for a training still running: what the store asks of a job."""

    done, stopped = False, False

    def stop(self):
        self.stopped = True

    def join(self, timeout=None):
        self.done = True


def test_each_session_gets_its_own_folder_and_closing_it_twice_is_harmless(tmp_path):
    store = SessionStore(tmp_path)
    alice, bob = store.get("alice"), store.get("bob")
    (alice.folder / "model.keras").write_bytes(b"weights")
    assert alice.folder != bob.folder and alice.folder.parent == bob.folder.parent == tmp_path
    assert store.get("alice") is alice

    store.close("alice")
    store.close("alice")
    alice.close()
    assert not alice.folder.exists() and store.ids() == ["bob"]
    with pytest.raises(SessionClosed):
        alice.add_model(tmp_path / "late.keras")


@pytest.mark.parametrize("session_id", ["", "../escape", "a/b", ".", "a b"])
def test_session_ids_cannot_name_a_path(tmp_path, session_id):
    with pytest.raises(ValueError):
        SessionStore(tmp_path).get(session_id)


def test_idle_sessions_expire_but_a_running_training_goes_on(tmp_path):
    store = SessionStore(tmp_path)
    idle, busy = store.get("idle"), store.get("busy")
    busy._job = RunningJob()
    store.get("fresh")
    store.max_idle_seconds = 0.2
    idle.last_seen = busy.last_seen = time.monotonic() - 1  # both quiet for longer than that
    assert store.expire() == ["idle"]
    assert not idle.folder.exists() and busy.folder.is_dir() and store.ids() == ["busy", "fresh"]
    store.close("busy")  # the visitor left after all: their training is stopped and waited for
    assert busy._job is None and not busy.folder.exists()


def test_a_store_with_its_own_root_removes_it_when_the_server_stops():
    store = SessionStore()
    store.get("alice")
    store.close_all()
    assert not store.root.exists()


def test_the_sweeper_closes_idle_sessions_and_stops_when_asked(tmp_path):
    closed = []
    store = SessionStore(tmp_path, max_idle_seconds=0, on_close=lambda session: closed.append(session.id))
    session = store.get("gone")
    store.start_sweeper(every_seconds=0.05)
    deadline = time.monotonic() + 10
    while not closed and time.monotonic() < deadline:
        time.sleep(0.05)
    store.stop_sweeper()
    assert closed == ["gone"] and not session.folder.exists()
    assert not [thread for thread in threading.enumerate() if thread.name == "session-sweeper"]


def test_a_visitor_who_leaves_during_the_dataset_scan_leaves_nothing_behind(tmp_path):
    """Unload races a scan: the close lands while images are being read; the scan's data is dropped."""
    store = SessionStore(tmp_path / "sessions")
    session = store.get("leaver")
    scanning, closed = threading.Event(), threading.Event()

    def on_file(index, total):
        if index == 5:  # the scan has extracted the zip and is reading images
            scanning.set()
            closed.wait(30)

    outcome = []

    def scan():
        try:
            outcome.append(session.prepare(write_dataset_zip(tmp_path), CONFIG, on_file))
        except SessionClosed as error:
            outcome.append(error)

    scanner = threading.Thread(target=scan)
    scanner.start()
    assert scanning.wait(60)
    assert (session.folder / "dataset").is_dir()  # the extracted zip, mid-scan
    store.close("leaver")  # the tab was closed
    closed.set()
    scanner.join(60)

    assert isinstance(outcome[0], SessionClosed)
    assert session.prepared is None and not session.folder.exists()
    assert list((tmp_path / "sessions").iterdir()) == [] and store.ids() == []


def test_a_scan_that_ends_before_the_session_expires_is_freed_with_it(tmp_path):
    store = SessionStore(tmp_path / "sessions", max_idle_seconds=0)
    session = store.get("quiet")
    prepared = session.prepare(write_dataset_zip(tmp_path), CONFIG)
    assert session.prepare(write_dataset_zip(tmp_path), CONFIG) is prepared  # scanned once per upload
    time.sleep(0.01)
    assert store.expire() == ["quiet"]
    assert session.prepared is None and list((tmp_path / "sessions").iterdir()) == []
    with pytest.raises(SessionClosed):
        session.prepare(write_dataset_zip(tmp_path), CONFIG)
    assert not session.folder.exists()


def test_a_visitor_waiting_for_a_training_slot_is_not_expired(tmp_path):
    store = SessionStore(tmp_path, max_idle_seconds=0)
    waiting = store.get("waiting")
    asked = waiting.ask_training()  # behind another visitor's long training, for longer than the idle limit
    assert store.expire() == [] and not waiting.closed
    waiting.end_request(asked)
    assert store.expire() == ["waiting"] and waiting.closed
