"""Git credentials, how they reach the git process, and how they are kept out of every text.

The controller reads a Secret and hands its values here as plain strings. This module turns them
into an environment for the git CLI without ever putting a secret into a URL or a command line
(both are visible in process lists and end up in git's own error messages):

* an HTTP(S) token or user/password becomes an ``Authorization`` header set through the
  ``GIT_CONFIG_COUNT`` / ``GIT_CONFIG_KEY_n`` / ``GIT_CONFIG_VALUE_n`` environment variables,
  scoped to the repository URL so a redirect to another host does not receive it;
* an SSH private key is written to a private temporary file (mode 0600 in a 0700 directory) that
  is removed when the git call ends, and ``GIT_SSH_COMMAND`` points ``ssh -i`` at it.

:func:`redactor_for` builds the :class:`~canary.adapters.redaction.Redactor` that removes every
credential value (and its base64, URL-quoted and header forms) from any text before that text
is logged, raised or returned.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import shlex
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from canary.adapters.redaction import Redactor
from canary.errors import CanaryError

__all__ = [
    "CredentialsError",
    "GitCredentials",
    "credentials_from_secret",
    "git_auth_environment",
    "redactor_for",
]


class CredentialsError(CanaryError, ValueError):
    """A Secret does not hold a usable combination of Git credential keys."""


@dataclass(frozen=True, slots=True, repr=False)
class GitCredentials:
    """Credentials for one repository, as plain values read from a Secret.

    * ``token`` alone: HTTP ``Authorization: Bearer <token>``.
    * ``username`` with ``token`` or ``password``: HTTP basic authentication.
    * ``identity`` (a private key in OpenSSH or PEM form), optionally ``known_hosts``: SSH.

    The ``repr`` never shows a value, so a stray log of the object is harmless.
    """

    token: str | None = None
    username: str | None = None
    password: str | None = None
    identity: str | None = None
    known_hosts: str | None = None

    def __repr__(self) -> str:
        present = [
            name
            for name in ("token", "username", "password", "identity", "known_hosts")
            if getattr(self, name)
        ]
        return f"GitCredentials({', '.join(present) or 'none'})"

    __str__ = __repr__

    @property
    def is_empty(self) -> bool:
        return not (self.token or self.password or self.identity)

    def secret_values(self) -> tuple[str, ...]:
        """Every value that must never appear in a text (the username is not a secret)."""
        return tuple(v for v in (self.token, self.password, self.identity) if v)

    def http_authorization(self) -> str | None:
        """The value of the HTTP ``Authorization`` header, or None without HTTP credentials."""
        secret = self.token or self.password
        if not secret:
            return None
        if self.username:
            pair = f"{self.username}:{secret}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        if self.token:
            return f"Bearer {self.token}"
        # A password without a username: the common "token as password" form.
        pair = f"git:{secret}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def redactor(self) -> Redactor:
        return redactor_for(self)


def _decode_secret_value(key: str, value: str | bytes, *, encoded: bool, where: str) -> str:
    if isinstance(value, bytes):
        raw = value
    elif encoded:
        try:
            raw = base64.b64decode(value.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError):
            raise CredentialsError(
                f"{where} key {key!r}: expected base64-encoded data (a Secret's .data field)"
            ) from None
    else:
        return value
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CredentialsError(f"{where} key {key!r}: expected UTF-8 text") from None


def credentials_from_secret(
    data: Mapping[str, str | bytes] | None,
    *,
    string_data: Mapping[str, str] | None = None,
    encoded: bool = True,
    where: str = "Secret",
) -> GitCredentials:
    """Build credentials from a Secret's ``data`` (base64 unless ``encoded=False``).

    Recognised keys: ``token``; ``username`` + ``password`` (or ``username`` + ``token``);
    ``identity`` + optional ``known_hosts``. Flux's ``bearerToken`` and Argo CD's
    ``sshPrivateKey`` are read as ``token`` and ``identity``, so their Secrets work as they are;
    other keys are ignored. ``where`` names the Secret in error messages (e.g.
    ``"Secret test/git-auth"``). Errors never contain a value.
    """
    values: dict[str, str] = {}
    for key, value in (data or {}).items():
        values[key] = _decode_secret_value(key, value, encoded=encoded, where=where)
    for key, text in (string_data or {}).items():
        values[key] = text

    def get(key: str) -> str | None:
        text = values.get(key)
        if text is None:
            return None
        text = text if key in ("identity", "sshPrivateKey") else text.strip()
        return text or None

    creds = GitCredentials(
        token=get("token") or get("bearerToken"),
        username=get("username"),
        password=get("password"),
        identity=get("identity") or get("sshPrivateKey"),
        known_hosts=get("known_hosts"),
    )
    if creds.username and not (creds.password or creds.token):
        raise CredentialsError(
            f"{where}: key 'username' is set but neither 'password' nor 'token' is"
        )
    if creds.known_hosts and not creds.identity:
        raise CredentialsError(f"{where}: key 'known_hosts' is set but 'identity' is missing")
    if creds.identity and "PRIVATE KEY" not in creds.identity:
        raise CredentialsError(
            f"{where} key 'identity': expected a private key "
            "(a block starting with '-----BEGIN ... PRIVATE KEY-----')"
        )
    if creds.is_empty:
        raise CredentialsError(
            f"{where}: expected key 'token', 'username' + 'password', or 'identity'; "
            f"found keys {sorted(values) or 'none'}"
        )
    return creds


def _variants(secret: str) -> Iterator[str]:
    """A secret as given, base64-encoded (both alphabets, padded or not), URL-quoted and,
    for a private key, each substantial line of it; nothing for a blank value."""
    if not secret.strip():
        return
    yield secret
    raw = secret.encode()
    for enc in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = enc.decode("ascii")
        yield text
        yield text.rstrip("=")
    yield quote(secret, safe="")
    if "\n" in secret:
        # A private key: every substantial line on its own, in case a tool echoes one.
        for line in secret.splitlines():
            line = line.strip()
            if len(line) >= 16 and not line.startswith("-----"):
                yield line


def redactor_for(creds: GitCredentials | None, *extra: str) -> Redactor:
    """A :class:`~canary.adapters.redaction.Redactor` of every value of ``creds`` and of
    ``extra``, in every form git or a forge's API may echo it (see :func:`_variants`)."""
    values: list[str] = list(extra)
    if creds is not None:
        values.extend(creds.secret_values())
        header = creds.http_authorization()
        if header:
            values.append(header.split(" ", 1)[1])
    return Redactor.of(values, forms=_variants)


def _http_scope(url: str) -> str:
    """The URL prefix an ``http.<url>.*`` setting should match: the repository URL itself."""
    return url.rstrip("/")


def is_ssh_url(url: str) -> bool:
    if url.startswith(("ssh://", "git+ssh://", "ssh+git://")):
        return True
    # scp-like syntax: [user@]host:path (no scheme, a colon before the first slash)
    if "://" in url:
        return False
    head = url.split("/", 1)[0]
    return ":" in head and not url.startswith("/")


def is_http_url(url: str) -> bool:
    return url.startswith(("http://", "https://"))


@contextlib.contextmanager
def git_auth_environment(
    url: str,
    creds: GitCredentials | None,
    *,
    state_dir: Path,
    ssh_connect_timeout: int = 20,
) -> Iterator[dict[str, str]]:
    """Yield the environment variables that authenticate git against ``url``.

    ``state_dir`` is a private directory of the working copy; it keeps the ``known_hosts`` file
    learnt on first use when the Secret gives none. Temporary key files are gone when the
    ``with`` block ends, also on errors and cancellation.
    """
    env: dict[str, str] = {}
    if creds is not None and is_http_url(url):
        header = creds.http_authorization()
        if header is not None:
            env["GIT_CONFIG_COUNT"] = "1"
            env["GIT_CONFIG_KEY_0"] = f"http.{_http_scope(url)}.extraHeader"
            env["GIT_CONFIG_VALUE_0"] = f"Authorization: {header}"
        yield env
        return
    if not is_ssh_url(url):
        yield env
        return
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(prefix="ssh-", dir=state_dir) as tmp:
        tmp_dir = Path(tmp)
        os.chmod(tmp_dir, 0o700)
        options = [
            "ssh",
            "-F",
            "/dev/null",
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={ssh_connect_timeout}",
        ]
        if creds is not None and creds.known_hosts:
            known_hosts = tmp_dir / "known_hosts"
            _write_private(known_hosts, creds.known_hosts)
            options += [
                "-o",
                f"UserKnownHostsFile={known_hosts}",
                "-o",
                "StrictHostKeyChecking=yes",
            ]
        else:
            learnt = state_dir / "known_hosts"
            if not learnt.exists():
                _write_private(learnt, "")
            options += [
                "-o",
                f"UserKnownHostsFile={learnt}",
                "-o",
                "StrictHostKeyChecking=accept-new",
            ]
        if creds is not None and creds.identity:
            key = tmp_dir / "identity"
            identity = creds.identity if creds.identity.endswith("\n") else creds.identity + "\n"
            _write_private(key, identity)
            options += ["-i", str(key), "-o", "IdentitiesOnly=yes"]
        env["GIT_SSH_COMMAND"] = shlex.join(options)
        env["GIT_SSH_VARIANT"] = "ssh"
        yield env


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
