"""W&B without an account or a network: offline logging is chosen before ``wandb.init`` runs.

With ``WANDB_MODE`` unset, ``wandb.init`` asks for an API key when it finds none (a three-choice prompt on a
terminal, ``UsageError`` without one), and with a key but no answer from the server it waits about 100 s before a
``CommError``. :func:`choose_wandb_mode` runs before the trainer is built: when a configured ``WandbLogger`` would
log online but no API key is configured for the server, or the server does not answer within
:data:`PROBE_TIMEOUT`, it sets ``WANDB_MODE=offline`` and says so in one line with the ``wandb sync`` command. An
explicit ``WANDB_MODE`` and a logger's ``offline: true`` or ``mode`` are respected.
"""

from __future__ import annotations

import importlib
import os
import threading
import urllib.error
import urllib.request
from typing import Any, Optional

from jsonargparse import Namespace
from pytorch_lightning.loggers import WandbLogger
from pytorch_lightning.utilities import rank_zero_info

PROBE_TIMEOUT = 3.0  # seconds the W&B server gets to answer (wandb.init itself waits 90 s, then retries)


def online_wandb_dirs(logger_config: Any) -> list[str]:
    """The folders that hold ``wandb/`` of the ``WandbLogger`` entries of a ``trainer.logger`` config that would log
    online (neither ``offline: true`` nor an explicit ``mode``)."""
    entries = logger_config if isinstance(logger_config, list) else [logger_config]
    dirs = []
    for entry in entries:
        if not isinstance(entry, Namespace) or not _is_wandb_logger(entry.get("class_path")):
            continue
        init_args = entry.get("init_args") or Namespace()
        if init_args.get("offline") or init_args.get("mode"):
            continue
        dirs.append(init_args.get("save_dir") or init_args.get("dir") or os.environ.get("WANDB_DIR") or ".")
    return dirs


def _is_wandb_logger(class_path: Optional[str]) -> bool:
    if not class_path:
        return False
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return False
    return isinstance(cls, type) and issubclass(cls, WandbLogger)


def offline_reason(timeout: float = PROBE_TIMEOUT) -> Optional[str]:
    """Why W&B cannot log online from here, or None when it can: no API key for the server, or no answer from it.

    Raises:
        ValueError: a configured API key is malformed (``wandb.init`` would fail on it too).
    """
    from wandb.errors import AuthenticationError
    from wandb.sdk import wandb_setup
    from wandb.sdk.lib import wbauth

    host = wandb_setup.singleton().settings.base_url  # WANDB_BASE_URL, the settings files, or api.wandb.ai
    # the lookup wandb.init itself makes (WANDB_API_KEY, WANDB_IDENTITY_TOKEN_FILE, the netrc entry of the host,
    # the settings), without its interactive prompt
    try:
        auth = wbauth.authenticate_session(host=host, source="privrob", prompt=False, update_session=False)
    except AuthenticationError as err:
        raise ValueError(f"W&B credentials: {err}") from None
    if auth is None:
        return f"no API key for {host}"
    return _probe(host, timeout)


def _probe(url: str, timeout: float) -> Optional[str]:
    """None if ``url`` answers any HTTP response within ``timeout`` seconds, else why not."""
    outcome: list[Optional[str]] = [f"{url} did not answer within {timeout:g} s"]

    def request() -> None:
        try:
            urllib.request.urlopen(url, timeout=timeout).close()
            outcome[0] = None
        except urllib.error.HTTPError:  # an error status is an answer
            outcome[0] = None
        except (urllib.error.URLError, OSError) as err:
            outcome[0] = f"{url} unreachable ({getattr(err, 'reason', err)})"

    # a thread bounds the name lookup too, which the socket timeout does not cover
    thread = threading.Thread(target=request, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0]


def choose_wandb_mode(logger_config: Any, timeout: float = PROBE_TIMEOUT) -> None:
    """Set ``WANDB_MODE=offline``, with one line saying so, when a configured ``WandbLogger`` would log online but
    cannot (see :func:`offline_reason`); an explicit ``WANDB_MODE`` or logger setting is left alone."""
    if os.environ.get("WANDB_MODE"):
        return
    dirs = online_wandb_dirs(logger_config)
    if not dirs:
        return
    reason = offline_reason(timeout)
    if reason is None:
        return
    os.environ["WANDB_MODE"] = "offline"
    # wandb keeps the settings it has read (the key lookup may have read them); drop them so wandb.init sees the mode
    import wandb

    wandb.teardown()
    runs = " ".join(os.path.join(d, "wandb", "offline-run-*") for d in dirs)
    rank_zero_info(f"W&B: {reason}; logging offline (upload later: wandb sync {runs})")
