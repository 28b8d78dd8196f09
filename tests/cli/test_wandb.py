"""W&B without an account or a network (no command prompts or hangs), and what a run logs to it.

Every run here is isolated from the machine's W&B setup (its own HOME, so no netrc or settings, and WANDB_DIR) and
from any network: the server is a loopback port where nothing listens, or a loopback listener that accepts
connections and never answers (``wandb.init`` then waits about 100 s).
"""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT, run_cli

FAKE_KEY = "0123456789abcdef" * 2 + "01234567"  # well-formed: 40 hex characters
TIMEOUT = 60  # seconds; wandb.init waits about 100 s for an unreachable server


def _tiny_config(tmp_path: Path) -> Path:
    """The quickstart for one epoch, logging online (``offline: false``) into ``tmp_path/run``, membership inference
    on 100 points."""
    config = yaml.safe_load((ROOT / "configs" / "quickstart.yaml").read_text())
    run = str(tmp_path / "run")
    config["trainer"].update(max_epochs=1, default_root_dir=run, enable_progress_bar=False)
    config["trainer"]["logger"]["init_args"].update(save_dir=run, offline=False)
    config["trainer"]["callbacks"][1]["init_args"]["num_points"] = 100
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _run_isolated(tmp_path: Path, base_url: str, api_key: str | None) -> tuple:
    """``fit`` of the tiny config with WANDB_MODE unset, no W&B setup but ``api_key``, the server at ``base_url``;
    returns the process, the seconds it took and the offline runs written."""
    env = {key: None for key in [*os.environ, "WANDB_MODE", "WANDB_SILENT"] if key.startswith("WANDB_")}
    env.update(HOME=str(tmp_path / "home"), WANDB_DIR=str(tmp_path / "wandb_dir"), WANDB_BASE_URL=base_url,
               WANDB_API_KEY=api_key, NETRC=None)
    (tmp_path / "home").mkdir()
    start = time.monotonic()
    proc = run_cli("fit", "--config", str(_tiny_config(tmp_path)), timeout=TIMEOUT, env_overrides=env)
    return proc, time.monotonic() - start, sorted((tmp_path / "run" / "wandb").glob("offline-run-*"))


def _free_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_server():
    """A loopback listener that accepts connections and never answers; yields its URL."""
    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def accept() -> None:
        while True:
            try:
                held.append(server.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()
    for conn in held:
        conn.close()


def _assert_offline_notice(proc, elapsed: float, runs: list, reason: str) -> None:
    assert proc.returncode == 0, proc.stderr[-3000:]
    notices = [line for line in (proc.stdout + proc.stderr).splitlines() if "logging offline" in line]
    assert len(notices) == 1 and reason in notices[0], notices
    assert f"wandb sync {runs[0].parent}/offline-run-*" in notices[0]
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    assert elapsed < TIMEOUT


@pytest.fixture(scope="module")
def no_key_run(tmp_path_factory):
    """The tiny fit without an API key (shared: the tests below read its offline run)."""
    tmp_path = tmp_path_factory.mktemp("no_key")
    return _run_isolated(tmp_path, f"http://127.0.0.1:{_free_port()}", None)


def test_no_api_key_logs_offline_and_says_so(no_key_run):
    _assert_offline_notice(*no_key_run, reason="no API key")


def test_unreachable_server_falls_back_to_offline(tmp_path):
    _assert_offline_notice(*_run_isolated(tmp_path, f"http://127.0.0.1:{_free_port()}", FAKE_KEY),
                           reason="unreachable")


def test_silent_server_falls_back_to_offline_within_seconds(tmp_path, silent_server):
    _assert_offline_notice(*_run_isolated(tmp_path, silent_server, FAKE_KEY), reason="did not answer")


def _records(path: Path) -> list:
    """The protobuf records of a ``.wandb`` file. Hand-written: wandb 0.31 reads these files in its Go core only
    (its Python ``datastore`` reader is gone); the format is LevelDB's log: 32 KiB blocks of chunks with a 7-byte
    header (CRC, little-endian length, type 1 full, 2 first, 3 middle, 4 last), after a 7-byte file header."""
    from wandb.proto import wandb_internal_pb2

    data, block, head = path.read_bytes(), 32768, 7
    pos, chunk, records = head, b"", []
    while pos + head <= len(data):
        if block - pos % block < head:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk += data[pos + head:pos + head + length]
        pos += head + length
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(chunk)
            records.append(record)
            chunk = b""
    return records


def test_run_logs_the_whole_config_and_the_thresholds(no_key_run):
    import json

    _, _, runs = no_key_run
    records = _records(next(runs[0].glob("*.wandb")))
    config = {item.key: json.loads(item.value_json) for r in records if r.HasField("config")
              for item in r.config.update}
    backbone = config["model"]["init_args"]["backbone"]
    assert backbone["class_path"].endswith("DigitsCNN") and backbone["init_args"]["width"] == 2
    assert config["data"]["class_path"].endswith("DigitsDataModule") and config["data"]["init_args"]["seed"] == 0
    inference = [c for c in config["trainer"]["callbacks"] if c["class_path"].endswith("MembershipInference")]
    assert inference[0]["init_args"]["num_points"] == 100 and inference[0]["init_args"]["eps"] == 0.1
    logged = {(item.key or "/".join(item.nested_key)): json.loads(item.value_json) for r in records
              if r.HasField("history") for item in r.history.item}
    for strategy in ("I_B", "I_A"):
        assert 0.0 <= logged[f"privacy/{strategy}/threshold"] <= 1.0


def test_explicit_modes_are_left_alone(monkeypatch):
    from jsonargparse import Namespace

    from privrob import wandb_mode

    def logger(**init_args):
        return Namespace(class_path="pytorch_lightning.loggers.WandbLogger", init_args=Namespace(**init_args))

    assert wandb_mode.online_wandb_dirs([logger(offline=True), logger(mode="disabled"), None]) == []
    assert wandb_mode.online_wandb_dirs(logger(offline=False, save_dir="runs/x")) == ["runs/x"]
    monkeypatch.setattr(wandb_mode, "offline_reason", lambda *a: pytest.fail("probed despite an explicit mode"))
    monkeypatch.setenv("WANDB_MODE", "online")
    wandb_mode.choose_wandb_mode(logger(offline=False))
    assert os.environ["WANDB_MODE"] == "online"
