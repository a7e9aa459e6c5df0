"""``python -m service.cli``: the ``mailflow`` command."""

from service.cli.commands import main

main()
