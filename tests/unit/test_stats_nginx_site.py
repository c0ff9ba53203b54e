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


def render(**overrides: object) -> dict[str, dict[str, str]]:
    """The site's servers: their listen directives (joined by ', ') -> location -> the location's body."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(ROLE / "templates"), undefined=jinja2.StrictUndefined, trim_blocks=True
    )
    variables: dict[str, object] = {**yaml.safe_load((ROLE / "defaults" / "main.yml").read_text()), **overrides}
    variables["ansible_managed"] = "Ansible managed"
    for name, expression in yaml.safe_load((ROLE / "vars" / "main.yml").read_text()).items():
        value = env.from_string(str(expression)).render(**variables).strip()
        variables[name] = {"True": True, "False": False}.get(value, value)
    text = env.get_template("nginx-site.conf.j2").render(**variables)
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
