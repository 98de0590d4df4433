from tracedamon.cli import run

run()
