"""The stats host's nginx site (roles/stats_app/templates/nginx-site.conf.j2), rendered as Ansible renders it: where
ethstats (`location = /api`) is served, with and without TLS and an ethstats-only address. The molecule scenario
checks the same against a running nginx."""

from __future__ import annotations

import re
from pathlib import Path

import jinja2
import pytest
import yaml

ROLE = Path(__file__).resolve().parents[2] / "roles" / "stats_app"
PROXIED = "proxy_pass http://heliogrid_stats;"


def render_text(**overrides: object) -> str:
    """The site as Ansible writes it, with the role's defaults and vars and `overrides`."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLE / "templates"), undefined=jinja2.StrictUndefined, trim_blocks=True
    )
    variables: dict[str, object] = {**yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()), **overrides}
    variables["ansible_managed"] = "Ansible managed"
    for name, expression in yaml.safe_load((ROLE / "vars" / "main.yml").read_text()).items():
        value = env.from_string(str(expression)).render(**variables).strip()
        variables[name] = {"True": True, "False": False}.get(value, value)
    return env.get_template("nginx-site.conf.j2").render(**variables)


def render(**overrides: object) -> dict[str, dict[str, str]]:
    """The site's servers: their listen directives (joined by ', ') -> location -> the location's body."""
    text = render_text(**overrides)
    servers = {}
    for body in _blocks(text, "server"):
        listen = ", ".join(re.findall(r"^\s*listen ([^;]+);", body, re.MULTILINE))
        servers[listen] = {path: " ".join(inner.split()) for path, inner in _locations(body)}
    return servers


def _blocks(text: str, keyword: str) -> list[str]:
    """The bodies of the top-level `keyword { ... }` blocks of `text`."""
    found, depth, start = [], 0, None
    for match in re.finditer(rf"^{keyword} \{{|\{{|\}}", text, re.MULTILINE):
        if match.group() != "}":
            if depth == 0 and match.group() != "{":
                start = match.end()
            depth += 1
        else:
            depth -= 1
            if depth == 0 and start is not None:
                found.append(text[start : match.start()])
                start = None
    return found


def _locations(server: str) -> list[tuple[str, str]]:
    return re.findall(r"location ([^{]+?) \{([^}]*)\}", server)


TLS = {"stats_app_tls_certificate": "/etc/ssl/c.pem", "stats_app_tls_certificate_key": "/etc/ssl/c.key"}


def test_without_an_ethstats_address_ethstats_is_served_on_the_public_server() -> None:
    servers = render()
    assert list(servers) == ["80 default_server, [::]:80 default_server"]
    public = servers["80 default_server, [::]:80 default_server"]
    assert PROXIED in public["= /api"]
    assert "proxy_set_header Upgrade $http_upgrade;" in public["= /api"]
    assert PROXIED in public["/"]


def test_with_an_ethstats_address_only_that_address_serves_ethstats() -> None:
    servers = render(stats_app_ethstats_listen_address="10.77.0.21")
    public = servers["80 default_server, [::]:80 default_server"]
    assert public["= /api"] == "return 404;"
    assert PROXIED in public["/"]
    private = servers["10.77.0.21:80"]
    assert PROXIED in private["= /api"]
    assert private["/"] == "return 404;"


def test_with_tls_both_public_servers_answer_api_with_404() -> None:
    servers = render(stats_app_ethstats_listen_address="10.77.0.21", **TLS)
    redirect = servers["80 default_server, [::]:80 default_server"]
    assert redirect["= /api"] == "return 404;"
    assert redirect["/"].startswith("return 301 https://$host")
    https = servers["443 ssl default_server, [::]:443 ssl default_server"]
    assert https["= /api"] == "return 404;"
    assert PROXIED in https["/"]
    assert PROXIED in servers["10.77.0.21:80"]["= /api"]  # plain HTTP: WireGuard encrypts it


def test_with_tls_and_no_ethstats_address_ethstats_stays_on_https() -> None:
    servers = render(**TLS)
    assert set(servers) == {
        "80 default_server, [::]:80 default_server",
        "443 ssl default_server, [::]:443 ssl default_server",
    }
    assert PROXIED in servers["443 ssl default_server, [::]:443 ssl default_server"]["= /api"]
    assert "= /api" not in servers["80 default_server, [::]:80 default_server"]  # redirected with the rest


@pytest.mark.parametrize(("address", "listen"), [("fd77::21", "[fd77::21]:8080"), ("10.77.0.21", "10.77.0.21:8080")])
def test_ethstats_address_listens_on_the_http_port(address: str, listen: str) -> None:
    servers = render(stats_app_ethstats_listen_address=address, stats_app_nginx_http_port=8080)
    assert PROXIED in servers[listen]["= /api"]


def limits(location: str) -> dict[str, str]:
    """A location's limit_req and limit_conn: directive -> its arguments."""
    return dict(re.findall(r"(limit_(?:req|conn)) ([^;]+);", location))


def zones(text: str) -> dict[str, str]:
    """The site's limit_req_zone and limit_conn_zone definitions: zone name -> rate ('' for connection zones)."""
    found = re.findall(r"^limit_(?:req|conn)_zone \$binary_remote_addr zone=(\w+):\w+(?: rate=(\w+/\w))?;", text, re.M)
    return dict(found)


def test_the_page_and_api_are_limited_per_address_by_the_role_variables() -> None:
    text = render_text(stats_app_nginx_limit_rate=7, stats_app_nginx_limit_burst=9, stats_app_nginx_limit_conn=3)
    public = render(stats_app_nginx_limit_rate=7, stats_app_nginx_limit_burst=9, stats_app_nginx_limit_conn=3)
    location = public["80 default_server, [::]:80 default_server"]["/"]
    assert limits(location) == {
        "limit_req": "zone=heliogrid_stats_api burst=9 nodelay",
        "limit_conn": "heliogrid_stats_api_conn 3",
    }
    assert zones(text)["heliogrid_stats_api"] == "7r/s"
    assert "limit_req_status 429;" in location  # not 503: /healthz's "not following the node"
    assert "limit_conn_status 429;" in location


def test_ethstats_has_its_own_limits_on_the_public_and_the_private_server() -> None:
    for overrides, listen in (
        ({}, "80 default_server, [::]:80 default_server"),
        ({"stats_app_ethstats_listen_address": "10.77.0.21"}, "10.77.0.21:80"),
    ):
        location = render(**overrides)[listen]["= /api"]
        assert limits(location) == {
            "limit_req": "zone=heliogrid_stats_ethstats burst=30 nodelay",
            "limit_conn": "heliogrid_stats_ethstats_conn 32",
        }
    assert zones(render_text())["heliogrid_stats_ethstats"] == "60r/m"


def test_with_tls_the_https_server_is_limited_and_the_redirect_is_not_proxied() -> None:
    servers = render(**TLS)
    https = servers["443 ssl default_server, [::]:443 ssl default_server"]
    assert set(limits(https["/"])) == {"limit_req", "limit_conn"}
    assert set(limits(https["= /api"])) == {"limit_req", "limit_conn"}
    assert PROXIED not in servers["80 default_server, [::]:80 default_server"]["/"]


def test_the_default_ethstats_limits_let_the_labs_nodes_report_from_one_address() -> None:
    # The lab's ~10 nodes, all behind one address in the worst case (a NAT): each holds one websocket, all reconnect
    # at once after a restart of the stats host, then each retries every 10 s (geth) while it is refused.
    nodes, retry_seconds = 10, 10
    defaults = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
    assert defaults["stats_app_nginx_ethstats_limit_conn"] >= nodes
    assert defaults["stats_app_nginx_ethstats_limit_burst"] >= nodes
    assert defaults["stats_app_nginx_ethstats_limit_rate"] >= nodes * 60 // retry_seconds


def test_limit_zones_are_defined_once_each() -> None:
    text = render_text(stats_app_ethstats_listen_address="10.77.0.21", **TLS)
    names = re.findall(r"zone=(\w+):", text)
    assert (
        sorted(names)
        == sorted(set(names))
        == [
            "heliogrid_stats_api",
            "heliogrid_stats_api_conn",
            "heliogrid_stats_ethstats",
            "heliogrid_stats_ethstats_conn",
        ]
    )
