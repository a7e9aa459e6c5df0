"""``python -m service.cli``: the ``mailflow`` command."""

from service.cli.main import main

main()
