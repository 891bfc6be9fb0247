"""Keeping Flux's image automation from pushing a reverted tag: markers, patterns, and the
exclusion list edited in Git (byte for byte) and on the live object."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from canary.adapters.gitops import imagepolicy
from canary.adapters.gitops.imagepolicy import (
    DEFAULT_EXCLUSION,
    ImagePolicyError,
    SetterMarker,
    add_exclusion_to_manifest,
    exclusion_patch,
    find_image_repository_manifest,
    find_setter_markers,
    markers_for_image,
    split_image,
    tag_exclusion_pattern,
)
from tests.git_fixtures import BareRepo
from tests.gitops.image_automation import PlayedImageAutomation

PODINFO = "ghcr.io/org/podinfo"
BAD = f"{PODINFO}:6.0.1"


def diff_body(before: str, after: str) -> list[str]:
    """The unified diff without its file header, with no context lines."""
    lines = list(
        difflib.unified_diff(before.splitlines(keepends=True), after.splitlines(keepends=True), n=0)
    )
    return lines[2:]


def test_the_public_surface_is_what_all_says() -> None:
    assert sorted(imagepolicy.__all__) == [
        "DEFAULT_EXCLUSION",
        "ExclusionEdit",
        "ImagePolicyError",
        "SetterMarker",
        "add_exclusion_to_manifest",
        "exclusion_patch",
        "find_image_repository_manifest",
        "find_setter_markers",
        "markers_for_image",
        "split_image",
        "tag_exclusion_pattern",
    ]
    assert all(hasattr(imagepolicy, name) for name in imagepolicy.__all__)
    assert issubclass(ImagePolicyError, ValueError)


# -- setter markers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "namespace", "policy", "field", "value"),
    [
        (
            'image: ghcr.io/org/podinfo:6.0.1 # {"$imagepolicy": "flux-system:podinfo"}',
            "flux-system",
            "podinfo",
            "image",
            "ghcr.io/org/podinfo:6.0.1",
        ),
        (
            'tag: 6.0.1 # {"$imagepolicy": "flux-system:podinfo:tag"}',
            "flux-system",
            "podinfo",
            "tag",
            "6.0.1",
        ),
        (
            'repository: ghcr.io/org/podinfo # {"$imagepolicy": "flux-system:podinfo:name"}',
            "flux-system",
            "podinfo",
            "name",
            "ghcr.io/org/podinfo",
        ),
        (
            'image: "ghcr.io/org/podinfo:6.0.1"   #{"$imagepolicy":"apps:podinfo"}',
            "apps",
            "podinfo",
            "image",
            "ghcr.io/org/podinfo:6.0.1",
        ),
        (
            'tag: \'6.0.1\' ## {"$imagepolicy": "flux-system:podinfo:tag"}',
            "flux-system",
            "podinfo",
            "tag",
            "6.0.1",
        ),
        (
            'image: ghcr.io/org/podinfo:6.0.1 # {"$ref": '
            '"#/definitions/io.k8s.cli.setters.flux-system:podinfo"}',
            "flux-system",
            "podinfo",
            "image",
            "ghcr.io/org/podinfo:6.0.1",
        ),
        (
            'tag: 6.0.1 # {"$ref": "#/definitions/io.k8s.cli.setters.flux-system:podinfo:tag"}',
            "flux-system",
            "podinfo",
            "tag",
            "6.0.1",
        ),
        (
            'image: ghcr.io/org/podinfo:6.0.1 # {"$imagepolicy": "podinfo"}',
            None,
            "podinfo",
            "image",
            "ghcr.io/org/podinfo:6.0.1",
        ),
    ],
)
def test_every_marker_form_is_read_with_the_scalar_it_marks(
    line: str, namespace: str | None, policy: str, field: str, value: str
) -> None:
    text = f"spec:\n  values:\n    {line}\n"

    assert find_setter_markers(text, "apps/podinfo.yaml") == (
        SetterMarker("apps/podinfo.yaml", 3, namespace, policy, field, value),  # type: ignore[arg-type]
    )


def test_a_marked_list_item_is_read() -> None:
    text = 'images:\n  - ghcr.io/org/podinfo:6.0.1 # {"$imagepolicy": "flux-system:podinfo"}\n'

    (marker,) = find_setter_markers(text, "a.yaml")

    assert (marker.line, marker.value, marker.field) == (2, BAD, "image")


@pytest.mark.parametrize(
    "text",
    [
        "image: ghcr.io/org/podinfo:6.0.1 # pinned until the incident is over",
        'image: ghcr.io/org/podinfo:6.0.1 # # {"$imagepolicy": "flux-system:podinfo"}',
        'image: ghcr.io/org/podinfo:6.0.1 # {"$imagepolicy": "flux-system:podinfo"} (auto)',
        'image: ghcr.io/org/podinfo:6.0.1 # {"$imagepolicy": "flux-system:podinfo:digest"}',
        'image: ghcr.io/org/podinfo:6.0.1 # {"$imagepolicy": 7}',
        '# {"$imagepolicy": "flux-system:podinfo"}\nimage: ghcr.io/org/podinfo:6.0.1',
        'images: [ghcr.io/org/podinfo:6.0.1] # {"$imagepolicy": "flux-system:podinfo"}',
        'image: # {"$imagepolicy": "flux-system:podinfo"}\n  name: ghcr.io/org/podinfo',
        'note: |  # {"$imagepolicy": "flux-system:podinfo"}\n  ghcr.io/org/podinfo:6.0.1',
        'image: ghcr.io/org/podinfo:6.0.1 # {"$ref": "#/definitions/io.k8s.cli.other"}',
    ],
)
def test_comments_that_are_not_setter_markers_are_ignored(text: str) -> None:
    assert find_setter_markers(text, "a.yaml") == ()


def test_markers_carry_their_line_across_documents() -> None:
    text = (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n"
        "spec:\n"
        '  image: ghcr.io/org/podinfo:6.0.1 # {"$imagepolicy": "flux-system:podinfo"}\n'
    )

    assert [m.line for m in find_setter_markers(text, "a.yaml")] == [7]


def test_invalid_yaml_names_the_file_and_document() -> None:
    text = 'a: 1\n---\nimage: [ghcr.io/org/podinfo:6.0.1 # {"$imagepolicy": "ns:p"}\n'

    with pytest.raises(ImagePolicyError, match=r"^deploy/app\.yaml document 2: invalid YAML"):
        find_setter_markers(text, "deploy/app.yaml")


HELM_VALUES = """\
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
spec:
  values:
    image:
      repository: ghcr.io/org/podinfo # {"$imagepolicy": "flux-system:podinfo:name"}
      pullPolicy: IfNotPresent
      tag: 6.0.1 # {"$imagepolicy": "flux-system:podinfo:tag"}
    sidecar:
      repository: ghcr.io/org/other # {"$imagepolicy": "flux-system:other:name"}
      tag: 6.0.1 # {"$imagepolicy": "flux-system:other:tag"}
"""


def test_a_tag_marker_counts_when_its_name_marker_names_the_image() -> None:
    markers = find_setter_markers(HELM_VALUES, "apps/podinfo.yaml")

    found = markers_for_image(markers, BAD)

    assert [(m.policy, m.field, m.line) for m in found] == [(("flux-system", "podinfo"), "tag", 8)]


def test_kustomize_images_new_name_and_new_tag_pair_up() -> None:
    text = """\
images:
  - name: podinfo
    newName: ghcr.io/org/podinfo # {"$imagepolicy": "flux-system:podinfo:name"}
    newTag: 6.0.1 # {"$imagepolicy": "flux-system:podinfo:tag"}
  - name: other
    newName: ghcr.io/org/other # {"$imagepolicy": "flux-system:other:name"}
    newTag: 6.0.1 # {"$imagepolicy": "flux-system:other:tag"}
"""
    found = markers_for_image(find_setter_markers(text, "kustomization.yaml"), BAD)

    assert [(m.policy_name, m.line) for m in found] == [("podinfo", 4)]


def test_a_tag_marker_without_a_name_marker_counts_by_its_tag() -> None:
    text = 'tag: 6.0.1 # {"$imagepolicy": "flux-system:podinfo:tag"}\n'

    assert len(markers_for_image(find_setter_markers(text, "a.yaml"), BAD)) == 1
    assert markers_for_image(find_setter_markers(text, "a.yaml"), f"{PODINFO}:6.0.2") == ()


def test_whole_image_markers_match_the_image_not_its_neighbours() -> None:
    text = """\
containers:
  - image: ghcr.io/org/podinfo:6.0.1 # {"$imagepolicy": "flux-system:podinfo"}
  - image: ghcr.io/org/podinfo:6.0.10 # {"$imagepolicy": "flux-system:podinfo"}
  - image: ghcr.io/org/podinfo-ui:6.0.1 # {"$imagepolicy": "flux-system:ui"}
  - image: ghcr.io/org/podinfo:6.0.1@sha256:0123 # {"$imagepolicy": "flux-system:pinned"}
"""
    found = markers_for_image(find_setter_markers(text, "a.yaml"), BAD)

    assert [m.policy_name for m in found] == ["podinfo", "pinned"]


def test_docker_hub_spellings_are_the_same_image() -> None:
    text = 'image: nginx:1.25 # {"$imagepolicy": "flux-system:nginx"}\n'

    (marker,) = markers_for_image(
        find_setter_markers(text, "a.yaml"), "docker.io/library/nginx:1.25"
    )
    assert marker.policy_name == "nginx"


def test_a_digest_only_image_matches_whole_image_markers_but_no_tag_marker() -> None:
    digest = "sha256:" + "ab" * 32
    text = (
        f'image: ghcr.io/org/podinfo:6.0.1@{digest} # {{"$imagepolicy": "flux-system:a"}}\n'
        'tag: 6.0.1 # {"$imagepolicy": "flux-system:b:tag"}\n'
    )

    found = markers_for_image(find_setter_markers(text, "a.yaml"), f"{PODINFO}@{digest}")

    assert [m.policy_name for m in found] == ["a"]


def test_name_markers_alone_never_count() -> None:
    text = 'repository: ghcr.io/org/podinfo # {"$imagepolicy": "flux-system:podinfo:name"}\n'

    assert markers_for_image(find_setter_markers(text, "a.yaml"), BAD) == ()


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("ghcr.io/org/podinfo:6.0.1", ("ghcr.io/org/podinfo", "6.0.1", None)),
        ("podinfo", ("podinfo", None, None)),
        ("podinfo:6.0.1", ("podinfo", "6.0.1", None)),
        ("localhost:5000/app:1.2", ("localhost:5000/app", "1.2", None)),
        ("localhost:5000/app", ("localhost:5000/app", None, None)),
        ("registry:5000/team/app@sha256:abc", ("registry:5000/team/app", None, "sha256:abc")),
        ("ghcr.io/org/app:1.2@sha256:abc", ("ghcr.io/org/app", "1.2", "sha256:abc")),
    ],
)
def test_split_image_handles_ports_tags_and_digests(
    image: str, expected: tuple[str, str | None, str | None]
) -> None:
    assert split_image(image) == expected


@pytest.mark.parametrize("image", ["", " app:1", ":1.0"])
def test_split_image_rejects_what_is_not_an_image(image: str) -> None:
    with pytest.raises(ValueError, match="not an image reference"):
        split_image(image)


def test_the_exclusion_pattern_matches_exactly_the_tag() -> None:
    pattern = tag_exclusion_pattern("6.0.1")

    assert pattern == r"^6\.0\.1$"
    assert re.search(pattern, "6.0.1")
    for other in ("16.0.1", "6.0.10", "6a0b1", "6.0.1-rc.1", "v6.0.1"):
        assert not re.search(pattern, other), other


def test_the_exclusion_pattern_escapes_every_tag_character_re2_cares_about() -> None:
    assert tag_exclusion_pattern("v1.2.3-rc_1") == r"^v1\.2\.3-rc_1$"


@pytest.mark.parametrize("tag", ["", "-rc", ".hidden", "a b", "x" * 129, "a+b"])
def test_a_string_that_is_not_a_tag_has_no_pattern(tag: str) -> None:
    with pytest.raises(ValueError, match="not an image tag"):
        tag_exclusion_pattern(tag)


# -- the exclusion list in Git ---------------------------------------------------------------

AUTOMATION = r"""# Image automation for podinfo (platform team)
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImagePolicy
metadata:
  name: podinfo
  namespace: flux-system
spec:
  imageRepositoryRef:
    name: podinfo   # same namespace
  policy:
    semver:
      range: ">=6.0.0"
---
apiVersion: image.toolkit.fluxcd.io/v1beta2
kind: ImageRepository
metadata:
  name: podinfo
  namespace: flux-system
  annotations:
    note: 'keep "quotes" as they are'
spec:
  image: ghcr.io/org/podinfo   # the app
  interval: 5m
  secretRef: {name: ghcr-auth}
  exclusionList:
    - "^.*\\.sig$"   # cosign signatures
    - '^6\.0\.0-rc\.1$'
  accessFrom:
    namespaceSelectors:
      - matchLabels:
          kubernetes.io/metadata.name: apps
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: podinfo
  namespace: staging
spec:
  image: ghcr.io/org/podinfo
  interval: 1h
"""


def exclusion_list(text: str, document: int) -> Any:
    return list(yaml.safe_load_all(text))[document - 1]["spec"]["exclusionList"]


def test_adding_to_an_existing_list_changes_one_line() -> None:
    edit = add_exclusion_to_manifest(
        AUTOMATION,
        name="podinfo",
        namespace="flux-system",
        pattern=tag_exclusion_pattern("6.0.1"),
        file="clusters/prod/podinfo.yaml",
    )

    assert edit.changed and edit.document == 2
    assert diff_body(AUTOMATION, edit.text) == [
        "@@ -27,0 +28 @@\n",
        "+    - '^6\\.0\\.1$'\n",
    ]
    assert exclusion_list(edit.text, 2) == ["^.*\\.sig$", "^6\\.0\\.0-rc\\.1$", "^6\\.0\\.1$"]


def test_adding_the_same_pattern_twice_changes_nothing() -> None:
    pattern = tag_exclusion_pattern("6.0.1")
    first = add_exclusion_to_manifest(
        AUTOMATION, name="podinfo", namespace="flux-system", pattern=pattern, file="a.yaml"
    )

    second = add_exclusion_to_manifest(
        first.text, name="podinfo", namespace="flux-system", pattern=pattern, file="a.yaml"
    )

    assert not second.changed
    assert second.text == first.text
    assert second.document == 2


def test_a_new_list_keeps_flux_default_first() -> None:
    edit = add_exclusion_to_manifest(
        AUTOMATION,
        name="podinfo",
        namespace="staging",
        pattern=r"^6\.0\.1$",
        file="a.yaml",
    )

    assert edit.document == 3
    assert diff_body(AUTOMATION, edit.text) == [
        "@@ -40,0 +41,3 @@\n",
        "+  exclusionList:\n",
        "+    - ^.*\\.sig$\n",
        "+    - ^6\\.0\\.1$\n",
    ]
    assert exclusion_list(edit.text, 3) == [DEFAULT_EXCLUSION, r"^6\.0\.1$"]


def test_a_new_list_is_indented_like_the_documents_other_lists() -> None:
    text = """\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata:
  name: podinfo
spec:
  image: ghcr.io/org/podinfo
  accessFrom:
    namespaceSelectors:
    - matchLabels: {team: a}
status:
  canonicalImageName: ghcr.io/org/podinfo
"""
    edit = add_exclusion_to_manifest(
        text, name="podinfo", namespace=None, pattern=r"^6\.0\.1$", file="a.yaml"
    )

    assert diff_body(text, edit.text) == [
        "@@ -9,0 +10,3 @@\n",
        "+  exclusionList:\n",
        "+  - ^.*\\.sig$\n",
        "+  - ^6\\.0\\.1$\n",
    ]


@pytest.mark.parametrize(
    ("value", "changed"),
    [
        ("~", ["-  exclusionList: ~  # unset for now\n", "+  exclusionList:  # unset for now\n"]),
        ("null", ["-  exclusionList: null  # unset\n", "+  exclusionList:  # unset\n"]),
        ("", []),
    ],
)
def test_a_null_list_becomes_the_default_and_the_pattern(value: str, changed: list[str]) -> None:
    comment = "# unset for now" if value != "null" else "# unset"
    text = (
        "apiVersion: image.toolkit.fluxcd.io/v1\nkind: ImageRepository\n"
        "metadata:\n  name: podinfo\nspec:\n  image: ghcr.io/org/podinfo\n"
        f"  exclusionList: {value}  {comment}\n  interval: 1m\n"
    )

    edit = add_exclusion_to_manifest(
        text, name="podinfo", namespace=None, pattern=r"^6\.0\.1$", file="a.yaml"
    )

    assert exclusion_list(edit.text, 1) == [DEFAULT_EXCLUSION, r"^6\.0\.1$"]
    assert diff_body(text, edit.text)[1:] == [
        *changed,
        "+    - ^.*\\.sig$\n",
        "+    - ^6\\.0\\.1$\n",
    ]


def test_an_empty_flow_list_means_the_default_and_keeps_it() -> None:
    text = (
        "kind: ImageRepository\napiVersion: image.toolkit.fluxcd.io/v1beta2\n"
        "metadata: {name: podinfo}\nspec:\n  image: x\n  exclusionList: []\n"
    )

    edit = add_exclusion_to_manifest(
        text, name="podinfo", namespace=None, pattern=r"^6\.0\.1$", file="a.yaml"
    )

    assert diff_body(text, edit.text) == [
        "@@ -6 +6 @@\n",
        "-  exclusionList: []\n",
        "+  exclusionList: [^.*\\.sig$, ^6\\.0\\.1$]\n",
    ]


def test_a_flow_list_gets_the_pattern_in_its_neighbours_quoting() -> None:
    text = (
        "kind: ImageRepository\napiVersion: image.toolkit.fluxcd.io/v1beta2\n"
        "metadata: {name: podinfo}\nspec:\n"
        '  exclusionList: ["^.*\\\\.sig$", "^1\\\\.0$"]  # two\n  image: x\n'
    )

    edit = add_exclusion_to_manifest(
        text, name="podinfo", namespace=None, pattern=r"^6\.0\.1$", file="a.yaml"
    )

    assert diff_body(text, edit.text)[1:] == [
        '-  exclusionList: ["^.*\\\\.sig$", "^1\\\\.0$"]  # two\n',
        '+  exclusionList: ["^.*\\\\.sig$", "^1\\\\.0$", "^6\\\\.0\\\\.1$"]  # two\n',
    ]


def test_a_json_manifest_stays_json() -> None:
    text = json.dumps(
        {
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImageRepository",
            "metadata": {"name": "podinfo", "namespace": "flux-system"},
            "spec": {"image": PODINFO, "interval": "5m"},
        },
        indent=2,
    )

    edit = add_exclusion_to_manifest(
        text, name="podinfo", namespace="flux-system", pattern=r"^6\.0\.1$", file="a.json"
    )

    assert json.loads(edit.text)["spec"]["exclusionList"] == [DEFAULT_EXCLUSION, r"^6\.0\.1$"]


def test_windows_line_endings_and_a_missing_final_newline_are_kept() -> None:
    text = (
        "kind: ImageRepository\r\napiVersion: image.toolkit.fluxcd.io/v1\r\n"
        "metadata:\r\n  name: podinfo\r\nspec:\r\n  image: x\r\n  exclusionList:\r\n  - a"
    )

    edit = add_exclusion_to_manifest(
        text, name="podinfo", namespace=None, pattern=r"^6\.0\.1$", file="a.yaml"
    )

    assert edit.text == text + "\r\n  - ^6\\.0\\.1$\r\n"


def test_a_block_scalar_at_the_end_of_spec_is_left_whole() -> None:
    text = (
        "kind: ImageRepository\napiVersion: image.toolkit.fluxcd.io/v1\n"
        "metadata: {name: podinfo}\nspec:\n  image: x\n  notes: |+\n    kept\n\n"
        "status: {}\n"
    )

    edit = add_exclusion_to_manifest(
        text, name="podinfo", namespace=None, pattern=r"^6\.0\.1$", file="a.yaml"
    )

    loaded = yaml.safe_load(edit.text)
    assert loaded["spec"]["notes"] == "kept\n\n"
    assert loaded["spec"]["exclusionList"] == [DEFAULT_EXCLUSION, r"^6\.0\.1$"]
    assert loaded["status"] == {}


def test_a_document_without_a_namespace_matches_any_namespace() -> None:
    text = (
        "kind: ImageRepository\napiVersion: image.toolkit.fluxcd.io/v1\n"
        "metadata:\n  name: podinfo\nspec:\n  image: x\n"
    )

    edit = add_exclusion_to_manifest(
        text, name="podinfo", namespace="flux-system", pattern=r"^6\.0\.1$", file="a.yaml"
    )

    assert edit.changed


def test_the_default_pattern_is_already_in_effect_on_an_unset_list() -> None:
    text = "kind: ImageRepository\napiVersion: image.toolkit.fluxcd.io/v1\nmetadata: {name: p}\nspec: {image: x}\n"

    edit = add_exclusion_to_manifest(
        text, name="p", namespace=None, pattern=DEFAULT_EXCLUSION, file="a.yaml"
    )

    assert not edit.changed and edit.text == text


LAYOUTS: list[tuple[str, str, str]] = [
    (
        "comments between items and before the next key stay where they are",
        "spec:\n  exclusionList:\n    # first\n    - a  # one\n\n    # second\n    - b\n"
        "  # the image\n  image: x\n",
        "spec:\n  exclusionList:\n    # first\n    - a  # one\n\n    # second\n    - b\n"
        "    - ^6\\.0\\.1$\n  # the image\n  image: x\n",
    ),
    (
        "a four-space document with wide dashes",
        "spec:\n    image: x\n    exclusionList:\n        -   ^a$\n",
        "spec:\n    image: x\n    exclusionList:\n        -   ^a$\n        -   ^6\\.0\\.1$\n",
    ),
    (
        "a tag on the list",
        "spec:\n  image: x\n  exclusionList: !!seq\n  - a\n",
        "spec:\n  image: x\n  exclusionList: !!seq\n  - a\n  - ^6\\.0\\.1$\n",
    ),
    (
        "a multi-line item",
        "spec:\n  exclusionList:\n  - ^a\n    b$\n  image: x\n",
        "spec:\n  exclusionList:\n  - ^a\n    b$\n  - ^6\\.0\\.1$\n  image: x\n",
    ),
    (
        "the last item of the last document, then a comment",
        "spec:\n  exclusionList:\n  - a\n# end\n",
        "spec:\n  exclusionList:\n  - a\n  - ^6\\.0\\.1$\n# end\n",
    ),
    (
        "an empty flow spec",
        "spec: {}\n",
        "spec: {exclusionList: [^.*\\.sig$, ^6\\.0\\.1$]}\n",
    ),
]


@pytest.mark.parametrize(("layout", "body", "expected"), LAYOUTS, ids=[x[0] for x in LAYOUTS])
def test_the_new_item_follows_the_layout_around_it(layout: str, body: str, expected: str) -> None:
    head = "kind: ImageRepository\napiVersion: image.toolkit.fluxcd.io/v1\nmetadata: {name: p}\n"

    edit = add_exclusion_to_manifest(
        head + body, name="p", namespace=None, pattern=r"^6\.0\.1$", file="a.yaml"
    )

    assert edit.text == head + expected


def test_an_alias_is_left_for_a_person_to_edit() -> None:
    text = (
        "kind: ImageRepository\napiVersion: image.toolkit.fluxcd.io/v1\n"
        "metadata: {name: p}\nx: &patterns [a]\nspec:\n  exclusionList: *patterns\n"
    )

    with pytest.raises(ImagePolicyError, match=r"spec\.exclusionList: is an alias"):
        add_exclusion_to_manifest(text, name="p", namespace=None, pattern="^b$", file="a.yaml")


@settings(max_examples=60, deadline=None)
@given(
    existing=st.lists(st.from_regex(r"\^[a-z0-9]{1,6}\$", fullmatch=True), max_size=4),
    style=st.sampled_from(["", "'", '"']),
    tag=st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
)
def test_any_list_gains_exactly_the_pattern_and_nothing_else_changes(
    existing: list[str], style: str, tag: str
) -> None:
    items = "".join(f"    - {style}{p}{style}\n" for p in existing)
    text = (
        "# head\nkind: ImageRepository\napiVersion: image.toolkit.fluxcd.io/v1\n"
        f"metadata: {{name: p}}\nspec:\n  image: x\n  exclusionList:\n{items}"
        "  interval: 1m  # tail\n---\nkind: Other\n"
    )
    pattern = tag_exclusion_pattern(tag)

    edit = add_exclusion_to_manifest(text, name="p", namespace=None, pattern=pattern, file="a")

    before = existing or [DEFAULT_EXCLUSION]
    assert exclusion_list(edit.text, 1) == (before if pattern in before else [*before, pattern])
    removed = [line for line in diff_body(text, edit.text) if line.startswith("-")]
    assert removed == []


@given(
    tag=st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
    other=st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True),
)
def test_the_exclusion_pattern_matches_no_other_tag(tag: str, other: str) -> None:
    assert bool(re.search(tag_exclusion_pattern(tag), other)) == (tag == other)


BROKEN: list[tuple[str, str]] = [
    (
        AUTOMATION.replace("  name: podinfo\n  namespace: staging", "  name: other"),
        r"^a\.yaml: metadata\.name: no document declares ImageRepository staging/podinfo",
    ),
    (
        AUTOMATION.replace("spec:\n  image: ghcr.io/org/podinfo\n  interval: 1h", "spec: [1]"),
        r"^a\.yaml document 3: spec: expected a mapping, got a list$",
    ),
    (
        AUTOMATION.replace("  interval: 1h", "  exclusionList: '^6'"),
        r"^a\.yaml document 3: spec\.exclusionList: expected a list of regular expressions, "
        "got a string$",
    ),
    (
        AUTOMATION.replace("  interval: 1h", "  exclusionList:\n  - 1.5"),
        r"^a\.yaml document 3: spec\.exclusionList\[0\]: expected a string .*got a number$",
    ),
    (
        AUTOMATION.replace("  interval: 1h", "  interval: [1h"),
        r"^a\.yaml document 3: invalid YAML: .*\(line 4\d, column \d+\)$",
    ),
    (
        AUTOMATION.replace("spec:\n  image: ghcr.io/org/podinfo\n  interval: 1h", "x: 1"),
        r"^a\.yaml document 3: spec: expected a mapping, got nothing$",
    ),
]


@pytest.mark.parametrize(("text", "message"), BROKEN)
def test_what_cannot_be_edited_is_named_by_file_document_and_field(text: str, message: str) -> None:
    with pytest.raises(ImagePolicyError, match=message):
        add_exclusion_to_manifest(
            text, name="podinfo", namespace="staging", pattern=r"^6\.0\.1$", file="a.yaml"
        )


def test_two_equally_good_documents_are_an_error_not_a_guess() -> None:
    with pytest.raises(
        ImagePolicyError,
        match=r"declared more than once \(a\.yaml document 2, a\.yaml document 3\)",
    ):
        add_exclusion_to_manifest(
            AUTOMATION, name="podinfo", namespace=None, pattern=r"^6\.0\.1$", file="a.yaml"
        )


def test_an_error_keeps_its_parts() -> None:
    with pytest.raises(ImagePolicyError) as caught:
        add_exclusion_to_manifest(
            AUTOMATION.replace("  interval: 1h", "  exclusionList: {}"),
            name="podinfo",
            namespace="staging",
            pattern="^x$",
            file="a.yaml",
        )

    assert (caught.value.file, caught.value.document, caught.value.field) == (
        "a.yaml",
        3,
        "spec.exclusionList",
    )


# -- the exclusion list on the live object ---------------------------------------------------


def live_repository(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "image.toolkit.fluxcd.io/v1beta2",
        "kind": "ImageRepository",
        "metadata": {"name": "podinfo", "namespace": "flux-system", "resourceVersion": "42"},
        "spec": {"image": PODINFO, **spec},
    }


def test_the_patch_for_an_unset_list_keeps_the_default() -> None:
    assert exclusion_patch(live_repository({}), r"^6\.0\.1$") == {
        "spec": {"exclusionList": [DEFAULT_EXCLUSION, r"^6\.0\.1$"]},
        "metadata": {"resourceVersion": "42"},
    }


def test_the_patch_for_an_empty_list_keeps_the_default() -> None:
    patch = exclusion_patch(live_repository({"exclusionList": []}), r"^6\.0\.1$")

    assert patch is not None
    assert patch["spec"]["exclusionList"] == [DEFAULT_EXCLUSION, r"^6\.0\.1$"]


def test_the_patch_appends_to_an_existing_list() -> None:
    patch = exclusion_patch(live_repository({"exclusionList": ["^old$"]}), r"^6\.0\.1$")

    assert patch is not None
    assert patch["spec"] == {"exclusionList": ["^old$", r"^6\.0\.1$"]}


def test_no_patch_when_the_pattern_is_in_effect() -> None:
    assert exclusion_patch(live_repository({"exclusionList": [r"^6\.0\.1$"]}), r"^6\.0\.1$") is None
    assert exclusion_patch(live_repository({}), DEFAULT_EXCLUSION) is None


def test_a_live_list_that_is_not_a_list_is_named() -> None:
    with pytest.raises(
        ImagePolicyError,
        match=r"^ImageRepository flux-system/podinfo: spec\.exclusionList: expected a list",
    ):
        exclusion_patch(live_repository({"exclusionList": "^x$"}), "^y$")


# -- finding the ImageRepository in a checkout -----------------------------------------------


def test_the_declaring_file_and_document_are_found() -> None:
    files = {
        "apps/podinfo.yaml": HELM_VALUES,
        "clusters/prod/podinfo.yaml": AUTOMATION,
        "broken.yaml": "a: [\n",
    }

    assert find_image_repository_manifest(files, name="podinfo", namespace="flux-system") == (
        "clusters/prod/podinfo.yaml",
        2,
    )
    assert find_image_repository_manifest(files, name="podinfo", namespace="staging") == (
        "clusters/prod/podinfo.yaml",
        3,
    )
    assert find_image_repository_manifest(files, name="podinfo", namespace="prod") is None
    assert find_image_repository_manifest(files, name="other", namespace=None) is None


def test_a_document_naming_the_namespace_wins_over_one_without() -> None:
    loose = (
        "kind: ImageRepository\napiVersion: image.toolkit.fluxcd.io/v1\nmetadata: {name: podinfo}\n"
    )
    files = {"base/repo.yaml": loose, "clusters/prod/podinfo.yaml": AUTOMATION}

    assert find_image_repository_manifest(files, name="podinfo", namespace="staging") == (
        "clusters/prod/podinfo.yaml",
        3,
    )
    assert find_image_repository_manifest(files, name="podinfo", namespace="dev") == (
        "base/repo.yaml",
        1,
    )


def test_other_kinds_and_groups_with_the_same_name_do_not_count() -> None:
    text = (
        "kind: ImageRepository\napiVersion: example.com/v1\nmetadata: {name: podinfo}\n---\n"
        "kind: ImagePolicy\napiVersion: image.toolkit.fluxcd.io/v1\nmetadata: {name: podinfo}\n"
    )

    assert find_image_repository_manifest({"a.yaml": text}, name="podinfo", namespace=None) is None


# -- against the played automation -----------------------------------------------------------

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  namespace: apps
spec:
  template:
    spec:
      containers:
        - name: podinfo
          image: ghcr.io/org/podinfo:{version} # {{"$imagepolicy": "flux-system:podinfo"}}
"""


def test_an_excluded_tag_is_not_pushed_again_by_the_automation(
    bare_repo: Callable[..., BareRepo],
) -> None:
    """The whole story: Flux pushes a bad tag, the release is reverted, Flux would push it
    again; once the tag is excluded (in Git, which the played cluster applies) it does not,
    and a newer tag still flows."""
    automation_file = "clusters/prod/podinfo-automation.yaml"
    app_file = "apps/podinfo.yaml"
    repo = bare_repo(
        "fleet",
        {automation_file: AUTOMATION, app_file: DEPLOYMENT.format(version="6.0.0")},
    )
    registry = {PODINFO: ["6.0.0", "6.0.1", "6.0.1.sig"]}

    def cluster() -> list[dict[str, Any]]:  # the cluster runs what Git says
        return list(yaml.safe_load_all(repo.show(repo.head(), automation_file) or ""))

    flux = PlayedImageAutomation(repo, registry, cluster)

    bad = flux.run_once()
    assert bad is not None and repo.author_of(bad)[0] == "fluxcdbot"
    assert BAD in (repo.show(bad, app_file) or "")

    markers = find_setter_markers(repo.show(bad, app_file) or "", app_file)
    (marker,) = markers_for_image(markers, BAD)
    assert marker.policy == ("flux-system", "podinfo")

    repo.commit({app_file: DEPLOYMENT.format(version="6.0.0")}, "Revert podinfo to 6.0.0")
    assert flux.latest_images()[("flux-system", "podinfo")] == BAD  # it would come back

    files = {path: repo.show("main", path) or "" for path in (automation_file, app_file)}
    where = find_image_repository_manifest(files, name="podinfo", namespace="flux-system")
    assert where == (automation_file, 2)
    edit = add_exclusion_to_manifest(
        files[automation_file],
        name="podinfo",
        namespace="flux-system",
        pattern=tag_exclusion_pattern("6.0.1"),
        file=automation_file,
    )
    repo.commit({automation_file: edit.text}, "Exclude podinfo 6.0.1 from image automation")

    assert flux.run_once() is None
    assert f"{PODINFO}:6.0.0 #" in (repo.show("main", app_file) or "")

    registry[PODINFO].append("6.0.2")
    newer = flux.run_once()
    assert newer is not None
    assert f"{PODINFO}:6.0.2 #" in (repo.show(newer, app_file) or "")
