"""`mlflow server --app-name agentnn` starts, composes basic auth, and says what it offers."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request

import pytest
import team_servers as ts

from agentnn import __version__

CAPABILITIES = "/agentnn/api/v1/capabilities"


def get(url: str, user: str | None = None, password: str | None = None) -> tuple[int, bytes]:
    headers = {}
    if user is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_capabilities_name_the_app_its_ingest_and_auth(agentnn_server):
    status, body = get(agentnn_server.url + CAPABILITIES, ts.RITA, ts.RITA_PASSWORD)

    assert status == 200, body
    answer = json.loads(body)
    assert answer["api"] == 1
    assert answer["agentnn"] == __version__
    assert answer["ingest"] is True
    assert answer["auth"] is True
    assert isinstance(answer["reads"], list)
    assert answer["limits"]["max_records"] > 20_000


@pytest.mark.parametrize("password", [None, ts.WRONG_PASSWORD])
def test_capabilities_need_a_signed_in_user(agentnn_server, password):
    user = None if password is None else ts.ALICE
    status, _ = get(agentnn_server.url + CAPABILITIES, user, password)

    assert status == 401


def test_basic_auth_admin_routes_stay_as_they_are(agentnn_server):
    status, body = get(agentnn_server.url + "/api/2.0/mlflow/users/get?username=alice",
                       ts.ADMIN_USER, ts.ADMIN_PASSWORD)

    assert status == 200, body
    assert json.loads(body)["user"]["username"] == "alice"
