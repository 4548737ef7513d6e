"""Alias files: strict validation with exact messages, layering, discovery, caching."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from model_registry import (
    AliasConfigError,
    InvalidParameterError,
    ProviderSpec,
    list_available_models,
    list_providers,
    load_registry,
    register_provider,
    resolve,
    validate_files,
)
from model_registry._prompts import check_finite
from model_registry.aliases import (
    MAX_ALIAS_FILE_BYTES,
    default_alias_paths,
    packaged_aliases_path,
)

WriteToml = Callable[..., Path]


def load_error(path: Path) -> AliasConfigError:
    with pytest.raises(AliasConfigError) as caught:
        load_registry(path, layered=False)
    return caught.value


# --- the seed's schema -----------------------------------------------------------


def test_seed_minimal_alias_means_the_providers_default_model(write_toml: WriteToml) -> None:
    path = write_toml(
        """
        [aliases."my-alias"]
        provider = "openai"
        """
    )
    alias = load_registry(path, layered=False).aliases["my-alias"]
    assert (alias.provider, alias.model_id, alias.route, dict(alias.defaults)) == (
        "openai",
        "gpt-4.1",
        "openai/gpt-4.1",
        {},
    )


def test_seed_alias_with_model_id_and_defaults(write_toml: WriteToml) -> None:
    path = write_toml(
        """
        [aliases."my-eval-model"]
        provider = "openai"
        model_id = "gpt-4.1"

        [aliases."my-reasoning-model"]
        provider = "openai"
        model_id = "gpt-5.2-2025-12-11"
        description = "reasoning"

        [aliases."my-reasoning-model".defaults]
        reasoning_effort = "high"
        """
    )
    registry = load_registry(path, layered=False)
    assert registry.aliases["my-eval-model"].model_id == "gpt-4.1"
    reasoning = registry.aliases["my-reasoning-model"]
    assert dict(reasoning.defaults) == {"reasoning_effort": "high"}
    assert reasoning.description == "reasoning"
    assert reasoning.source == str(path)


@pytest.mark.parametrize(
    ("name", "defaults"),
    [
        ("Nanbeige/Nanbeige4.1-3B", {"tokenizer_mode": "slow", "stop_token_ids": [166101]}),
        (
            "Qwen/Qwen3-4B-Instruct-2507",
            {"dtype": "bfloat16", "max_model_len": 32768, "trust_remote_code": True},
        ),
        ("allenai/Olmo-3-7B-Instruct", {"dtype": "bfloat16", "max_model_len": 32768}),
    ],
)
def test_packaged_defaults_hold_the_seeds_local_models(
    name: str, defaults: dict[str, object]
) -> None:
    alias = load_registry().aliases[name]
    assert (alias.provider, alias.model_id, dict(alias.defaults)) == ("local", name, defaults)


def test_every_packaged_alias_has_a_description() -> None:
    registry = load_registry(packaged_aliases_path(), layered=False)
    assert len(registry.aliases) >= 8
    assert {a.provider for a in registry.aliases.values()} == {
        "openai",
        "anthropic",
        "gemini",
        "deepseek",
        "local",
    }
    assert all(a.description for a in registry.aliases.values())


# --- validation: one AliasConfigError naming file, alias and key -----------------

BAD_FILES = [
    pytest.param(
        """
        [aliases."x"]
        provider = "openai"
        model-id = "gpt-4.1"
        """,
        "{path}: alias 'x': unknown key 'model-id' (did you mean 'model_id'?); allowed keys: "
        'provider, model_id, defaults, description, fallbacks (call kwargs go under [aliases."x".defaults])',
        ("x", "model-id"),
        id="unknown-key-did-you-mean",
    ),
    pytest.param(
        """
        [aliases."x"]
        provider = "openai"
        temprature = 0.2
        """,
        "{path}: alias 'x': unknown key 'temprature'; allowed keys: provider, model_id, "
        'defaults, description, fallbacks (call kwargs go under [aliases."x".defaults])',
        ("x", "temprature"),
        id="call-kwarg-outside-defaults",
    ),
    pytest.param(
        """
        [aliases."x"]
        provider = 3
        """,
        "{path}: alias 'x': key 'provider' must be a string, got an integer (3)",
        ("x", "provider"),
        id="wrong-type",
    ),
    pytest.param(
        """
        [aliases."x"]
        model_id = "gpt-4.1"
        """,
        "{path}: alias 'x': missing key 'provider'",
        ("x", "provider"),
        id="missing-provider",
    ),
    pytest.param(
        """
        [aliases."x"]
        provider = "opnai"
        """,
        "{path}: alias 'x': unknown provider 'opnai' (did you mean 'openai'?); known providers: "
        "anthropic, deepseek, gemini, local, openai (or declare it in a [providers] table)",
        ("x", "provider"),
        id="unknown-provider",
    ),
    pytest.param(
        """
        [aliases.""]
        provider = "openai"
        """,
        "{path}: alias names must not be empty or blank; give the alias a name, "
        'as in [aliases."my-model"]',
        ("", None),
        id="empty-name",
    ),
    pytest.param(
        """
        [aliases."x"]
        provider = "openai"
        defaults = "temperature=0"
        """,
        "{path}: alias 'x': key 'defaults' must be a table of call kwargs, got a string; "
        'write it as [aliases."x".defaults]',
        ("x", "defaults"),
        id="defaults-not-a-table",
    ),
    pytest.param(
        """
        [aliases."x"]
        provider = "local"
        """,
        "{path}: alias 'x': provider 'local' has no default model; "
        'add model_id = "<Hugging Face repo id or path>"',
        ("x", "model_id"),
        id="local-without-model-id",
    ),
    pytest.param(
        """
        [aliases."x"]
        provider = "openai"
        model_id = ""
        """,
        "{path}: alias 'x': key 'model_id' must not be empty",
        ("x", "model_id"),
        id="empty-model-id",
    ),
    pytest.param(
        """
        aliases = ["x"]
        """,
        "{path}: 'aliases' must be a table of [aliases.\"name\"] tables, got an array",
        (None, "aliases"),
        id="aliases-not-a-table",
    ),
    pytest.param(
        """
        [alias."x"]
        provider = "openai"
        """,
        "{path}: unknown top-level key 'alias' (did you mean 'aliases'?); an alias file holds "
        'only [aliases."name"], [providers."name"] and [limits."name"] tables',
        (None, "alias"),
        id="unknown-top-level-key",
    ),
    pytest.param(
        """
        [aliases]
        x = "openai"
        """,
        "{path}: alias 'x': must be a table with at least 'provider', got a string",
        ("x", None),
        id="alias-not-a-table",
    ),
    pytest.param(
        """
        [providers."openai"]
        api_base = "http://x"
        """,
        "{path}: provider 'openai': is a built-in provider and cannot be redefined; "
        "pick another name",
        ("openai", None),
        id="redefine-builtin-provider",
    ),
    pytest.param(
        """
        [providers."fleet"]
        litellm_prefix = "hosted_vllm"
        api_bsae = "http://x"
        """,
        "{path}: provider 'fleet': unknown key 'api_bsae' (did you mean 'api_base'?); "
        "allowed keys: litellm_prefix, api_base, api_key_env, default_model, description",
        ("fleet", "api_bsae"),
        id="provider-unknown-key",
    ),
    pytest.param(
        """
        [providers."fleet"]
        litellm_prefix = "hosted_vllm"
        api_key_env = "sk-abc def"
        """,
        "{path}: provider 'fleet': key 'api_key_env' must name an environment variable "
        "(like 'FLEET_API_KEY'), got something else (not shown, in case it is the key "
        "itself); put the key in that variable, never in the file",
        ("fleet", "api_key_env"),
        id="provider-bad-env-var",
    ),
]


@pytest.mark.parametrize(("text", "message", "where"), BAD_FILES)
def test_invalid_alias_file_raises_one_error_naming_file_alias_and_key(
    write_toml: WriteToml, text: str, message: str, where: tuple[str | None, str | None]
) -> None:
    path = write_toml(text)
    error = load_error(path)
    assert str(error) == message.format(path=path)
    assert (error.path, error.alias, error.key) == (str(path), *where)
    assert isinstance(error, ValueError)


def test_invalid_toml_names_the_line(write_toml: WriteToml) -> None:
    path = write_toml(
        """
        [aliases."x"]
        provider = "openai"
        model_id = gpt-4.1
        """
    )
    assert str(load_error(path)) == f"{path}: invalid TOML: Invalid value (at line 4, column 12)"


def test_truncated_toml_names_the_last_line(write_toml: WriteToml) -> None:
    path = write_toml('[aliases."x"]\nprovider = [\n')
    assert str(load_error(path)) == (
        f"{path}: invalid TOML: Invalid value (at line 2, end of file)"
    )


def test_duplicate_alias_in_one_file_names_the_line(write_toml: WriteToml) -> None:
    path = write_toml('[aliases."x"]\nprovider = "openai"\n[aliases."x"]\nprovider = "gemini"\n')
    assert "(at line 3" in str(load_error(path))


def test_non_utf8_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[aliases."café"]\nprovider = "openai"\n'.encode("latin-1"))
    assert (
        str(load_error(path)) == f"{path}: not UTF-8 text (byte 13); save the alias file as UTF-8"
    )


def test_every_problem_of_a_file_is_reported_together(write_toml: WriteToml) -> None:
    path = write_toml(
        """
        [aliases."a"]
        provider = "opnai"

        [aliases."b"]
        provider = "openai"
        modelid = "x"

        [aliases."c"]
        provider = "openai"
        """
    )
    error = load_error(path)
    assert error.problems == (
        f"{path}: alias 'a': unknown provider 'opnai' (did you mean 'openai'?); known providers: "
        "anthropic, deepseek, gemini, local, openai (or declare it in a [providers] table)",
        f"{path}: alias 'b': unknown key 'modelid' (did you mean 'model_id'?); allowed keys: "
        'provider, model_id, defaults, description, fallbacks (call kwargs go under [aliases."b".defaults])',
    )
    assert str(error).startswith(error.problems[0] + f"\n(and 1 more problem(s) in {path}:\n  ")
    assert validate_files(path) == list(error.problems)


def test_missing_file_names_the_path_and_the_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nope.toml"
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(missing))
    with pytest.raises(AliasConfigError) as caught:
        resolve("gpt-4o")
    assert str(caught.value) == (
        f"{missing}: alias file not found; check the path (set by MODEL_REGISTRY_ALIASES)"
    )


def test_broken_env_file_raises_on_first_use_not_at_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess
    import sys

    bad = tmp_path / "bad.toml"
    bad.write_text("[aliases.x]\nprovider = 1\n")
    env = {**os.environ, "MODEL_REGISTRY_ALIASES": str(bad)}
    ok = subprocess.run([sys.executable, "-c", "import model_registry"], env=env, check=False)
    assert ok.returncode == 0
    used = subprocess.run(
        [sys.executable, "-c", "import model_registry; model_registry.resolve('gpt-4o')"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert "AliasConfigError" in used.stderr
    assert "alias 'x': key 'provider' must be a string, got an integer (1)" in used.stderr


# --- layering ----------------------------------------------------------------------


def test_three_files_layer_later_wins_per_alias_and_each_remembers_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    project_file = project / "config" / "model_aliases.toml"
    project_file.write_text(
        '[aliases."my-eval-model"]\nprovider = "anthropic"\n'
        '[aliases."team-model"]\nprovider = "gemini"\n'
        '[aliases."both"]\nprovider = "openai"\n'
    )
    user_file = tmp_path / "mine.toml"
    user_file.write_text('[aliases."both"]\nprovider = "deepseek"\n')
    monkeypatch.chdir(project)
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(user_file))

    assert [str(p) for p in default_alias_paths()] == [
        str(packaged_aliases_path()),
        str(project_file),
        str(user_file),
    ]
    by_name = {a.name: a for a in list_available_models()}
    assert by_name["my-reasoning-model"].source == str(packaged_aliases_path())
    assert (by_name["my-eval-model"].provider, by_name["my-eval-model"].source) == (
        "anthropic",
        "config/model_aliases.toml",
    )
    assert by_name["team-model"].source == "config/model_aliases.toml"
    assert (by_name["both"].provider, by_name["both"].source) == ("deepseek", str(user_file))
    assert resolve("my-eval-model").source == "exact alias from config/model_aliases.toml"


def test_project_file_that_is_the_packaged_file_loads_once() -> None:
    repo_root = packaged_aliases_path().parent.parent
    assert Path.cwd().resolve() == repo_root  # the tests run from the checkout
    assert default_alias_paths() == [packaged_aliases_path()]


def test_explicit_path_argument_layers_on_top(write_toml: WriteToml) -> None:
    path = write_toml('[aliases."my-eval-model"]\nprovider = "gemini"\n')
    registry = load_registry(path)
    assert registry.aliases["my-eval-model"].provider == "gemini"
    assert "my-reasoning-model" in registry.aliases  # the packaged file is still there
    assert registry.files[-1] == str(path)


def test_later_file_may_use_a_provider_declared_earlier(write_toml: WriteToml) -> None:
    first = write_toml('[providers."fleet"]\napi_base = "http://127.0.0.1:9/v1"\n', "a.toml")
    second = write_toml('[aliases."f"]\nprovider = "fleet"\nmodel_id = "m"\n', "b.toml")
    registry = load_registry(first, second, layered=False)
    assert registry.aliases["f"].route == "openai/m"
    assert dict(registry.aliases["f"].defaults) == {"api_base": "http://127.0.0.1:9/v1"}


def test_alias_files_validate_against_providers_registered_before_loading(
    user_aliases: Callable[[str], Path],
) -> None:
    user_aliases('[aliases."mine"]\nprovider = "acme"\nmodel_id = "m1"\n')
    with pytest.raises(AliasConfigError, match="unknown provider 'acme'"):
        resolve("mine")
    register_provider(ProviderSpec(name="acme", litellm_prefix="openai", api_key_env="ACME_KEY"))
    assert resolve("mine").route == "openai/m1"  # registering cleared the cached failure


def test_changing_the_env_var_reloads(user_aliases: Callable[[str], Path]) -> None:
    with pytest.raises(Exception, match="no alias"):
        resolve("my-special")
    user_aliases('[aliases."my-special"]\nprovider = "gemini"\n')
    assert resolve("my-special").provider == "gemini"


def test_list_available_models_is_sorted_and_frozen() -> None:
    models = list_available_models()
    assert [m.name for m in models] == sorted(m.name for m in models)
    with pytest.raises(AttributeError):
        models[0].provider = "x"  # type: ignore[misc]


def test_list_providers_says_whether_the_key_is_set_never_its_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-sentinel-abc")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    by_name = {p.name: p for p in list_providers()}
    assert [p.name for p in list_providers()] == sorted(by_name)
    assert by_name["openai"].to_dict()["api_key_set"] is True
    assert by_name["gemini"].to_dict()["api_key_set"] is False
    assert by_name["local"].to_dict()["api_key_set"] is None
    assert "sk-sentinel-abc" not in repr(list_providers()) + str(by_name["openai"].to_dict())


def test_alias_repr_and_dict_redact_credentials(write_toml: WriteToml) -> None:
    path = write_toml(
        """
        [aliases."x"]
        provider = "openai"
        [aliases."x".defaults]
        api_key = "sk-sentinel-xyz"
        hf_token = "hf_sentinel"
        temperature = 0
        """
    )
    alias = load_registry(path, layered=False).aliases["x"]
    for text in (repr(alias), str(alias), str(alias.to_dict())):
        assert "sentinel" not in text
    assert alias.to_dict()["defaults"] == {"api_key": "***", "hf_token": "***", "temperature": 0}
    assert alias.defaults["api_key"] == "sk-sentinel-xyz"


def test_loading_never_writes_to_the_alias_file(write_toml: WriteToml) -> None:
    path = write_toml('[aliases."x"]\nprovider = "openai"\n')
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    load_registry(path)
    validate_files(path)
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before


# --- what an alias file may be -------------------------------------------------------


def _validate_in_a_child(path: Path, *, env_path: bool = False) -> subprocess.CompletedProcess[str]:
    """validate_files (or, with env_path, resolve through MODEL_REGISTRY_ALIASES) in a child
    with 1 GiB of memory and a deadline, so a loader that reads a device or blocks on a
    FIFO fails the test instead of taking the machine or hanging it."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
        "from model_registry import AliasConfigError, resolve\n"
        "from model_registry import validate_files\n"
        "try:\n"
        + (
            "    resolve('gpt-4o')\n"
            if env_path
            else f"    print('\\n'.join(validate_files({str(path)!r})))\n"
        )
        + "except AliasConfigError as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "MODEL_REGISTRY_ALIASES": str(path)} if env_path else None
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("env_path", [False, True], ids=["validate", "env-var"])
def test_a_fifo_is_never_opened(tmp_path: Path, env_path: bool) -> None:
    fifo = tmp_path / "aliases.toml"
    os.mkfifo(fifo)
    result = _validate_in_a_child(fifo, env_path=env_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.strip() == (
        f"{fifo}: is a named pipe (FIFO), not a regular file; "
        "an alias file must be a regular TOML file"
    )


def test_a_device_is_never_read() -> None:
    result = _validate_in_a_child(Path("/dev/zero"))
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.strip() == (
        "/dev/zero: is a character device, not a regular file; "
        "an alias file must be a regular TOML file"
    )


def test_a_directory_names_the_path_and_what_to_do(tmp_path: Path) -> None:
    assert str(load_error(tmp_path)) == (
        f"{tmp_path}: is a directory, not an alias file; name the .toml file inside it; "
        "an alias file must be a regular TOML file"
    )


def test_a_symlink_loop_is_an_alias_config_error(tmp_path: Path) -> None:
    loop = tmp_path / "loop.toml"
    loop.symlink_to(loop)
    message = f"{loop}: a symbolic link loop (a link that points back to itself); fix the link"
    assert str(load_error(loop)) == message
    assert validate_files(loop) == [message]


def test_a_symlink_to_a_regular_file_loads(write_toml: WriteToml, tmp_path: Path) -> None:
    target = write_toml('[aliases."x"]\nprovider = "openai"\n')
    link = tmp_path / "link.toml"
    link.symlink_to(target)
    assert list(load_registry(link, layered=False).aliases) == ["x"]


def test_a_file_over_64_mib_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.toml"
    with big.open("wb") as file:
        file.truncate(MAX_ALIAS_FILE_BYTES + 1)  # sparse: no disk, and never read
    assert MAX_ALIAS_FILE_BYTES == 64 * 2**20
    assert str(load_error(big)) == (
        f"{big}: 67,108,865 bytes is over the 64 MiB limit for alias files; "
        "check that this is the alias file you meant"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_says_permission_denied(write_toml: WriteToml) -> None:
    path = write_toml('[aliases."x"]\nprovider = "openai"\n')
    path.chmod(0)
    assert str(load_error(path)) == (
        f"{path}: permission denied; make the alias file readable (chmod u+r)"
    )


def test_a_project_file_that_is_not_a_file_is_reported_not_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config" / "model_aliases.toml").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AliasConfigError, match=r"^config/model_aliases.toml: is a directory"):
        resolve("gpt-4o")


# --- numbers that are not numbers -----------------------------------------------------


@pytest.mark.parametrize(
    ("line", "key", "shown"),
    [
        ("temperature = nan", "temperature", "nan"),
        ("top_p = +inf", "top_p", "inf"),
        ("presence_penalty = -inf", "presence_penalty", "-inf"),
        ("extra_body = { scale = [1.0, -nan] }", "extra_body.scale[1]", "nan"),
        ("logit_bias = { a = { b = inf } }", "logit_bias.a.b", "inf"),
    ],
)
def test_nan_and_inf_in_defaults_are_rejected_naming_file_alias_and_key(
    write_toml: WriteToml, line: str, key: str, shown: str
) -> None:
    path = write_toml(f'[aliases."x"]\nprovider = "openai"\n[aliases."x".defaults]\n{line}\n')
    error = load_error(path)
    assert str(error) == (
        f"{path}: alias 'x': key '{key}' is {shown}, not a finite number (no parameter means "
        "anything as nan or inf); use a number or remove the key"
    )
    assert (error.alias, error.key) == ("x", key.split(".")[0])


def test_finite_floats_load(write_toml: WriteToml) -> None:
    path = write_toml(
        '[aliases."x"]\nprovider = "openai"\n[aliases."x".defaults]\n'
        "temperature = 0.0\ntop_p = 1e308\nx = { y = [-1.5e-300] }\n"
    )
    assert load_registry(path, layered=False).aliases["x"].defaults["top_p"] == 1e308


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (float("nan"), "--set temperature: nan is not a finite number; pass a finite number"),
        (float("-inf"), "--set temperature: -inf is not a finite number; pass a finite number"),
        (
            {"a": [1.0, float("inf")]},
            "--set temperature: inf is not a finite number (at a[1]); pass a finite number",
        ),
    ],
)
def test_check_finite_rejects_nan_and_inf_at_any_depth(value: object, message: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        check_finite(value, "--set temperature")
    assert str(caught.value) == message


@pytest.mark.parametrize("value", [0.5, 1, "nan", None, [1.0, {"a": 2.0}], True])
def test_check_finite_lets_finite_values_and_strings_through(value: object) -> None:
    check_finite(value, "--set x")


# --- limits and fallbacks -----------------------------------------------------------------

LIMITS_AND_FALLBACKS_BAD = [
    pytest.param(
        """
        [limits."openai"]
        rmp = 600
        """,
        "{path}: limits 'openai': unknown key 'rmp' (did you mean 'rpm'?); the keys are rpm, "
        "tpm, concurrency",
        ("openai", "rmp"),
        id="limits-unknown-key-did-you-mean",
    ),
    pytest.param(
        """
        [limits."openai"]
        rpm = 0
        """,
        "{path}: limits 'openai': 'rpm' must be a positive finite number (requests started "
        "per minute, e.g. rpm = 600), got 0",
        ("openai", "rpm"),
        id="limits-zero-rpm",
    ),
    pytest.param(
        """
        [limits."openai"]
        concurrency = -2
        """,
        "{path}: limits 'openai': 'concurrency' must be a whole number >= 1 (calls in flight, "
        "e.g. concurrency = 8), got -2",
        ("openai", "concurrency"),
        id="limits-negative-concurrency",
    ),
    pytest.param(
        """
        [limits."nobody"]
        rpm = 60
        """,
        "{path}: limits 'nobody': 'nobody' is neither a provider nor an alias of the alias "
        'files; name one of them (as in [limits."openai"])',
        ("nobody", "limits"),
        id="limits-unknown-name",
    ),
    pytest.param(
        """
        [aliases."a"]
        provider = "openai"
        fallbacks = ["no-such-model-xyz"]
        """,
        "{path}: alias 'a': fallback 'no-such-model-xyz' does not resolve: ",
        ("a", "fallbacks"),
        id="fallback-unknown-name",
    ),
    pytest.param(
        """
        [aliases."a"]
        provider = "openai"
        fallbacks = ["b"]

        [aliases."b"]
        provider = "anthropic"
        fallbacks = ["c"]

        [aliases."c"]
        provider = "gemini"
        fallbacks = ["a"]
        """,
        "{path}: alias 'a': fallbacks go round in a cycle: a -> b -> c -> a; remove one of "
        "these fallbacks",
        ("a", "fallbacks"),
        id="fallback-cycle",
    ),
    pytest.param(
        """
        [aliases."a"]
        provider = "openai"
        fallbacks = "b"
        """,
        "{path}: alias 'a': key 'fallbacks' must be a list of model names, as in "
        'fallbacks = ["claude-sonnet", "gemini-flash"]',
        ("a", "fallbacks"),
        id="fallbacks-not-a-list",
    ),
    pytest.param(
        """
        [aliases."a"]
        provider = "openai"
        defaults = { results_db = "run.sqlite" }
        """,
        "{path}: alias 'a': key 'defaults.results_db' is not a call kwarg: pass it to "
        "get_client() (every call's store) or to generate(), stream(), generate_many() or "
        "iter_many(), as in get_client(name, results_db='run.sqlite')",
        ("a", "results_db"),
        id="results-db-in-defaults",
    ),
]


@pytest.mark.parametrize(("text", "message", "where"), LIMITS_AND_FALLBACKS_BAD)
def test_bad_limits_and_fallbacks_raise_one_error_naming_file_name_and_key(
    write_toml: WriteToml, text: str, message: str, where: tuple[str | None, str | None]
) -> None:
    path = write_toml(text)
    error = load_error(path)
    assert str(error).startswith(message.format(path=path))
    assert (error.path, error.alias, error.key) == (str(path), *where)
    # validate checks the file on top of the packaged aliases, as MODEL_REGISTRY_ALIASES loads it
    with pytest.raises(AliasConfigError) as layered:
        load_registry(path)
    assert validate_files(path) == list(layered.value.problems)


def test_limits_and_fallbacks_load_and_later_files_win_per_name(write_toml: WriteToml) -> None:
    first = write_toml(
        """
        [aliases."fast"]
        provider = "openai"
        fallbacks = ["claude-sonnet-4-20250514", "openai:gpt-4.1-mini"]

        [limits."openai"]
        rpm = 600
        tpm = 200000

        [limits."fast"]
        concurrency = 8
        """
    )
    second = write_toml(
        """
        [limits."openai"]
        rpm = 60
        """,
        name="second.toml",
    )
    registry = load_registry(first, second, layered=False)
    assert registry.aliases["fast"].fallbacks == ("claude-sonnet-4-20250514", "openai:gpt-4.1-mini")
    assert registry.aliases["fast"].to_dict()["fallbacks"] == list(
        registry.aliases["fast"].fallbacks
    )
    assert {name: limits.rpm for name, limits in registry.limits.items()} == {
        "openai": 60,
        "fast": None,
    }
    assert registry.limits["fast"].concurrency == 8


def test_limits_in_force_names_the_provider_and_alias_limits(
    write_toml: WriteToml, monkeypatch: pytest.MonkeyPatch
) -> None:
    from model_registry.api import limits_in_force

    path = write_toml(
        """
        [aliases."fast"]
        provider = "openai"

        [limits."openai"]
        rpm = 600

        [limits."fast"]
        concurrency = 8
        tpm = 1500.5
        """
    )
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(path))
    assert limits_in_force(resolve("fast")) == {
        "openai": {"rpm": 600},
        "fast": {"tpm": 1500.5, "concurrency": 8},
    }
    assert limits_in_force(resolve("openai")) == {"openai": {"rpm": 600}}
    assert limits_in_force(resolve("claude-sonnet-4-20250514")) == {}


# --- a JSON Schema file as an alias default -----------------------------------

SCHEMA_ALIAS = '[aliases."judge"]\nprovider = "openai"\n[aliases."judge".defaults]\n'


def test_a_response_format_path_is_relative_to_the_alias_file(
    write_toml: WriteToml, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema = tmp_path / "conf" / "schemas" / "verdict.json"
    schema.parent.mkdir(parents=True)
    schema.write_text('{"type": "object", "properties": {"ok": {"type": "boolean"}}}')
    path = write_toml(
        SCHEMA_ALIAS + 'response_format = "schemas/verdict.json"\n', name="conf/aliases.toml"
    )
    monkeypatch.chdir(tmp_path / "conf" / "schemas")  # not where the path is read from
    registry = load_registry(path, layered=False)
    # read once, at load: the alias holds the schema itself, named after the file
    read = {
        "type": "json_schema",
        "json_schema": {
            "name": "verdict",
            "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}},
        },
    }
    assert registry.aliases["judge"].defaults["response_format"] == read
    monkeypatch.setenv("MODEL_REGISTRY_ALIASES", str(path))
    assert resolve("judge").params["response_format"] == read


def test_a_schema_given_inline_is_kept_as_it_is(write_toml: WriteToml) -> None:
    path = write_toml(SCHEMA_ALIAS + 'response_format = { type = "json_object" }\n')
    defaults = load_registry(path, layered=False).aliases["judge"].defaults
    assert defaults["response_format"] == {"type": "json_object"}


def test_a_missing_schema_file_names_the_path_it_looked_for(
    write_toml: WriteToml, tmp_path: Path
) -> None:
    path = write_toml(SCHEMA_ALIAS + 'response_format = "schemas/missing.json"\n')
    error = load_error(path)
    assert str(error) == (
        f"{path}: alias 'judge': key 'defaults.response_format': no JSON Schema file "
        f"{str(tmp_path / 'schemas' / 'missing.json')!r} (a path relative to the alias file)"
    )
    assert (error.alias, error.key) == ("judge", "response_format")


@pytest.mark.parametrize(
    ("content", "shown"),
    [
        (
            "{not json",
            "not JSON (Expecting property name enclosed in double quotes: line 1 "
            "column 2 (char 1))",
        ),
        ('["a", "list"]', "not a JSON object"),
    ],
)
def test_a_schema_file_that_is_no_json_object_is_a_load_error(
    write_toml: WriteToml, tmp_path: Path, content: str, shown: str
) -> None:
    (tmp_path / "x.json").write_text(content)
    path = write_toml(SCHEMA_ALIAS + 'response_format = "x.json"\n')
    error = load_error(path)
    assert str(error) == (
        f"{path}: alias 'judge': key 'defaults.response_format': "
        f"{str(tmp_path / 'x.json')!r} is {shown}; a JSON Schema file holds one JSON object, "
        'as in {"type": "object", "properties": {...}}'
    )
    assert (error.alias, error.key) == ("judge", "response_format")


def test_loading_raises_every_problem_at_once_links_and_cycles_included(
    write_toml: WriteToml,
) -> None:
    path = write_toml(
        """
        [aliases."a"]
        provider = "openai"
        temprature = 0.2

        [aliases."b"]
        provider = "openai"
        fallbacks = ["no-such-model-xyz"]

        [aliases."c"]
        provider = "openai"
        fallbacks = ["d"]

        [aliases."d"]
        provider = "openai"
        fallbacks = ["c"]

        [limits."nobody"]
        rpm = 5
        """
    )
    error = load_error(path)
    assert [(p.split(": ")[1], p.split(": ")[2][:12]) for p in error.problems] == [
        ("alias 'a'", "unknown key "),
        ("limits 'nobody'", "'nobody' is "),
        ("alias 'b'", "fallback 'no"),
        ("alias 'c'", "fallbacks go"),
    ]
    assert str(error).startswith(error.problems[0] + f"\n(and 3 more problem(s) in {path}:\n  ")
    assert (error.alias, error.key) == ("a", "temprature")
