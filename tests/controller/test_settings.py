"""`canary run`'s settings: flags first, the environment where it fills or (chat) overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from canary.settings import ChatSettings, Settings


def test_the_environment_fills_what_the_flags_leave() -> None:
    settings = Settings.from_environment(
        {
            "POD_NAME": "canary-engine-7d9",
            "POD_NAMESPACE": "canary-engine",
            "CANARY_GIT_CACHE": "/var/cache/git",
            "EVENT_WEBHOOK_URL": "https://hooks.example.com/events",
        }
    )
    assert settings.identity.startswith("canary-engine-7d9_")
    assert settings.leader_namespace == "canary-engine"
    assert settings.git_cache == Path("/var/cache/git")
    assert settings.event_webhook == "https://hooks.example.com/events"
    assert settings.watched_namespaces is None


def test_flags_win_except_for_chat_where_the_environment_wins_as_in_flagger() -> None:
    settings = Settings.from_environment(
        {"CANARY_GIT_CACHE": "/env", "SLACK_CHANNEL": "#from-env", "SLACK_URL": " "},
        git_cache=Path("/flag"),
        namespaces=("a", "b", "a"),
        chat=ChatSettings(slack_url="https://hooks.slack.test/flag", slack_channel="#flag"),
    )
    assert settings.git_cache == Path("/flag")
    assert settings.watched_namespaces == ("a", "b")
    assert settings.chat.slack_channel == "#from-env"
    assert settings.chat.slack_url == "https://hooks.slack.test/flag"  # blank env: ignored


def test_two_processes_never_share_an_identity() -> None:
    first = Settings.from_environment({"POD_NAME": "same"})
    second = Settings.from_environment({"POD_NAME": "same"})
    assert first.identity != second.identity


def test_credentials_stay_out_of_repr_and_unknown_settings_are_refused() -> None:
    chat = ChatSettings(slack_url="https://hooks.slack.test/T000/B000/secret-part")
    assert "secret-part" not in repr(Settings(chat=chat))
    with pytest.raises(TypeError, match="unknown settings: namespace"):
        Settings.from_environment({}, namespace="x")


def test_event_webhook_and_chat_from_the_environment_override_their_flags_as_in_flagger() -> None:
    settings = Settings.from_environment(
        {
            "EVENT_WEBHOOK_URL": "http://env.example/events",
            "SLACK_TOKEN": "tok",
            "SLACK_USER": "bot",
            "SLACK_PROXY_URL": "http://proxy.example:3128",
            "MSTEAMS_URL": "https://teams.example/w",
            "MSTEAMS_PROXY_URL": " ",
        },
        event_webhook="http://flag.example/events",
        chat=ChatSettings(slack_channel="flag-channel", msteams_proxy_url="http://p:1"),
    )
    assert settings.event_webhook == "http://env.example/events"
    assert (settings.chat.slack_token, settings.chat.slack_user) == ("tok", "bot")
    assert settings.chat.slack_proxy_url == "http://proxy.example:3128"
    assert settings.chat.slack_channel == "flag-channel"  # unset variables keep the flag
    assert settings.chat.msteams_url == "https://teams.example/w"
    assert settings.chat.msteams_proxy_url == "http://p:1"  # a blank variable does not erase it
    blank = Settings.from_environment({"EVENT_WEBHOOK_URL": " "}, event_webhook="http://f/y")
    assert blank.event_webhook == "http://f/y"
