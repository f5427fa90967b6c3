"""``vtts admin``: the admin API of one server, of a list of servers, or of every pod of a Kubernetes release.

One ``vtts serve`` owns its models; several pods behind a Service are several servers. ``--all`` resolves the
release's headless Service (one DNS record per ready pod) with ``socket.getaddrinfo`` and makes the same admin
call on each pod in turn, reporting every pod's answer, so a hot swap or a load reaches every replica without
restarting any. Changes made this way live in the pods' memory only: a pod that restarts comes back with the
ConfigMap's config, so a permanent change also goes into the chart's ``config`` (docs/kubernetes.md).

Mutating calls stop at the first pod that fails (the rest keep what they serve) unless ``--keep-going``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import config as cfg

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

#: environment the Helm chart sets in every pod, so ``vtts admin --all`` needs no arguments there
SERVICE_ENV = "VTTS_ADMIN_SERVICE"
PORT_ENV = "VTTS_ADMIN_PORT"

Resolver = Callable[..., Sequence[tuple[Any, ...]]]


@dataclass
class Result:
    """One server's answer to one admin call."""

    target: str
    status: int  # HTTP status; 0 = no answer (connection refused, timeout)
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def resolve(service: str, port: int, resolver: Resolver = socket.getaddrinfo) -> list[str]:
    """Base URLs of every address ``service`` resolves to (a headless Service: one per ready pod), sorted,
    each once. The port is the resolved address's own (``port`` for real DNS)."""
    try:
        infos = resolver(service, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ValueError(f"cannot resolve {service!r}: {exc.strerror or exc}") from None
    seen: set[tuple[str, int]] = set()
    for family, _type, _proto, _name, sockaddr in infos:
        host, addr_port = sockaddr[0], sockaddr[1]
        seen.add((f"[{host}]" if family == socket.AF_INET6 else host, addr_port))
    return [f"http://{host}:{p}" for host, p in sorted(seen)]


def _base_url(target: str) -> str:
    """``host:port`` or a URL -> a base URL without a trailing slash."""
    target = target.strip()
    if "://" not in target:
        target = "http://" + target
    return target.rstrip("/")


def _read_entry(text: str) -> dict[str, Any]:
    """A model entry given inline as JSON, or as ``@FILE`` (JSON, or TOML for a ``.toml`` file)."""
    if text.startswith("@"):
        path = Path(text[1:])
        raw = path.read_text("utf-8")
        try:
            entry = tomllib.loads(raw) if path.suffix == ".toml" else json.loads(raw)
        except (ValueError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{path}: not a model entry: {exc}") from None
    else:
        try:
            entry = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"--entry: not JSON: {exc}") from None
    if not isinstance(entry, dict):
        raise ValueError("--entry: a model entry is a table / JSON object")
    return entry


def request_for(args: argparse.Namespace) -> tuple[str, str, dict[str, Any] | None]:
    """(method, path, body) of the admin call the arguments ask for."""
    action, model = args.action, args.model
    if action != "list" and not model:
        raise ValueError(f"vtts admin {action}: a model id is required")
    quoted = urllib.parse.quote(model or "", safe="")
    entry = _read_entry(args.entry) if args.entry else None
    if action == "list":
        return "GET", "/admin/models", None
    if action == "load":
        return "POST", "/admin/models", {**(entry or {}), "id": model}
    if action == "unload":
        return "DELETE", f"/admin/models/{quoted}", None
    if action == "swap":
        if entry is None:
            raise ValueError("vtts admin swap: --entry is required (the new model entry)")
        return "PUT", f"/admin/models/{quoted}", entry
    return "POST", f"/admin/models/{quoted}/lexicon/reload", None


def call(base_url: str, method: str, path: str, body: dict[str, Any] | None, key: str | None,
         timeout: float) -> Result:
    """One admin call; every outcome (HTTP error, no answer) becomes a :class:`Result`."""
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base_url + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Result(base_url, r.status, _json(r.read()))
    except urllib.error.HTTPError as exc:
        with exc:
            return Result(base_url, exc.code, _json(exc.read()))
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Result(base_url, 0, {"error": {"message": f"no answer: {reason}"}})


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {"error": {"message": raw[:200].decode("utf-8", "replace")}}
    return value if isinstance(value, dict) else {"data": value}


def summary(result: Result) -> str:
    """One line per pod: the error's message, or each model's state."""
    body = result.body
    if not result.ok:
        err = body.get("error") if isinstance(body.get("error"), dict) else {}
        return f"{err.get('code') or 'error'}: {err.get('message', '')}".strip()
    if body.get("object") == "list":
        models = body.get("data") or []
        return ", ".join(f"{m.get('id')} {m.get('state')} gen {m.get('generation')}" for m in models) or "no models"
    if body.get("object") == "lexicon_reload":
        return f"{body.get('model')}: lexicon reloaded in {len(body.get('workers') or {})} worker(s)"
    return f"{body.get('id')} {body.get('state')} gen {body.get('generation')}"


def targets_of(args: argparse.Namespace, resolver: Resolver) -> list[str]:
    if args.all:
        service = args.service or os.environ.get(SERVICE_ENV, "")
        if not service:
            raise ValueError(f"--all needs --service (the release's headless Service) or ${SERVICE_ENV}")
        port = args.port or int(os.environ.get(PORT_ENV) or 8000)
        found = resolve(service, port, resolver)
        if not found:
            raise ValueError(f"{service!r} resolved to no address (no ready pod?)")
        return found
    if args.targets:
        return [_base_url(t) for t in args.targets.split(",") if t.strip()]
    return [_base_url(args.url)]


def run(args: argparse.Namespace, resolver: Resolver = socket.getaddrinfo) -> int:
    """Make the call on every target in turn; print one line per target (or JSON); 0 when all succeeded."""
    method, path, body = request_for(args)
    targets = targets_of(args, resolver)
    key = args.admin_key or next((k for k in os.environ.get(cfg.ADMIN_KEY_ENV, "").split(",") if k), None)
    results: list[Result] = []
    for target in targets:
        result = call(target, method, path, body, key, args.timeout)
        results.append(result)
        if not args.json:
            print(f"{target}\t{result.status or '-'}\t{summary(result)}", flush=True)
        if not result.ok and method != "GET" and not args.keep_going:
            break
    skipped = targets[len(results):]
    if args.json:
        print(json.dumps({"results": [r.__dict__ for r in results], "skipped": skipped}, indent=2))
    else:
        for target in skipped:
            print(f"{target}\t-\tskipped (an earlier pod failed; --keep-going applies it anyway)")
    failed = sum(not r.ok for r in results)
    if len(targets) > 1 and not args.json:
        print(f"{len(results) - failed} of {len(targets)} succeeded" + (f", {len(skipped)} skipped" if skipped else ""),
              file=sys.stderr)
    return 0 if not failed and not skipped else 1


def cmd_admin(args: argparse.Namespace) -> int:
    return run(args)


def add_parser(sub: argparse._SubParsersAction) -> None:
    """``vtts admin`` (called from :mod:`vtts.cli`)."""
    p = sub.add_parser("admin", help="admin API of one server, a list of servers or every pod of a release (--all)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("action", choices=["list", "load", "unload", "swap", "reload-lexicon"])
    p.add_argument("model", nargs="?", help="model id (every action but list)")
    p.add_argument("--entry", help="model entry for load/swap: JSON, or @FILE (.json or .toml)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--url", default="http://127.0.0.1:8000", help="one server (default: %(default)s)")
    where.add_argument("--targets", help="comma-separated servers, host:port or URLs")
    where.add_argument("--all", action="store_true",
                       help=f"every address of --service (a headless Service; default ${SERVICE_ENV})")
    p.add_argument("--service", help="DNS name to resolve with --all, e.g. RELEASE-vtts-headless.NAMESPACE.svc")
    p.add_argument("--port", type=int, help=f"port with --all (default ${PORT_ENV}, else 8000)")
    p.add_argument("--admin-key", help=f"admin key (default: the first of ${cfg.ADMIN_KEY_ENV})")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds per call (a load waits for the model)")
    p.add_argument("--keep-going", action="store_true", help="apply a change on the other pods after one fails")
    p.add_argument("--json", action="store_true", help="print every answer as JSON")
    p.set_defaults(func=cmd_admin)
