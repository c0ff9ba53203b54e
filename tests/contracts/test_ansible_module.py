"""The contracts role's modules answer Ansible through heliogrid_contracts.ansible_module.run_module: what a failure
tells the operator (the actions already done, the reason) and what it never tells (the key)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from heliogrid_contracts import ansible_module
from heliogrid_contracts.deploy import DeployError

KEY = "0x" + "5e" * 32  # a throwaway key: must never appear in what the module returns


class Exited(Exception):
    def __init__(self, kind: str, result: dict) -> None:
        super().__init__(kind)
        self.kind, self.result = kind, result


class FakeModule:
    check_mode = False

    def __init__(self) -> None:
        self.params = {
            "rpc_url": "http://127.0.0.1:9",
            "rpc_via": [],
            "private_key": KEY,
            "record_path": "/nonexistent/contracts.json",
            "contracts_dir": "/nonexistent/contracts",
            "receipt_timeout": 5,
        }

    def fail_json(self, **result) -> None:
        raise Exited("failed", result)

    def exit_json(self, **result) -> None:
        raise Exited("ok", result)


class FakeProvider:
    closed = False

    def close(self) -> None:
        self.closed = True


def runner_that(outcome):
    class Runner:
        def __init__(self, w3, key, record_path, **options) -> None:
            assert key == KEY
            self.options = options
            self.result = SimpleNamespace(actions=["granted REGISTRAR_ROLE to 0xabc"])

        def run(self, spec):
            if isinstance(outcome, Exception):
                raise outcome
            return outcome

    return Runner


@pytest.fixture
def provider(monkeypatch) -> FakeProvider:
    made = FakeProvider()
    monkeypatch.setattr(ansible_module, "connect", lambda url, via, timeout: SimpleNamespace(provider=made))
    return made


class Spec:
    @staticmethod
    def from_dict(options: dict) -> dict:
        if options.get("tolerance_percent", 0) > 100:
            raise DeployError(f"tolerance_percent must be 0..100, got {options['tolerance_percent']}")
        return options


def run(monkeypatch, outcome, **options) -> Exited:
    monkeypatch.setitem(ansible_module.RUNNERS, "test", (runner_that(outcome), Spec))
    module = FakeModule()
    module.params.update(options)
    with pytest.raises(Exited) as exited:
        ansible_module.run_module(module, "test", tuple(options))
    return exited.value


def test_a_refused_action_fails_with_its_reason_and_the_actions_done_before_it(provider, monkeypatch):
    exited = run(monkeypatch, DeployError("the record's chain id 4242 is not the node's 1337"))
    assert exited.kind == "failed"
    assert exited.result == {
        "msg": "the record's chain id 4242 is not the node's 1337",
        "actions": ["granted REGISTRAR_ROLE to 0xabc"],
    }
    assert provider.closed, "the connection (an ssh relay in production) is closed on failure too"


def test_an_unexpected_error_fails_with_its_type_and_traceback_and_never_the_key(provider, monkeypatch):
    exited = run(monkeypatch, TimeoutError("no receipt after 5 s"))
    assert exited.kind == "failed"
    assert exited.result["msg"] == "TimeoutError: no receipt after 5 s"
    assert "Traceback" in exited.result["exception"]
    assert KEY[2:] not in repr(exited.result), "the private key leaked into the failure"
    assert provider.closed


def test_a_bad_spec_fails_before_any_connection(monkeypatch):
    def no_connection(*args, **kwargs):
        raise AssertionError("connected although the spec was refused")

    monkeypatch.setattr(ansible_module, "connect", no_connection)

    exited = run(monkeypatch, SimpleNamespace(), tolerance_percent=150)
    assert exited.result == {"msg": "tolerance_percent must be 0..100, got 150", "actions": []}


def test_success_reports_changed_actions_notices_and_the_record(provider, monkeypatch):
    done = SimpleNamespace(changed=True, actions=["paused the market"], warnings=[], record={"chainId": 1337})
    exited = run(monkeypatch, done, paused=True)
    assert exited.kind == "ok"
    assert exited.result == {
        "changed": True,
        "actions": ["paused the market"],
        "notices": [],
        "record": {"chainId": 1337},
    }
    assert provider.closed
