"""`python -m amchw.cli`: the same as the `amchw` command."""

from amchw.cli import main

main(prog_name="amchw")
