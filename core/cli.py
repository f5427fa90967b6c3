"""The ``vtts`` command: serve, speak, voices (and bench)."""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from pathlib import Path

from vtts.workers.engine import EngineError, ModelLoadError

from . import config as cfg


def model_entry(ref: str, engine: str | None, device: str, config: cfg.Config) -> cfg.ModelConfig:
    """Turn a command-line MODEL into a model entry: a config id, or a reference whose engine is named
    by ``--engine`` or detected from its files."""
    for m in config.models:
        if m.id == ref:
            return m
    from vtts.workers.registry import detect_engine

    engine = engine or detect_engine(ref)
    if engine is None:
        raise cfg.ConfigError(
            f"cannot tell which engine serves {ref!r}: it is not a configured model id and no engine "
            "recognises its files; pass --engine"
        )
    model_id = re.sub(r"\.onnx$", "", Path(ref.rstrip("/")).name) or ref
    return cfg.ModelConfig(id=model_id, engine=engine, model=ref, device=device)


def _load_config(args: argparse.Namespace) -> cfg.Config:
    config = cfg.load(args.config)
    if getattr(args, "models", None):
        config.models = [model_entry(r, args.engine, args.device, config) for r in args.models]
        if config.server.default_model not in {m.id for m in config.models}:
            config.server.default_model = ""
    return cfg.validate(config)


def exposure_warning(server: cfg.ServerConfig) -> str:
    """A warning when the server is reachable from other machines with nothing asked of its callers."""
    if server.api_keys or server.host in ("127.0.0.1", "::1", "localhost") or server.host.startswith("127."):
        return ""
    return (f"binding {server.host}:{server.port} without API keys: anyone who can reach this port can use "
            f"the /v1 routes; set server.api_keys (or ${cfg.API_KEY_ENV}) or bind 127.0.0.1")


def cmd_serve(args: argparse.Namespace) -> int:
    config = _load_config(args)
    if args.host:
        config.server.host = args.host
    if args.port:
        config.server.port = args.port
    if args.api_key:
        config.server.api_keys = [args.api_key]
    if args.log_level:
        config.server.log_level = args.log_level
    for m in config.models:
        if args.replicas:
            m.replicas = args.replicas
    cfg.validate(config)
    logging.basicConfig(level=config.server.log_level.upper(),
                        format="%(asctime)s supervisor %(levelname)s %(message)s")
    warning = exposure_warning(config.server)
    if warning:
        logging.getLogger("vtts").warning("%s", warning)
    from vtts.supervisor.supervisor import Supervisor

    return Supervisor(config).run()


def cmd_speak(args: argparse.Namespace) -> int:
    from .synth import synthesize_to_file

    text = sys.stdin.read() if args.text == "-" else args.text
    config = _load_config(argparse.Namespace(config=args.config, models=[args.model] if args.model else [],
                                             engine=args.engine, device=args.device))
    fmt = args.format or (Path(args.output).suffix.lstrip(".").lower() if args.output else "wav")
    seconds = synthesize_to_file(config.models[0], text, args.output, fmt=fmt, voice=args.voice,
                                 speed=args.speed, progress=not args.quiet)
    if not args.quiet:
        print(f"wrote {seconds:.2f} s of audio to {args.output}", file=sys.stderr)
    return 0


def cmd_custom_voice(args: argparse.Namespace) -> int:
    """``vtts voices add NAME SAMPLE --consent RECORDING|cons_ID`` and ``vtts voices rm ID`` on a server."""
    from .client import Client, VTTSError

    client = Client(args.url or "http://127.0.0.1:8000", api_key=args.api_key or os.environ.get(cfg.API_KEY_ENV))
    action, rest = args.models[0], args.models[1:]
    try:
        if action == "rm":
            if len(rest) != 1:
                raise ValueError("usage: vtts voices rm VOICE_ID")
            client.delete_voice(rest[0])
            print(f"deleted {rest[0]}")
            return 0
        if len(rest) != 2 or not args.consent:
            raise ValueError("usage: vtts voices add NAME SAMPLE --consent RECORDING [--transcript TEXT]")
        consent = args.consent
        if not consent.startswith("cons_"):
            consent = client.create_consent(f"{rest[0]} consent", consent, args.language or "en")["id"]
        voice = client.create_voice(rest[0], rest[1], consent, args.transcript, args.language)
    except VTTSError as exc:
        print(f"vtts: {exc}", file=sys.stderr)
        return 1
    print(f"{voice['id']}\t{voice['name']}\t{voice.get('transcript') or ''}")
    return 0


def cmd_voices(args: argparse.Namespace) -> int:
    if args.models and args.models[0] in ("add", "rm"):
        return cmd_custom_voice(args)
    if args.url:
        from .client import Client

        for v in Client(args.url, api_key=args.api_key).voices():
            if v.get("object") == "audio.voice":  # a custom voice: the models that can speak it
                print(f"{','.join(v.get('models', [])) or '-'}\t{v['id']}\t{v.get('language')}\t"
                      f"{v.get('sample_rate')}\t{v['name']}")
            else:
                print(f"{v['model']}\t{v['id']}\t{v.get('language')}\t{v.get('sample_rate')}")
        return 0
    from .synth import load_once

    config = _load_config(args)
    for m in config.models:
        engine = load_once(m, "cpu")
        for v in engine.voices():
            print(f"{m.id}\t{v.id}\t{v.language}\t{v.sample_rate}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="vtts", description="vTTS: an OpenAI-compatible text-to-speech server")
    sub = ap.add_subparsers(dest="command", required=True)

    def model_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="TOML config file (default: the bundled voice on CPU)")
        p.add_argument("--engine", help="engine for model references that are not detected")
        p.add_argument("--device", default="cpu", help="device for model references (cpu, cuda:0)")

    p = sub.add_parser("serve", help="start the server (supervisor, frontend, workers)")
    p.add_argument("models", nargs="*", metavar="MODEL", help="model directory/file, hub id, or config id")
    model_args(p)
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--api-key", help=f"require this bearer key on /v1 routes (or ${cfg.API_KEY_ENV})")
    p.add_argument("--replicas", type=int, help="worker processes per model")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("speak", help="synthesize to a file in-process, without a server")
    p.add_argument("text", help="text to speak, or - to read stdin")
    p.add_argument("-o", "--output", required=True, help="output file")
    p.add_argument("--model", help="model reference or config id (default: the config's first model)")
    model_args(p)
    p.add_argument("--voice", help="voice id (default: the model's first)")
    p.add_argument("--format", choices=["mp3", "opus", "aac", "flac", "wav", "pcm"],
                   help="default: from the file extension")
    p.add_argument("--speed", type=float, default=1.0)
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_speak)

    p = sub.add_parser("voices", help="list voices (of the config's models, or of a server with --url); "
                       "'vtts voices add NAME SAMPLE --consent RECORDING' and 'vtts voices rm ID' manage a "
                       "server's custom voices")
    p.add_argument("models", nargs="*", metavar="MODEL", help="models to list; or add NAME SAMPLE; or rm ID")
    model_args(p)
    p.add_argument("--url", help="ask a running server instead (add/rm: default http://127.0.0.1:8000)")
    p.add_argument("--api-key")
    p.add_argument("--consent", help="add: the consent recording (a file), or an existing consent id (cons_...)")
    p.add_argument("--transcript", help="add: what the sample says")
    p.add_argument("--language", help="add: the sample's language (BCP 47, default: the consent's)")
    p.set_defaults(func=cmd_voices)

    try:
        from vtts.bench import add_parser as add_bench
    except ImportError:  # pragma: no cover
        pass
    else:
        add_bench(sub)
    from vtts.evaluate import add_parser as add_eval

    add_eval(sub)
    from vtts.admin_cli import add_parser as add_admin

    add_admin(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except cfg.ConfigError as exc:
        print(f"vtts: config error: {exc}", file=sys.stderr)
        return 2
    except (EngineError, ModelLoadError, ValueError, OSError) as exc:
        print(f"vtts: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
