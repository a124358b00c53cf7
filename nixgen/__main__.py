"""``python -m nixgen`` runs the command line."""

from nixgen.cli import main

main()
