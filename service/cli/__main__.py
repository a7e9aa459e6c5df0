"""``python -m service.cli``: the ``mailflow`` command."""

from service.cli import main

main()
