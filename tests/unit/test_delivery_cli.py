"""``hookstream deliveries`` and ``hookstream delivery``: user errors are one line, no traceback."""

from __future__ import annotations

from hookstream.cli import main


def test_an_unknown_status_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOOKSTREAM_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main(["deliveries", "list", "--status", "lost"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --status: 'lost' is not one of succeeded, failed, dead") and "Traceback" not in err


def test_show_of_an_unknown_delivery_is_not_found(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOOKSTREAM_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main(["deliveries", "show", "msg_nope"]) == 3
    assert capsys.readouterr().err == "error: no attempts recorded for delivery 'msg_nope'\n"
    assert main(["deliveries", "show", "msg_nope", "--tenant", "acme"]) == 3
    assert capsys.readouterr().err == "error: no attempts recorded for delivery 'msg_nope' for tenant acme\n"
    assert main(["deliveries", "show", "msg_nope", "--tenant", "not a tenant"]) == 2
    assert capsys.readouterr().err.startswith("error: tenant: 'not a tenant' is not a tenant id")


def test_an_empty_log_lists_nothing_and_says_whose(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HOOKSTREAM_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    assert main(["deliveries", "list"]) == 0
    assert capsys.readouterr().out == "all tenants (no --tenant given)\nno deliveries\n"
    assert main(["deliveries", "list", "--tenant", "acme"]) == 0
    assert capsys.readouterr().out == "no deliveries\n"
    assert main(["deliveries", "list", "--json"]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == "[]" and err == "all tenants (no --tenant given)\n"
    assert main(["deliveries", "list", "--tenant", "acme", "--json"]) == 0
    assert capsys.readouterr() == ("[]\n", "")


def test_a_bad_worker_option_is_a_config_error(capsys):
    assert main(["delivery", "worker", "--concurrency", "0"]) == 2
    assert capsys.readouterr().err.startswith("error: --concurrency must be from 1 to 1000000")
