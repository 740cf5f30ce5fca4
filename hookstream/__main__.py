from hookstream.cli import run

run()
