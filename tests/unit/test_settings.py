"""Settings: one resolution (flags, CGHISTORY_*, plugins.cghistory, defaults) for the commands
(``context.Context``) and for completion, read only when a setting is used."""

from __future__ import annotations

import json

import pytest

from docker_cghistory import cli, dockerconfig, plugin, reference, settings
from docker_cghistory.complete.sources import Fetcher, Sources
from docker_cghistory.context import Context
from docker_cghistory.errors import ConfigError
from docker_cghistory.settings import LIST_SETTINGS, SETTINGS, Settings, split_list

from .conftest import Env


@pytest.fixture(autouse=True)
def _no_settings_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for setting in SETTINGS.values():
        if setting.env:
            monkeypatch.delenv(setting.env, raising=False)
    monkeypatch.setenv("CGHISTORY_NO_BACKGROUND", "1")


def command_context(*words: str) -> Context:
    """The Context ``cli`` builds for ``docker-cghistory WORDS``."""
    _, args = cli.parse(list(words or ["python"]), "docker-cghistory")
    return Context(program="docker-cghistory", settings=Settings(vars(args)))


def completion_settings() -> Settings:
    """The settings a TAB resolves with (what ``cobra_complete`` builds)."""
    return Sources(background=False).settings


# --- one name, one set of defaults ------------------------------------------------------------


def test_the_plugin_name_is_defined_once() -> None:
    assert plugin.NAME is settings.PLUGIN_NAME == "cghistory"
    assert dockerconfig.PLUGIN_NAME is settings.PLUGIN_NAME


def test_defaults_agree_with_the_reference_parser() -> None:
    assert (settings.DEFAULT_REGISTRY, settings.DEFAULT_ORG) == (
        reference.DEFAULT_REGISTRY, reference.DEFAULT_ORG)


# --- list settings: every form, every list setting, both paths -------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("python, node  go", ["python", "node", "go"]),
        ('["python", "cgr.dev/acme/app:1"]', ["python", "cgr.dev/acme/app:1"]),
        (["python", " node "], ["python", "node"]),
        ("", []),
        (None, []),
        (5000, []),
        ("[python, node]", ["python", "node"]),
    ],
)
def test_split_list_accepts_a_json_list_or_a_separated_string(value: object,
                                                              expected: list[str]) -> None:
    assert split_list(value) == expected


LIST_FORMS = {
    "json-list": ["reg.example:5000", "other.example"],
    "comma-string": "reg.example:5000, other.example",
    "space-string": "reg.example:5000  other.example",
    "string-holding-json": '["reg.example:5000", "other.example"]',
}


def test_the_table_covers_the_list_settings() -> None:
    assert set(LIST_SETTINGS) == {"images", "insecure-registries"}


@pytest.mark.parametrize("form", LIST_FORMS)
@pytest.mark.parametrize("key", LIST_SETTINGS)
def test_list_settings_in_every_form_mean_the_same_to_commands_and_completion(
        isolated_env: Env, key: str, form: str) -> None:
    isolated_env.write_config({"plugins": {"cghistory": {key: LIST_FORMS[form]}}})
    expected = ["reg.example:5000", "other.example"]
    assert command_context().settings.get_list(key) == expected
    assert completion_settings().get_list(key) == expected


@pytest.mark.parametrize("form", LIST_FORMS)
def test_insecure_registries_from_the_config_reach_the_registry_client(
        isolated_env: Env, form: str) -> None:
    isolated_env.write_config({"plugins": {"cghistory": {"insecure-registries":
                                                         LIST_FORMS[form]}}})
    context = command_context()
    assert context.is_insecure("reg.example:5000") and context.is_insecure("other.example")
    assert context.client("reg.example:5000").plain_http
    assert Fetcher(completion_settings())._client("reg.example:5000", 0.5).plain_http
    assert not context.is_insecure("cgr.dev")


def test_a_json_list_of_insecure_registries_is_not_one_string(isolated_env: Env) -> None:
    # The bug: Context turned the list into "['reg.example:5000']" and used plain HTTPS.
    isolated_env.write_config(
        {"plugins": {"cghistory": {"insecure-registries": ["reg.example:5000"]}}})
    context = Context(program="docker-cghistory")
    assert context.is_insecure("reg.example:5000")
    assert context.client("reg.example:5000").base == "http://reg.example:5000"


@pytest.mark.parametrize("form", ["comma-string", "string-holding-json"])
def test_list_settings_from_the_environment_in_either_form(
        monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    monkeypatch.setenv("CGHISTORY_INSECURE_REGISTRIES", str(LIST_FORMS[form]))
    assert command_context().is_insecure("other.example")
    assert completion_settings().insecure_registries == ["reg.example:5000", "other.example"]


def test_list_settings_add_up_across_flags_environment_and_config(
        isolated_env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    isolated_env.write_config({"plugins": {"cghistory": {"insecure-registries": ["c.example"]}}})
    monkeypatch.setenv("CGHISTORY_INSECURE_REGISTRIES", "e.example")
    context = command_context("--insecure-registry", "F.example", "python")
    assert context.settings.insecure_registries == ["F.example", "e.example", "c.example"]
    assert context.insecure == {"f.example", "e.example", "c.example"}
    completion = Settings({"insecure_registries": ["F.example"]}, strict=False)
    assert completion.insecure_registries == context.settings.insecure_registries


# --- single values: order, and the same answer on both paths ---------------------------------


def test_order_flags_environment_config_defaults(isolated_env: Env,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    config = {"registry": "config.example", "org": "config-org"}
    assert Settings(config={}).registry == "cgr.dev"
    assert Settings(config={}).org == "chainguard"
    assert Settings(config=config).registry == "config.example"
    monkeypatch.setenv("CGHISTORY_REGISTRY", "env.example")
    assert Settings(config=config).registry == "env.example"
    assert Settings({"registry": "flag.example"}, config=config).registry == "flag.example"
    # completion collects every occurrence of a flag: the last one wins, as in argparse
    assert Settings({"registry": ["a.example", "flag.example"]}).registry == "flag.example"
    isolated_env.write_config({"plugins": {"cghistory": config}})
    assert command_context("--org", "flag-org", "python").default_org == "flag-org"
    assert command_context().default_org == completion_settings().org == "config-org"
    assert command_context().default_registry == completion_settings().registry == "env.example"


def test_timeout_from_the_environment_or_the_config(isolated_env: Env,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    isolated_env.write_config({"plugins": {"cghistory": {"timeout": "7"}}})
    assert command_context().client_options == {"connect_timeout": 7.0, "read_timeout": 7.0}
    monkeypatch.setenv("CGHISTORY_TIMEOUT", "20")
    assert command_context().client_options["read_timeout"] == 20.0
    assert command_context("--timeout", "3", "python").client_options["read_timeout"] == 3.0


def test_an_invalid_timeout_fails_only_where_it_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CGHISTORY_TIMEOUT", "soon")
    context = command_context()  # install or uninstall would not care
    with pytest.raises(ConfigError, match="invalid timeout 'soon'"):
        context.client("cgr.dev")


def test_local_wait_from_the_environment_or_the_config(isolated_env: Env,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(config={}).local_wait == 0.2
    assert Settings(config={"local-wait": "3"}).local_wait == 3.0
    monkeypatch.setenv("CGHISTORY_LOCAL_WAIT", "0")
    assert Settings(config={"local-wait": "3"}).local_wait == 0.0
    for bad in ("soon", "-1", "601", "nan"):
        monkeypatch.setenv("CGHISTORY_LOCAL_WAIT", bad)
        with pytest.raises(ConfigError, match="invalid local-wait"):
            Settings(config={}).local_wait  # noqa: B018


# --- read only when needed, strictly by commands, leniently by completion --------------------


def test_settings_are_read_only_when_used(isolated_env: Env) -> None:
    isolated_env.write_config('{"plugins": {"cghistory": ')  # broken
    context = command_context("--registry", "r.example", "--org", "o", "python")
    assert (context.default_registry, context.default_org) == ("r.example", "o")
    with pytest.raises(ConfigError, match="not valid JSON"):
        command_context().parse("python")  # a command that needs the config says so
    assert completion_settings().config == {}  # a TAB never fails


def test_completion_skips_json_for_configs_without_plugin_settings(isolated_env: Env) -> None:
    isolated_env.write_config({"auths": {"cgr.dev": {}}})
    assert not dockerconfig.mentions(settings.PLUGIN_NAME)
    isolated_env.write_config(json.dumps({"plugins": {"cghistory": {"org": "x"}}}))
    assert dockerconfig.mentions(settings.PLUGIN_NAME)
    assert completion_settings().org == "x"


def test_a_plugin_section_that_is_not_an_object(isolated_env: Env) -> None:
    isolated_env.write_config({"plugins": {"cghistory": "acme"}})
    with pytest.raises(ConfigError, match=r"plugins\.cghistory must be an object"):
        command_context().parse("python")
    assert completion_settings().org == "chainguard"
