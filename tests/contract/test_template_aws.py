"""template.yaml's first contact with an AWS account (issue 16): migrations inside AWS,
before the new code takes traffic; checked on the template and on its SAM transform."""

from __future__ import annotations

from typing import Any

import pytest

from orderflow.template import load
from tests.support.tools import sam_transform

RESOURCES = load()["Resources"]
FUNCTIONS = {k for k, r in RESOURCES.items() if r["Type"] == "AWS::Serverless::Function"}
APP_FUNCTIONS = FUNCTIONS - {"MigrationFunction"}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return sam_transform(load(), {})


# ------------------------------------------------------------------ migrations


def test_the_custom_resource_runs_the_live_migration_function_and_changes_with_its_version():
    migrations = RESOURCES["Migrations"]
    assert migrations["Type"] == "Custom::Migrations"
    props = migrations["Properties"]
    assert props["ServiceToken"] == {"Ref": "MigrationFunction.Alias"}
    # the migrations are the function's code: new migrations, new version, an Update
    assert props["MigrationsVersion"] == {"Ref": "MigrationFunction.Version"}
    # after the proxy reaches the cluster, when the stack makes them
    assert props["Database"]["Fn::If"][1] == {"Ref": "DbProxyTargetGroup"}


def test_the_migration_function_connects_as_the_master_user_with_its_own_time_limits():
    fn = RESOURCES["MigrationFunction"]["Properties"]
    globals_ = load()["Globals"]["Function"]
    assert fn["Environment"]["Variables"]["DB_USER"] == {"Ref": "DbUser"}
    assert fn["Policies"] == [{"Ref": "DatabaseConnectPolicy"}]  # rds-db:connect as DbUser, nothing else
    assert int(fn["Environment"]["Variables"]["DB_STATEMENT_TIMEOUT_MS"]) >= 300_000
    assert int(fn["Environment"]["Variables"]["DB_LOCK_TIMEOUT_MS"]) >= 30_000
    assert fn["Timeout"] == 900
    assert "VpcConfig" in globals_  # in the VPC, as every function
    assert RESOURCES["MigrationFunction"]["Metadata"]["BuildMethod"] == "makefile"
    assert load()["Outputs"]["MigrationFunctionArn"]["Value"] == {"Ref": "MigrationFunction.Alias"}


@pytest.mark.parametrize("function_id", sorted(APP_FUNCTIONS))
def test_every_function_and_its_alias_wait_for_the_migrations(function_id, translated):
    resources = translated["Resources"]
    assert resources[function_id].get("DependsOn") in ("Migrations", ["Migrations"])
    aliases = [
        k
        for k, r in resources.items()
        if r["Type"] == "AWS::Lambda::Alias" and k == f"{function_id}Aliaslive"
    ]
    for alias in aliases:  # alias -> version -> function -> Migrations
        version = resources[alias]["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
        assert resources[version]["Properties"]["FunctionName"] == {"Ref": function_id}


def test_the_migrations_do_not_wait_for_anything_they_would_migrate_for(translated):
    """No cycle: the custom resource depends on no application function."""
    text = repr(translated["Resources"]["Migrations"])
    assert not any(fid in text for fid in APP_FUNCTIONS)
