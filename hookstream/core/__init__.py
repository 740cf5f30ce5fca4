"""hookstream.core: the bottom layer. Settings, errors, Kafka client factories, topics, the wire
formats of the records that cross them, time helpers, the database engine and its migrations.
Every other layer imports it; it imports nothing of hookstream's."""
