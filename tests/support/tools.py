"""The tools with an environment of their own (``./dev`` installs them into .venv-tools/).

aws-sam-cli, aws-sam-translator and cfn-lint pin pydantic and boto3 below what the layer
ships, so they do not share .venv with the code under test (tools/sam.txt). Tests run them,
and transform the template with the translator, as separate processes.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOOLS = ROOT / ".venv-tools"
ENVIRONMENT = {"sam": "sam", "cfn-lint": "sam", "checkov": "checkov"}


def tool(name: str) -> str:
    """The path of a tool's executable; fails (./dev test installs it) when it is missing."""
    env = ENVIRONMENT[name]
    path = TOOLS / env / "bin" / name
    if not path.exists():
        pytest.fail(f"{path} is missing: `./dev test` installs it (or `./dev tool {name} --version`)")
    return str(path)


_TRANSFORM = """
import json, sys
from samtranslator.translator.transform import transform

request = json.load(sys.stdin)

class ManagedPolicies:
    def load(self):
        return request["managed_policies"]

json.dump(transform(request["template"], request["parameters"], ManagedPolicies()), sys.stdout)
"""


def packaged(doc: dict[str, Any]) -> dict[str, Any]:
    """The template with the S3 locations ``sam package`` puts in place of local paths."""
    doc = copy.deepcopy(doc)
    for resource in doc["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            props["CodeUri"] = "s3://bucket/code.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            props["ContentUri"] = "s3://bucket/layer.zip"
        elif resource["Type"] == "AWS::Serverless::Application":
            props["Location"] = "https://s3.amazonaws.com/bucket/registry.yaml"
    return doc


def sam_transform(
    doc: dict[str, Any], parameters: dict[str, str], managed_policies: dict[str, str] | None = None
) -> dict[str, Any]:
    """The template as CloudFormation sees it after the SAM transform (aws-sam-translator)."""
    python = Path(tool("sam")).parent / "python"
    request = {
        "template": packaged(doc),
        "parameters": parameters,
        "managed_policies": managed_policies or {},
    }
    result = subprocess.run(
        [str(python), "-c", _TRANSFORM],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        # the translator fills in pseudo parameters (AWS::Region) from botocore's session
        env={**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout)  # type: ignore[no-any-return]
