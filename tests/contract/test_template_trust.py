"""template.yaml's trust settings: an external issuer must name what makes an admin (a rule
refuses the deployment otherwise), the stack's own user pool keeps its own, and the HTTP
functions get the CORS origin and the email rule from the parameters."""

from __future__ import annotations

from typing import Any

import pytest

from orderflow.template import functions, load
from tests.contract.test_template_snapstart import evaluate, parameters, refused

HTTP_FUNCTIONS = ["OrdersApiFunction", "InventoryApiFunction", "ShippingApiFunction"]
EXTERNAL = {
    "JwtIssuer": "https://login.example.com/",
    "JwtAudience": "orderflow",
    "JwksUrl": "https://login.example.com/.well-known/jwks.json",
    # an issuer outside AWS needs a network of the user's that reaches it (OwnNetworkReachesOnlyAws)
    "VpcId": "vpc-0abc",
    "SubnetIds": "subnet-0a,subnet-0b",
}


def environment(function_id: str, values: dict[str, str]) -> dict[str, Any]:
    conditions = load()["Conditions"]
    variables = functions()[function_id].environment
    return {name: evaluate(value, values, conditions) for name, value in variables.items()}


def test_an_external_issuer_without_an_admin_scope_or_group_is_refused() -> None:
    failed = refused(parameters(**EXTERNAL))
    assert len(failed) == 1
    assert failed[0].startswith("ExternalIssuerNamesItsAdmins: With JwtIssuer, give AdminScope or AdminGroup")


@pytest.mark.parametrize(
    "admins", [{"AdminScope": "orders/admin"}, {"AdminGroup": "ops"}, {"AdminScope": "a", "AdminGroup": "b"}]
)
def test_an_external_issuer_with_an_admin_scope_or_group_deploys(admins: dict[str, str]) -> None:
    assert refused(parameters(**EXTERNAL, **admins)) == []


def test_the_admin_parameters_have_no_default() -> None:
    declared = load()["Parameters"]
    assert declared["AdminScope"]["Default"] == "" and declared["AdminGroup"]["Default"] == ""


@pytest.mark.parametrize("function_id", HTTP_FUNCTIONS)
def test_with_an_external_issuer_the_functions_take_its_admin_rule(function_id: str) -> None:
    env = environment(function_id, parameters(**EXTERNAL, AdminScope="orders/admin"))
    assert (env["ADMIN_SCOPE"], env["ADMIN_GROUP"]) == ("orders/admin", "")  # empty: no group grants it
    assert env["EMAILS_VERIFIED_BY_ISSUER"] == "false"
    env = environment(function_id, parameters(**EXTERNAL, AdminGroup="ops", EmailsVerifiedByIssuer="true"))
    assert (env["ADMIN_SCOPE"], env["ADMIN_GROUP"]) == ("", "ops")
    assert env["EMAILS_VERIFIED_BY_ISSUER"] == "true"


@pytest.mark.parametrize("function_id", HTTP_FUNCTIONS)
def test_with_the_stacks_own_user_pool_the_functions_keep_its_admin_rule(function_id: str) -> None:
    assert refused(parameters()) == []
    env = environment(function_id, parameters(AdminScope="ignored", EmailsVerifiedByIssuer="true"))
    assert (env["ADMIN_SCOPE"], env["ADMIN_GROUP"]) == ("orderflow/admin", "admin")
    assert env["EMAILS_VERIFIED_BY_ISSUER"] == "false"  # Cognito says email_verified itself


@pytest.mark.parametrize("function_id", HTTP_FUNCTIONS)
def test_the_functions_get_the_cors_origin_of_the_parameter(function_id: str) -> None:
    assert environment(function_id, parameters())["CORS_ALLOW_ORIGIN"] == "*"
    env = environment(function_id, parameters(CorsAllowOrigin="https://shop.example"))
    assert env["CORS_ALLOW_ORIGIN"] == "https://shop.example"
