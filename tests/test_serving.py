"""Per-session folders and the predictor cache: one visitor's files and models stay theirs."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from emotion.predictor import Predictor
from emotion.serving import PredictorCache, SessionFolders


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


def test_idle_sessions_expire_unless_kept(tmp_path):
    sessions = SessionFolders(tmp_path)
    stale, busy = sessions.folder("stale"), sessions.folder("busy")
    time.sleep(0.5)
    fresh = sessions.folder("fresh")
    sessions.max_idle_seconds = 0.25  # stale and busy are past it, fresh is far from it
    assert sessions.expire(keep={"busy"}) == ["stale"]
    assert not stale.exists() and busy.exists() and fresh.exists()
    assert sessions.sessions() == ["busy", "fresh"]


@pytest.mark.parametrize("session_id", ["", "../escape", "a/b", "."])
def test_session_ids_cannot_name_a_path(tmp_path, session_id):
    with pytest.raises(ValueError):
        SessionFolders(tmp_path).folder(session_id)


def test_a_session_using_its_model_is_not_idle(tmp_path):
    sessions = SessionFolders(tmp_path / "sessions")
    alice = sessions.folder("alice")
    sessions.folder("bob")
    time.sleep(0.5)
    sessions.touch(alice / "models" / "mine.keras")  # alice's photos are being classified with her model
    sessions.touch(tmp_path / "elsewhere" / "model.keras")  # not a session's: ignored
    sessions.max_idle_seconds = 0.25  # bob is past it, alice was just seen
    assert sessions.expire() == ["bob"] and sessions.sessions() == ["alice"]


def test_predictor_cache_loads_once_drops_the_oldest_and_forgets_a_sessions_models(tiny_training, tmp_path):
    result, _, _ = tiny_training
    paths = []
    for name in ("alice", "bob", "carol"):
        (tmp_path / name).mkdir()
        paths.append(Path(shutil.copy(result.model_path, tmp_path / name / "model.keras")))
    default = Predictor.load(result.model_path)
    cache = PredictorCache(default, capacity=2)
    alice, bob = cache.get(paths[0]), cache.get(paths[1])
    assert cache.get(None) is default and cache.get(paths[0]) is alice  # loaded once; alice is now the newest
    cache.get(paths[2])  # a third model for two places: bob's, the least recently used, goes
    assert cache.get(paths[0]) is alice and cache.get(paths[1]) is not bob
    cache.forget_under(tmp_path / "alice")  # alice's session ended
    assert cache.get(paths[0]) is not alice and cache.get(None) is default
