from hookstream.shell.cli import run

run()
