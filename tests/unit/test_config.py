from pathlib import Path

import pytest

from vtts import config as cfg


def test_bundled_default_is_the_piper_voice_on_cpu() -> None:
    c = cfg.load()
    assert [m.engine for m in c.models] == ["piper"]
    assert c.models[0].device == "cpu" and c.server.host == "127.0.0.1"
    assert c.default_model == c.models[0].id


def test_repo_default_matches_packaged_default() -> None:
    repo = Path(__file__).resolve().parents[2] / "configs" / "default.toml"
    assert cfg.load(repo) == cfg.load()


def test_every_field_has_a_default() -> None:
    c = cfg.parse({})
    assert c.server.port == 8000 and c.models == []


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ({"server": {"prot": 1}}, "unknown field 'prot'"),
        ({"bogus": {}}, "unknown field 'bogus'"),
        ({"models": [{"id": "a", "engine": "piper", "devise": "cpu"}]}, "models[0]: unknown field 'devise'"),
        ({"server": {"port": "80"}}, "server.port: expected int"),
        ({"server": {"port": 70000}}, "server.port"),
        ({"server": {"api_keys": "k"}}, "server.api_keys: expected a list"),
        ({"models": [{"engine": "piper"}]}, "models[0].id: required"),
        ({"models": [{"id": "a"}]}, "models[0].engine: required"),
        ({"models": [{"id": "a", "engine": "p"}, {"id": "a", "engine": "p"}]}, "duplicate model id"),
        ({"models": [{"id": "a", "engine": "p", "replicas": 0}]}, "replicas"),
        ({"models": [{"id": "a", "engine": "p", "device": "gpu"}]}, "device"),
        ({"server": {"default_model": "x"}}, "default_model"),
        ({"server": {"request_timeout_s": True}}, "expected a number"),
    ],
)
def test_invalid_configs_name_the_field(doc: dict, needle: str) -> None:
    with pytest.raises(cfg.ConfigError) as err:
        cfg.parse(doc)
    assert needle in str(err.value)


def test_toml_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server\n")
    with pytest.raises(cfg.ConfigError, match="invalid TOML"):
        cfg.load(bad)
    with pytest.raises(cfg.ConfigError, match="cannot read"):
        cfg.load(tmp_path / "missing.toml")


def test_api_key_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cfg.API_KEY_ENV, "k1,k2")
    assert cfg.parse({}).server.api_keys == ["k1", "k2"]
    assert cfg.parse({"server": {"api_keys": ["own"]}}).server.api_keys == ["own"]


def test_numbers_accept_ints_for_floats() -> None:
    assert cfg.parse({"server": {"request_timeout_s": 5}}).server.request_timeout_s == 5.0


@pytest.mark.parametrize("name", ["header_timeout_s", "body_timeout_s", "keepalive_timeout_s", "write_timeout_s",
                                  "max_buffered_bytes", "max_connections"])
def test_http_limits_must_be_positive(name: str) -> None:
    """Issue 12 #8/#9: a zero limit would mean no limit (or no service); each is named when wrong."""
    assert getattr(cfg.parse({}).server, name) > 0
    with pytest.raises(cfg.ConfigError, match=f"server.{name}"):
        cfg.parse({"server": {name: 0}})
def test_stream_headroom_is_off_by_default_and_bounded() -> None:
    assert cfg.parse({}).server.stream_headroom == 0.0
    assert cfg.parse({"server": {"stream_headroom": 0.8}}).server.stream_headroom == 0.8
    for bad in (-0.1, 1e9):
        with pytest.raises(cfg.ConfigError, match="server.stream_headroom"):
            cfg.parse({"server": {"stream_headroom": bad}})


def model(**fields: object) -> dict:
    return {"id": "m", "engine": "piper", **fields}


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"replicas": 17}, "replicas: must be 1..16"),
        ({"replicas": 2**64}, "replicas"),
        ({"memory_mb": 2**64}, "memory_mb: must be 0..1048576"),
        ({"max_batch": 10**9}, "max_batch"),
        ({"max_queue": 2**63}, "max_queue"),
        ({"options": {"a": 2**64}}, "options"),
        ({"voice_aliases": {"alloy": 3}}, "voice_aliases"),
        ({"first_audio_target_s": -0.1}, "first_audio_target_s: must be 0..3600 seconds"),
        ({"playback_margin_s": 1e9}, "playback_margin_s"),
        ({"relaxed_deadline_s": "5"}, "relaxed_deadline_s"),
        ({"jitter_buffer_s": True}, "jitter_buffer_s"),
        ({"max_cuts": 3}, "max_cuts: must be 0, 1 or 2"),
        ({"max_cuts": True}, "max_cuts"),
        ({"max_cuts": 1.5}, "max_cuts"),
        ({"short_steps": "yes"}, "short_steps"),
        ({"short_steps": 1}, "short_steps"),
    ],
)
def test_every_numeric_field_of_a_model_is_bounded(fields: dict, needle: str) -> None:
    """The admin API takes entries from clients: no number may start unbounded work or break the wire."""
    with pytest.raises(cfg.ConfigError, match=needle.replace("[", r"\[").replace(".", r"\.")):
        cfg.parse_model(model(**fields))


def test_pacing_fields_have_defaults_and_take_whole_numbers() -> None:
    m = cfg.parse_model(model(first_audio_target_s=1))
    assert (m.first_audio_target_s, m.playback_margin_s, m.relaxed_deadline_s, m.jitter_buffer_s) == (1, 0.2, 5.0, 0.2)
    assert m.max_cuts == 1 and cfg.parse_model(model(max_cuts=0)).max_cuts == 0
    assert m.short_steps is True and cfg.parse_model(model(short_steps=False)).short_steps is False


def test_options_nesting_is_bounded_without_recursion() -> None:
    deep: dict = {}
    node = deep
    for _ in range(100_000):  # far past the interpreter's recursion limit
        node["x"] = {}
        node = node["x"]
    with pytest.raises(cfg.ConfigError, match="nested deeper than 16"):
        cfg.parse_model(model(options=deep))
    cfg.parse_model(model(options={"a": {"b": [1, {"c": 2}]}}))


def test_max_replicas_is_a_server_field() -> None:
    c = cfg.parse({"server": {"max_replicas": 64}, "models": [model(replicas=40)]})
    assert c.models[0].replicas == 40
    with pytest.raises(cfg.ConfigError, match="replicas: must be 1..4"):
        cfg.parse({"server": {"max_replicas": 4}, "models": [model(replicas=5)]})


@pytest.mark.parametrize(
    ("models", "needle"),
    [
        ([model(aliases=["tts-1"])], "'tts-1' is one of OpenAI's model names"),
        ([model(id="gpt-4o-mini-tts")], "OpenAI's model names"),
        ([model(id="a"), model(id="b", aliases=["a"])], "'a' is already taken by model 'a'"),
        ([model(id="a", aliases=["x"]), model(id="b", aliases=["x"])], "'x' is already taken by model 'a'"),
        ([model(id="a", aliases=["b"]), model(id="b")], "'b' is already taken by model 'a'"),
        ([model(id="a"), model(id="a")], "duplicate model id 'a'"),
    ],
)
def test_names_are_unique_across_ids_aliases_and_openai_names(models: list, needle: str) -> None:
    with pytest.raises(cfg.ConfigError, match=needle):
        cfg.parse({"models": models})


def test_ops_fields_have_documented_defaults() -> None:
    s = cfg.parse({}).server
    assert s.worker_stall_timeout_s == 120.0 and s.max_replicas == 16
    assert s.admin_python_allowlist == [] and s.admin_engine_allowlist == []
    with pytest.raises(cfg.ConfigError, match="worker_stall_timeout_s"):
        cfg.parse({"server": {"worker_stall_timeout_s": 0}})


def test_configured_openai_names_are_reserved_too() -> None:
    """A name added to server.openai_model_aliases routes to the default model, so no alias may take it."""
    server = {"openai_model_aliases": ["tts-1", "my-tts"]}
    with pytest.raises(cfg.ConfigError, match="'my-tts' is one of OpenAI's model names"):
        cfg.parse({"server": server, "models": [model(aliases=["my-tts"])]})
    assert cfg.parse({"server": server, "models": [model(aliases=["tts-1-hd"])]}).models[0].aliases == ["tts-1-hd"]
