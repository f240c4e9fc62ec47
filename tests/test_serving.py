"""Per-session folders and the predictor cache: one visitor's files and models stay theirs."""

from __future__ import annotations

import time

import pytest

from emotion.serving import SessionFolders


def test_each_session_gets_its_own_folder_and_owns_only_its_files(tmp_path):
    sessions = SessionFolders(tmp_path)
    alice, bob = sessions.folder("alice"), sessions.folder("bob")
    (alice / "model.keras").write_bytes(b"weights")

    assert alice != bob and alice.parent == bob.parent == tmp_path
    assert sessions.owns("alice", alice / "model.keras")
    assert not sessions.owns("bob", alice / "model.keras")
    assert not sessions.owns("alice", alice / ".." / "bob" / "x")


def test_closing_a_session_deletes_its_files(tmp_path):
    sessions = SessionFolders(tmp_path)
    folder = sessions.folder("alice")
    (folder / "dataset").mkdir()
    (folder / "dataset" / "a.png").write_bytes(b"png")
    sessions.close("alice")
    assert not folder.exists() and sessions.sessions() == []


def test_idle_sessions_expire(tmp_path):
    sessions = SessionFolders(tmp_path, max_idle_seconds=0.05)
    stale = sessions.folder("stale")
    time.sleep(0.1)
    sessions.folder("fresh")  # any request triggers the sweep
    assert not stale.exists() and sessions.sessions() == ["fresh"]


@pytest.mark.parametrize("session_id", ["", "../escape", "a/b", "."])
def test_session_ids_cannot_name_a_path(tmp_path, session_id):
    with pytest.raises(ValueError):
        SessionFolders(tmp_path).folder(session_id)
