"""The real kubectl against the sandbox: apply (client- and server-side), get, wait, patch, delete."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubesandbox import SandboxThread
from tests.sandbox_fixtures import Kubectl

from .conftest import GROUP, WIDGET_CRD, deployment, wait_until, widget

pytestmark = pytest.mark.slow


@pytest.fixture
def sb(sandbox_thread: SandboxThread) -> SandboxThread:
    sandbox_thread.apply_manifest(WIDGET_CRD)
    return sandbox_thread


def write(tmp_path: Path, name: str, *docs: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


class TestApply:
    def test_client_side_apply_creates_then_patches(
        self, sb: SandboxThread, kubectl: Kubectl, tmp_path: Path
    ) -> None:
        body = deployment("web", replicas=2)
        out = kubectl("apply", "-f", write(tmp_path, "d.yaml", body))
        assert "deployment.apps/web created" in out.stdout
        body["spec"]["replicas"] = 3
        body["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
        out = kubectl("apply", "-f", write(tmp_path, "d.yaml", body))
        assert "deployment.apps/web configured" in out.stdout
        live = sb.call(sb.store.fetch, "deployments", "web", "default")
        assert live["spec"]["replicas"] == 3
        assert live["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:2"
        applied = json.loads(
            live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
        )
        assert applied["spec"]["replicas"] == 3
        assert live["metadata"]["generation"] == 2

    def test_server_side_apply_records_kubectl_as_manager(
        self, sb: SandboxThread, kubectl: Kubectl, tmp_path: Path
    ) -> None:
        out = kubectl(
            "apply", "--server-side", "-f", write(tmp_path, "w.yaml", widget("w", size=2))
        )
        assert "serverside-applied" in out.stdout
        live = sb.call(sb.store.fetch, "widgets", "w", "default")
        assert {e["manager"] for e in live["metadata"]["managedFields"]} == {"kubectl"}
        conflict = kubectl(
            "apply",
            "--server-side",
            "--field-manager=other",
            "-f",
            write(tmp_path, "w2.yaml", widget("w", size=5)),
            check=False,
        )
        assert conflict.returncode != 0
        assert "conflict" in conflict.stderr.lower() and ".spec.size" in conflict.stderr

    def test_invalid_and_unknown_fields_are_reported(
        self, sb: SandboxThread, kubectl: Kubectl, tmp_path: Path
    ) -> None:
        bad = kubectl("apply", "-f", write(tmp_path, "bad.yaml", widget("w", size=0)), check=False)
        assert bad.returncode != 0 and "spec.size" in bad.stderr
        unknown = kubectl(
            "apply",
            "-f",
            write(tmp_path, "unknown.yaml", widget("w", size=1, bogus=True)),
            check=False,
        )
        assert unknown.returncode != 0 and 'unknown field "spec.bogus"' in unknown.stderr


class TestGet:
    def test_printer_columns_and_output_formats(self, sb: SandboxThread, kubectl: Kubectl) -> None:
        sb.call(sb.store.create, "widgets", "default", widget("w", size=4), manager="t")
        sb.call(
            lambda: sb.store.update_with(
                "widgets",
                "default",
                "w",
                lambda o: o.__setitem__(
                    "status",
                    {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
                ),
                subresource="status",
            )
        )
        table = kubectl("get", "widgets").stdout.splitlines()
        assert table[0].split() == ["NAME", "SIZE", "PHASE", "READY", "AGE"]
        assert table[1].split()[:4] == ["w", "4", "Running", "True"]
        assert kubectl("get", "wd", "w", "-o", "jsonpath={.spec.size}").stdout == "4"
        as_json = json.loads(kubectl("get", "widget", "w", "-o", "json").stdout)
        assert as_json["spec"] == {"size": 4, "color": "red"}
        as_yaml = yaml.safe_load(kubectl("get", f"widgets.{GROUP}", "w", "-o", "yaml").stdout)
        assert as_yaml["status"]["phase"] == "Running"
        listed = json.loads(kubectl("get", "widgets", "-A", "-o", "json").stdout)
        assert [i["metadata"]["name"] for i in listed["items"]] == ["w"]

    def test_builtin_tables_wide_and_selectors(self, sb: SandboxThread, kubectl: Kubectl) -> None:
        sb.call(sb.store.create, "deployments", "default", deployment("web"), manager="t")
        wait_until(
            lambda: (
                sb.call(sb.store.fetch, "deployments", "web", "default")
                .get("status", {})
                .get("readyReplicas")
            )
        )
        wide = kubectl("get", "deploy", "-o", "wide").stdout.splitlines()
        assert wide[0].split()[:5] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
        assert wide[1].split()[:4] == ["web", "1/1", "1", "1"]
        pods = kubectl("get", "pods", "-l", "app=web", "-o", "name").stdout.split()
        assert len(pods) == 1 and pods[0].startswith("pod/web-")
        assert kubectl("get", "pods", "-l", "app=other", "-o", "name").stdout == ""
        described = kubectl("describe", "deployment", "web").stdout
        assert "Name:" in described and "web" in described


class TestWriteVerbs:
    def test_create_patch_annotate_label_scale(
        self, sb: SandboxThread, kubectl: Kubectl, tmp_path: Path
    ) -> None:
        kubectl("create", "-f", write(tmp_path, "w.yaml", widget("w")))
        kubectl("patch", "widget", "w", "--type", "merge", "-p", '{"spec":{"size":7}}')
        kubectl(
            "patch",
            "widget",
            "w",
            "--type",
            "json",
            "-p",
            '[{"op":"add","path":"/spec/name","value":"abc"}]',
        )
        kubectl("annotate", "widget", "w", "note=hello")
        kubectl("label", "widget", "w", "team=blue")
        kubectl("scale", "widget", "w", "--replicas=9")
        live = sb.call(sb.store.fetch, "widgets", "w", "default")
        assert live["spec"]["size"] == 9 and live["spec"]["name"] == "abc"
        assert live["metadata"]["annotations"]["note"] == "hello"
        assert live["metadata"]["labels"]["team"] == "blue"

    def test_wait_for_a_condition(self, sb: SandboxThread, kubectl: Kubectl) -> None:
        sb.call(sb.store.create, "widgets", "default", widget("w"), manager="t")
        waiter = subprocess.Popen(
            ["kubectl", "wait", "--for=condition=Ready", "widget/w", "--timeout=20s"],
            env=kubectl.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_until(
            lambda: any(e.verb == "watch" and e.resource == "widgets" for e in list(sb.audit))
        )
        assert waiter.poll() is None
        sb.call(
            lambda: sb.store.update_with(
                "widgets",
                "default",
                "w",
                lambda o: o.__setitem__(
                    "status", {"conditions": [{"type": "Ready", "status": "True"}]}
                ),
                subresource="status",
            )
        )
        out, err = waiter.communicate(timeout=20)
        assert waiter.returncode == 0, err
        assert "condition met" in out

    def test_delete_with_a_finalizer_waits_for_its_removal(
        self, sb: SandboxThread, kubectl: Kubectl
    ) -> None:
        body = widget("w")
        body["metadata"]["finalizers"] = ["example.gitops.dev/hold"]
        sb.call(sb.store.create, "widgets", "default", body, manager="t")
        out = kubectl("delete", "widget", "w", "--wait=false")
        assert 'widget.example.gitops.dev "w" deleted' in out.stdout
        assert kubectl("get", "widget", "w", "-o", "jsonpath={.metadata.deletionTimestamp}").stdout
        kubectl(
            "patch",
            "widget",
            "w",
            "--type",
            "json",
            "-p",
            '[{"op":"remove","path":"/metadata/finalizers"}]',
        )
        kubectl("wait", "--for=delete", "widget/w", "--timeout=10s")
        missing = kubectl("get", "widget", "w", check=False)
        assert missing.returncode != 0 and "NotFound" in missing.stderr


class TestProtobufBodies:
    def test_typed_create_commands_are_decoded(self, sb: SandboxThread, kubectl: Kubectl) -> None:
        kubectl("create", "namespace", "team")
        kubectl("create", "configmap", "cfg", "-n", "team", "--from-literal=a=b")
        kubectl("create", "secret", "generic", "pw", "-n", "team", "--from-literal=pw=hunter2")
        kubectl("create", "serviceaccount", "bot", "-n", "team")
        kubectl(
            "create",
            "deployment",
            "web",
            "-n",
            "team",
            "--image=nginx:1.2",
            "--port=80",
            "--replicas=0",
        )
        kubectl("create", "service", "clusterip", "web", "-n", "team", "--tcp=80:8080")
        store = sb.store
        assert sb.call(store.fetch, "namespaces", "team")["status"]["phase"] == "Active"
        assert sb.call(store.fetch, "configmaps", "cfg", "team")["data"] == {"a": "b"}
        assert sb.call(store.fetch, "secrets", "pw", "team")["data"] == {"pw": "aHVudGVyMg=="}
        assert sb.call(store.fetch, "serviceaccounts", "bot", "team")["metadata"]["name"] == "bot"
        dep = sb.call(store.fetch, "deployments", "web", "team")
        assert dep["spec"]["replicas"] == 0  # an explicit zero survives decoding
        container = dep["spec"]["template"]["spec"]["containers"][0]
        assert (container["image"], container["ports"]) == (
            "nginx:1.2",
            [{"containerPort": 80, "protocol": "TCP"}],
        )
        assert dep["spec"]["selector"] == {"matchLabels": {"app": "web"}}
        svc = sb.call(store.fetch, "services", "web", "team")
        assert svc["spec"]["ports"] == [
            {"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}
        ]

    def test_other_protobuf_kinds_get_a_clear_415(
        self, sb: SandboxThread, kubectl: Kubectl
    ) -> None:
        out = kubectl("create", "role", "reader", "--verb=get", "--resource=pods", check=False)
        assert out.returncode != 0
        assert "decodes protobuf only for" in out.stderr and "kubectl create -f" in out.stderr
