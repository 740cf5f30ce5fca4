"""Consumer lag measured from outside the group: committed offset against the high watermark."""

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from hookstream.core.kafka import consumer_config
from hookstream.core.metrics import committed_reader, measure_lag


def test_lag_is_end_offset_minus_committed(settings, group_id):
    topic = settings.topic("lagged")
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(30)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap})
    for i in range(10):
        producer.produce(topic, value=str(i).encode())
    producer.flush(20)

    reader = committed_reader(settings, group_id)
    assert measure_lag(admin, reader, [topic]) == {(topic, 0): 10}  # nothing committed yet

    consumer = Consumer(consumer_config(settings, group_id))
    consumer.assign([TopicPartition(topic, 0, 0)])
    for _ in range(4):
        msg = consumer.poll(10)
        assert msg is not None and not msg.error()
    consumer.commit(offsets=[TopicPartition(topic, 0, 4)], asynchronous=False)
    consumer.close()

    assert measure_lag(admin, reader, [topic]) == {(topic, 0): 6}
    reader.close()
