"""The stream worker's Faust app creates no topic of its own (no leader topic, no changelog, no
declared topic), so Faust's ``topic_replication_factor`` (1 by default) never applies: every topic
the pipeline uses is made by ``topics ensure`` with the replication the cluster allows."""

from hookstream.core.settings import Settings
from hookstream.streams.app import create_app


def test_faust_declares_no_topic_and_keeps_no_table(tmp_path):
    app = create_app(Settings(state_dir=tmp_path, kafka_bootstrap="127.0.0.1:1"), producer=object())
    assert app.conf.topic_allow_declare is False
    assert app.conf.topic_disable_leader is True
    assert list(app.tables) == []  # a table would bring a changelog topic
