"""Model directories named by Hugging Face id: the local cache first, the network only when a model entry allows.

Engines that load a released repository (Supertonic, CosyVoice3) share this: parse ``owner/name[@REVISION]``
(or an engine's alias), list the cached snapshots to try, best first, and fetch with ``huggingface_hub`` only
when ``allow_download`` is on — failing with one message that says what is missing, where it looked and how
to fetch it. Nothing here imports ``huggingface_hub`` unless a download is asked for.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .engine import ModelLoadError

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[\w.-]+)(?:@(?P<rev>[\w./-]+))?$")


def hub_cache_dir() -> Path:
    """huggingface_hub's cache directory, by its own environment rules."""
    if os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE"):
        return Path(os.environ.get("HF_HUB_CACHE") or os.environ["HUGGINGFACE_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def repo_cache_dir(repo_id: str) -> Path:
    return hub_cache_dir() / f"models--{repo_id.replace('/', '--')}"


def snapshots(repo_dir: Path, revision: str | None, pinned: str | None = None) -> list[Path]:
    """Snapshot folders to try, best first: the asked revision (a commit or a ref name); without one, the
    pinned revision, what ``refs/main`` points at, then any other snapshot, newest first."""
    def by_ref(name: str) -> Path:
        ref = repo_dir / "refs" / name
        return repo_dir / "snapshots" / (ref.read_text(encoding="utf-8").strip() if ref.is_file() else name)

    if revision:
        return [by_ref(revision)]
    found = [by_ref(pinned)] if pinned else []
    if (repo_dir / "refs" / "main").is_file():
        found.append(by_ref("main"))
    if (repo_dir / "snapshots").is_dir():
        found += sorted((p for p in (repo_dir / "snapshots").iterdir() if p.is_dir()), key=lambda p: -p.stat().st_mtime)
    return list(dict.fromkeys(found))


@dataclass(frozen=True)
class HubModel:
    """What one engine's released repositories look like."""

    #: the engine's name in messages ("Supertonic", "CosyVoice3")
    name: str
    #: an id to show as an example ("Supertone/supertonic-2")
    example: str
    #: the files a complete snapshot holds, for messages
    needs: Sequence[str]
    #: the required files absent from a folder (relative names)
    missing: Callable[[Path], list[str]]
    #: what a download fetches (huggingface_hub allow_patterns)
    patterns: Sequence[str]
    #: the pip line that installs huggingface_hub for this engine
    install: str = "pip install huggingface_hub"
    aliases: Mapping[str, str] | None = None

    def parse(self, model_ref: str) -> tuple[str, str | None]:
        """(repository, revision or None) of a hub reference; ModelLoadError for anything else."""
        ref = model_ref.strip()
        name, _, rev = ref.partition("@")
        if self.aliases and name in self.aliases:
            return self.aliases[name], rev or None
        match = _HUB_ID.match(ref)
        if not match or ref.startswith((".", "/", "~")):
            raise ModelLoadError(f"no {self.name} model at {model_ref!r}: not a directory, and not a Hugging Face "
                                 f"id such as '{self.example}' or '{self.example}@REVISION'")
        return match["repo"], match["rev"]

    def cached(self, candidates: Sequence[Path]) -> Path | None:
        """The first complete folder among ``candidates``."""
        return next((c for c in candidates if c.is_dir() and not self.missing(c)), None)

    def not_found(self, repo_id: str, revision: str | None, candidates: Sequence[Path], why: str) -> str:
        lines = [f"{self.name} model {repo_id}{'@' + revision if revision else ''} is not on this machine ({why})."]
        for c in candidates:
            lines.append(f"  looked in {c}: {'absent' if not c.is_dir() else 'missing ' + ', '.join(self.missing(c))}")
        if not candidates:
            lines.append(f"  looked in {hub_cache_dir()}: no snapshot of {repo_id}")
        lines.append(f"  needs: {', '.join(self.needs)}")
        lines.append(f"  fetch it with: hf download {repo_id}{' --revision ' + revision if revision else ''} "
                     "(pip install huggingface_hub), or set options.allow_download = true")
        return "\n".join(lines)

    def refuse(self, repo_id: str, revision: str | None, candidates: Sequence[Path]) -> ModelLoadError:
        return ModelLoadError(self.not_found(repo_id, revision, candidates,
                                             "downloads are off: options.allow_download is false"))

    def download(self, repo_id: str, revision: str | None, candidates: Sequence[Path]) -> Path:
        """huggingface_hub's snapshot_download into its cache; ModelLoadError (with what was searched) when
        offline, not installed, or the network refuses."""
        if offline():
            raise ModelLoadError(self.not_found(repo_id, revision, candidates, "HF_HUB_OFFLINE is set"))
        try:
            from huggingface_hub import snapshot_download
        except ImportError:
            raise ModelLoadError(self.not_found(repo_id, revision, candidates,
                                                f"downloading needs huggingface_hub: {self.install}")) from None
        log.info("downloading %s@%s from the Hugging Face Hub", repo_id, revision or "main")
        try:
            root = Path(snapshot_download(repo_id, revision=revision, allow_patterns=list(self.patterns)))
        except Exception as exc:  # network errors, unknown repository or revision: all end the load the same way
            raise ModelLoadError(self.not_found(repo_id, revision, candidates, f"download failed: {exc}")) from exc
        missing = self.missing(root)
        if missing:
            raise ModelLoadError(f"downloaded {repo_id} to {root} but it lacks {', '.join(missing)}")
        return root
