"""hookstream.shell: the top layer. The CLI, the dev stack, the local broker, the bench harness
(and the HTTP API). It imports every stage; nothing imports it."""
