"""The played Flux image automation selects and rewrites as Flux documents it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.git_fixtures import BareRepo
from tests.gitops.image_automation import PlayedImageAutomation, select_tag, update_setters

TAGS = [
    "latest",
    "1.0.0",
    "1.2.0",
    "1.10.0",
    "v1.11.0",
    "2.0.0-rc.1",
    "2.0.0",
    "6.0.0",
    "6.0.1",
    "6.0.2-rc.1",
    "6.1.0",
    "7.0.0",
    "1.2",
    "01.2.3",
    "6.9.9.sig",
]


def semver(range_: str) -> dict[str, Any]:
    return {"policy": {"semver": {"range": range_}}}


@pytest.mark.parametrize(
    ("range_", "expected"),
    [
        (">=1.0.0", "7.0.0"),
        (">=1.0.0 <2.0.0", "v1.11.0"),
        (">=1.0.0, <2.0.0", "v1.11.0"),
        ("~6.0", "6.0.1"),
        ("~1", "v1.11.0"),
        ("^6", "6.1.0"),
        ("^6.0.1", "6.1.0"),
        ("6.x", "6.1.0"),
        ("6.0.x", "6.0.1"),
        ("6.0.0", "6.0.0"),
        ("1.x || 6.0.x", "6.0.1"),
        ("1.0.0 - 1.2.0", "1.2.0"),
        (">6.0", "7.0.0"),
        ("<=6.0", "6.0.1"),
        ("!=7.0.0", "6.1.0"),
        ("*", "7.0.0"),
        (">=6.0.0-0 <6.1.0-0", "6.0.2-rc.1"),
        (">=6.0.0-0 <6.1.0", "6.0.1"),  # each condition needs its own prerelease
        ("^2.x-0", "2.0.0"),
        ("<2.0.0-0 >1.11.0-0", "v1.11.0"),
        ("8.x", None),
    ],
)
def test_a_semver_range_picks_the_highest_matching_release(
    range_: str, expected: str | None
) -> None:
    assert select_tag(TAGS, semver(range_), None) == expected


def test_prereleases_only_match_ranges_that_mention_one() -> None:
    tags = ["1.0.0", "1.1.0-rc.1", "1.1.0-rc.2", "1.1.0-beta.10"]

    assert select_tag(tags, semver(">=1.0.0"), None) == "1.0.0"
    assert select_tag(tags, semver(">=1.0.0-0"), None) == "1.1.0-rc.2"
    assert select_tag(["1.1.0-beta.2", "1.1.0-beta.10"], semver(">=1.0.0-0"), None) == (
        "1.1.0-beta.10"
    )


def test_an_excluded_tag_is_skipped_so_the_previous_one_wins() -> None:
    tags = ["6.0.0", "6.0.1"]

    assert select_tag(tags, semver(">=6.0.0"), None) == "6.0.1"
    assert select_tag(tags, semver(">=6.0.0"), [r"^.*\.sig$", r"^6\.0\.1$"]) == "6.0.0"


def test_exclusions_match_anywhere_in_the_tag() -> None:
    tags = ["6.0.0", "6.0.1", "16.0.1"]

    assert select_tag(tags, semver(">=6.0.0"), ["6.0.1"]) == "6.0.0"


def test_signatures_are_excluded_by_default_and_when_the_list_is_empty() -> None:
    tags = ["sha256-abc.sig", "main-1", "main-2"]
    alphabetical: dict[str, Any] = {"policy": {"alphabetical": {"order": "asc"}}}

    assert select_tag(tags, alphabetical, None) == "main-2"
    assert select_tag(tags, alphabetical, []) == "main-2"
    assert select_tag(tags, alphabetical, ["^main-2$"]) == "sha256-abc.sig"


def test_filter_tags_extract_feeds_the_policy_and_the_original_tag_is_returned() -> None:
    tags = ["main-abc1234-1700000100", "main-def5678-1700000099", "dev-aaa1111-1800000000"]
    spec = {
        "filterTags": {"pattern": "^main-[a-fA-F0-9]+-(?P<ts>.*)", "extract": "$ts"},
        "policy": {"numerical": {"order": "asc"}},
    }

    assert select_tag(tags, spec, None) == "main-abc1234-1700000100"


def test_filter_tags_with_go_named_groups_and_alphabetical_order() -> None:
    tags = ["RELEASE.2023-01-31T08-29-25Z", "RELEASE.2024-05-01T00-00-00Z", "latest"]
    spec = {
        "filterTags": {"pattern": r"^RELEASE\.(?<timestamp>.*)Z$", "extract": "${timestamp}"},
        "policy": {"alphabetical": {"order": "asc"}},
    }

    assert select_tag(tags, spec, None) == "RELEASE.2024-05-01T00-00-00Z"


@pytest.mark.parametrize(
    ("extract", "expected"),
    [
        ("$1", "main-9-2"),
        ("${2}", "main-3-10"),
        ("$num", "main-9-2"),
        ("${num}", "main-9-2"),
        ("$2x", None),  # the longest name: group "2x", which does not exist, gives ""
        ("$$1", None),  # "$$" is a literal "$": "$1" is not a number
    ],
)
def test_extract_follows_go_template_expansion(extract: str, expected: str | None) -> None:
    spec = {
        "filterTags": {"pattern": r"^main-(?P<num>\d+)-(\d+)$", "extract": extract},
        "policy": {"numerical": {"order": "asc"}},
    }

    assert select_tag(["main-9-2", "main-3-10"], spec, None) == expected


def test_numerical_and_alphabetical_orders() -> None:
    numbers = ["3", "10", "2.5"]
    assert select_tag(numbers, {"policy": {"numerical": {"order": "asc"}}}, None) == "10"
    assert select_tag(numbers, {"policy": {"numerical": {"order": "DESC"}}}, None) == "2.5"
    assert select_tag(numbers, {"policy": {"alphabetical": {}}}, None) == "3"
    assert select_tag(numbers, {"policy": {"alphabetical": {"order": "desc"}}}, None) == "10"


def test_a_numerical_policy_fails_on_a_tag_that_is_not_a_number() -> None:
    assert select_tag(["1", "2", "latest"], {"policy": {"numerical": {}}}, None) is None


def test_nothing_to_choose_from_gives_no_tag() -> None:
    assert select_tag([], semver(">=1.0.0"), None) is None
    assert select_tag(["a.sig"], {"policy": {"alphabetical": {}}}, None) is None


@pytest.mark.parametrize(
    "spec",
    [
        {"policy": {}},
        {"policy": {"alphabetical": {"order": "up"}}},
        {"policy": {"semver": {"range": "latest"}}},
        {"policy": {"semver": {"range": ""}}},
    ],
)
def test_an_invalid_policy_is_an_error(spec: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        select_tag(["1.0.0"], spec, None)


MANIFEST = """\
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      containers:
        - name: app
          image: ghcr.io/org/podinfo:6.0.0 # {"$imagepolicy": "flux-system:podinfo"}
        - name: copy
          image: ghcr.io/org/podinfo:6.0.0
        - name: legacy
          image: ghcr.io/org/podinfo:6.0.0 ## {"$ref": "#/definitions/io.k8s.cli.setters.flux-system:podinfo"}
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
spec:
  values:
    image:
      repository: "ghcr.io/org/old" # {"$imagepolicy": "flux-system:podinfo:name"}
      tag: '6.0.0'  # {"$imagepolicy": "flux-system:podinfo:tag"}
      plain: 6.0  #{"$imagepolicy":"podinfo:tag"}
      other: 1.0.0 # {"$imagepolicy": "flux-system:other:tag"}
"""


def test_update_setters_rewrites_only_marked_lines() -> None:
    new = update_setters(MANIFEST, {("flux-system", "podinfo"): "ghcr.io/org/podinfo:6.1"}, "x")

    changed = [
        (old, line)
        for old, line in zip(MANIFEST.splitlines(), new.splitlines(), strict=True)
        if old != line
    ]
    assert changed == [
        (
            '          image: ghcr.io/org/podinfo:6.0.0 # {"$imagepolicy": "flux-system:podinfo"}',
            '          image: ghcr.io/org/podinfo:6.1 # {"$imagepolicy": "flux-system:podinfo"}',
        ),
        (
            "          image: ghcr.io/org/podinfo:6.0.0 ## "
            '{"$ref": "#/definitions/io.k8s.cli.setters.flux-system:podinfo"}',
            "          image: ghcr.io/org/podinfo:6.1 ## "
            '{"$ref": "#/definitions/io.k8s.cli.setters.flux-system:podinfo"}',
        ),
        (
            '      repository: "ghcr.io/org/old" # {"$imagepolicy": "flux-system:podinfo:name"}',
            '      repository: "ghcr.io/org/podinfo" # {"$imagepolicy": "flux-system:podinfo:name"}',
        ),
        (
            '      tag: \'6.0.0\'  # {"$imagepolicy": "flux-system:podinfo:tag"}',
            '      tag: \'6.1\'  # {"$imagepolicy": "flux-system:podinfo:tag"}',
        ),
    ]


def test_a_plain_tag_that_would_read_as_a_number_is_quoted() -> None:
    text = 'tag: 6.0.0 # {"$imagepolicy": "flux-system:podinfo:tag"}\n'

    assert update_setters(text, {("flux-system", "podinfo"): "app:6.1"}, "x") == (
        'tag: "6.1" # {"$imagepolicy": "flux-system:podinfo:tag"}\n'
    )


def test_a_marker_naming_only_the_policy_uses_the_automation_namespace() -> None:
    text = 'image: app:1 # {"$imagepolicy": "podinfo"}\r\n'

    assert update_setters(text, {("flux-system", "podinfo"): "app:2"}, "flux-system") == (
        'image: app:2 # {"$imagepolicy": "podinfo"}\r\n'
    )


# -- a whole pass over Git -------------------------------------------------------------------

OBJECTS: list[dict[str, Any]] = [
    {
        "apiVersion": "image.toolkit.fluxcd.io/v1beta2",
        "kind": "ImageRepository",
        "metadata": {"name": "podinfo", "namespace": "flux-system"},
        "spec": {"image": "ghcr.io/org/podinfo"},
    },
    {
        "apiVersion": "image.toolkit.fluxcd.io/v1beta2",
        "kind": "ImagePolicy",
        "metadata": {"name": "podinfo", "namespace": "flux-system"},
        "spec": {"imageRepositoryRef": {"name": "podinfo"}, "policy": {"semver": {"range": "6.x"}}},
    },
    {
        "apiVersion": "image.toolkit.fluxcd.io/v1beta2",
        "kind": "ImagePolicy",
        "metadata": {"name": "podinfo", "namespace": "elsewhere"},
        "spec": {
            "imageRepositoryRef": {"name": "podinfo", "namespace": "flux-system"},
            "policy": {"semver": {"range": "*"}},
        },
    },
]

APP = 'image: ghcr.io/org/podinfo:{} # {{"$imagepolicy": "flux-system:podinfo"}}\n'
OTHER_NAMESPACE = 'image: ghcr.io/org/podinfo:{} # {{"$imagepolicy": "elsewhere:podinfo"}}\n'


def test_a_pass_commits_as_fluxcdbot_only_when_something_changed(
    bare_repo: Callable[..., BareRepo],
) -> None:
    repo = bare_repo(
        "fleet",
        {
            "apps/app.yaml": APP.format("6.0.0"),
            "apps/elsewhere.yaml": OTHER_NAMESPACE.format("6.0.0"),
            "other/app.yaml": APP.format("6.0.0"),
            "apps/notes.txt": APP.format("6.0.0"),
        },
    )
    registry = {"ghcr.io/org/podinfo": ["6.0.0", "6.1.0", "7.0.0"]}
    flux = PlayedImageAutomation(repo, registry, lambda: OBJECTS, path="apps")

    sha = flux.run_once()

    assert sha is not None
    assert repo.author_of(sha)[0] == "fluxcdbot"
    assert repo.message(sha).strip() == "Update image ghcr.io/org/podinfo:6.1.0"
    assert repo.show(sha, "apps/app.yaml") == APP.format("6.1.0")
    assert repo.show(sha, "apps/elsewhere.yaml") == OTHER_NAMESPACE.format("6.0.0")
    assert repo.show(sha, "other/app.yaml") == APP.format("6.0.0")
    assert repo.show(sha, "apps/notes.txt") == APP.format("6.0.0")
    assert flux.run_once() is None
    assert repo.head() == sha
