"""Credentials: reading a Secret, redaction, and the environment handed to git."""

from __future__ import annotations

import base64
import shlex
import stat
import subprocess
from pathlib import Path

import pytest

from canary.adapters.gitops import (
    CredentialsError,
    GitCredentials,
    credentials_from_secret,
    redactor_for,
)
from canary.adapters.gitops.credentials import git_auth_environment

KEY = """-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACBfakekeymaterialfortestsonlyAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA
-----END OPENSSH PRIVATE KEY-----
"""


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


class TestFromSecret:
    def test_token(self) -> None:
        creds = credentials_from_secret({"token": b64("tok-123\n")})
        assert creds == GitCredentials(token="tok-123")
        assert creds.http_authorization() == "Bearer tok-123"

    def test_username_and_password_is_basic_auth(self) -> None:
        creds = credentials_from_secret({"username": b64("bot"), "password": b64("pw-9")})
        assert creds.http_authorization() == "Basic " + b64("bot:pw-9")

    def test_flux_and_argocd_key_names_are_understood(self) -> None:
        assert credentials_from_secret({"bearerToken": b64("tok-f")}).token == "tok-f"
        creds = credentials_from_secret({"sshPrivateKey": b64(KEY), "url": b64("git@x:y")})
        assert creds.identity == KEY

    def test_string_data_and_raw_values(self) -> None:
        creds = credentials_from_secret(
            None, string_data={"identity": KEY, "known_hosts": "h ssh-ed25519 AAAA"}
        )
        assert creds.identity == KEY and creds.known_hosts == "h ssh-ed25519 AAAA"
        assert credentials_from_secret({"token": "plain"}, encoded=False).token == "plain"

    @pytest.mark.parametrize(
        ("data", "message"),
        [
            ({"username": b64("bot")}, "Secret test/git: key 'username' is set but neither"),
            (
                {"known_hosts": b64("h k")},
                "Secret test/git: key 'known_hosts' is set but 'identity'",
            ),
            (
                {"token": "not base64!!"},
                "Secret test/git key 'token': expected base64-encoded data",
            ),
            (
                {"identity": b64("hunter2-not-a-key")},
                "Secret test/git key 'identity': expected a private key",
            ),
            (
                {"tokn": b64("x")},
                "Secret test/git: expected key 'token', 'username' + 'password', or 'identity'; found keys ['tokn']",
            ),
        ],
    )
    def test_errors_name_the_secret_and_key_but_no_value(
        self, data: dict[str, str], message: str
    ) -> None:
        with pytest.raises(CredentialsError) as info:
            credentials_from_secret(data, where="Secret test/git")
        assert str(info.value).startswith(message)
        assert "hunter2" not in str(info.value)

    def test_repr_never_shows_values(self) -> None:
        creds = GitCredentials(token="tok-abc", username="bot", password="pw-xyz", identity=KEY)
        text = repr(creds) + str(creds) + repr([creds])
        assert "tok-abc" not in text and "pw-xyz" not in text and "PRIVATE" not in text
        assert text.startswith("GitCredentials(token, username, password, identity)")


class TestRedactor:
    def test_every_form_of_every_secret_is_removed(self) -> None:
        creds = GitCredentials(username="bot", password="p@ss/w0rd+x")
        redact = redactor_for(creds)
        header_value = base64.b64encode(b"bot:p@ss/w0rd+x").decode()
        text = (
            f"user bot, raw p@ss/w0rd+x, b64 {b64('p@ss/w0rd+x')}, url p%40ss%2Fw0rd%2Bx, "
            f"urlsafe {base64.urlsafe_b64encode(b'p@ss/w0rd+x').decode()}, header Basic {header_value}"
        )
        out = redact(text)
        assert "w0rd" not in out and b64("p@ss/w0rd+x") not in out and header_value not in out
        assert out.count("***") == 5
        assert "bot" in out  # the user name is not a secret

    def test_private_key_lines_are_removed_even_alone(self) -> None:
        redact = redactor_for(GitCredentials(identity=KEY))
        line = KEY.splitlines()[2]
        assert redact(f"debug1: {line}") == "debug1: ***"

    def test_longer_secret_is_removed_whole_when_it_contains_a_shorter_one(self) -> None:
        redact = redactor_for(None, "abcd", "xxabcdyy")
        assert redact("xxabcdyy abcd") == "*** ***"


class TestEnvironment:
    def test_http_token_becomes_a_header_scoped_to_the_repository(self, tmp_path: Path) -> None:
        url = "https://git.example.test/org/app.git"
        with git_auth_environment(url, GitCredentials(token="tok-1"), state_dir=tmp_path) as env:
            assert env == {
                "GIT_CONFIG_COUNT": "1",
                "GIT_CONFIG_KEY_0": f"http.{url}.extraHeader",
                "GIT_CONFIG_VALUE_0": "Authorization: Bearer tok-1",
            }

    def test_file_and_git_urls_get_nothing(self, tmp_path: Path) -> None:
        for url in ("file:///srv/app.git", "git://127.0.0.1/app.git"):
            with git_auth_environment(url, GitCredentials(token="t"), state_dir=tmp_path) as env:
                assert env == {}

    def test_ssh_key_is_a_private_temporary_file_removed_afterwards(self, tmp_path: Path) -> None:
        creds = GitCredentials(identity=KEY, known_hosts="git.example.test ssh-ed25519 AAAAC3Nz")
        with git_auth_environment(
            "ssh://git@git.example.test/org/app.git", creds, state_dir=tmp_path
        ) as env:
            argv = shlex.split(env["GIT_SSH_COMMAND"])
            key = Path(argv[argv.index("-i") + 1])
            assert key.read_text() == KEY
            assert stat.S_IMODE(key.stat().st_mode) == 0o600
            assert stat.S_IMODE(key.parent.stat().st_mode) == 0o700
            assert "StrictHostKeyChecking=yes" in argv
            known = Path(
                next(a for a in argv if a.startswith("UserKnownHostsFile=")).split("=", 1)[1]
            )
            assert known.read_text().startswith("git.example.test ssh-ed25519")
            effective = ssh_effective_config(argv)
            assert f"identityfile {key}" in effective
            assert "batchmode yes" in effective
        assert not key.exists() and not known.exists()

    def test_without_known_hosts_first_use_is_trusted_and_remembered(self, tmp_path: Path) -> None:
        with git_auth_environment(
            "git@git.example.test:org/app.git", GitCredentials(identity=KEY), state_dir=tmp_path
        ) as env:
            argv = shlex.split(env["GIT_SSH_COMMAND"])
            assert "StrictHostKeyChecking=accept-new" in argv
            assert f"UserKnownHostsFile={tmp_path / 'known_hosts'}" in argv
            assert "stricthostkeychecking accept-new" in ssh_effective_config(argv)
        assert (tmp_path / "known_hosts").exists()  # kept for the next pass


def ssh_effective_config(argv: list[str]) -> str:
    """What ssh makes of the command line (``ssh -G`` evaluates options without connecting)."""
    proc = subprocess.run(
        [*argv, "-G", "git.example.test"], capture_output=True, text=True, timeout=10, check=True
    )
    return proc.stdout.lower()
