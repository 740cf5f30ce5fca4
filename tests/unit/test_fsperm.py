"""Private files and directories: the state dir 0700, the database and key files 0600."""

import os
import stat

from hookstream.shell.broker import LocalBroker
from hookstream.core.db import make_engine
from hookstream.core.fsperm import private_dir, private_file
from hookstream.core.settings import Settings


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_missing_directories_are_made_0700_whatever_the_umask(tmp_path):
    old = os.umask(0o002)
    try:
        private_dir(tmp_path / "a" / "b" / "c")
    finally:
        os.umask(old)
    assert [mode(tmp_path / p) for p in ("a", "a/b", "a/b/c")] == [0o700, 0o700, 0o700]


def test_a_directory_that_exists_is_left_as_it_is(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    private_dir(shared / "mine")
    assert mode(shared) == 0o755 and mode(shared / "mine") == 0o700


def test_a_file_is_made_0600_and_an_own_world_readable_one_tightened(tmp_path):
    private_file(tmp_path / "state" / "new.db")
    assert mode(tmp_path / "state" / "new.db") == 0o600 and mode(tmp_path / "state") == 0o700
    old = tmp_path / "old.db"
    old.write_bytes(b"data")
    os.chmod(old, 0o644)
    private_file(old)
    assert mode(old) == 0o600 and old.read_bytes() == b"data"


def test_the_sqlite_database_and_its_wal_are_0600_in_a_0700_dir(tmp_path):
    old = os.umask(0o022)
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'state' / 'hookstream.db'}")
        with engine.begin() as conn:
            conn.exec_driver_sql("create table t (x int)")
            conn.exec_driver_sql("insert into t values (1)")
        files = sorted((tmp_path / "state").iterdir())
        assert {f.name for f in files} >= {"hookstream.db", "hookstream.db-wal"}
        assert all(mode(f) == 0o600 for f in files), [(f.name, oct(mode(f))) for f in files]
        assert mode(tmp_path / "state") == 0o700
        engine.dispose()
    finally:
        os.umask(old)


def test_the_local_brokers_data_and_logs_are_0700(tmp_path):
    broker = LocalBroker(Settings(state_dir=tmp_path / "state", kafka_bootstrap="127.0.0.1:39092"))
    broker._write_config()
    root = tmp_path / "state" / "kafka-39092"
    assert mode(tmp_path / "state") == 0o700 and mode(root) == 0o700
    assert mode(broker.paths.data) == 0o700 and mode(broker.paths.logs) == 0o700
