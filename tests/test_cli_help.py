"""`run_bench.py --help` lists the subcommands in the order of the jobs, one line each; every subcommand's `--help`
ends with a worked example whose options its parser accepts."""
import importlib
import shlex

import pytest

from bench.cli import SUBCOMMANDS, build_parser


def test_the_top_help_lists_the_subcommands_in_job_order(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = capsys.readouterr().out
    places = [text.index(f"\n    {name}") for name in SUBCOMMANDS]
    assert places == sorted(places) and list(SUBCOMMANDS)[:4] == ["demo", "fetch-weights", "datasets", "run"]


@pytest.mark.parametrize("name", list(SUBCOMMANDS))
def test_every_help_ends_with_an_example_its_parser_takes(name, capsys):
    with pytest.raises(SystemExit):
        build_parser(name).parse_args([name, "--help"])
    text = capsys.readouterr().out.rstrip()
    example = importlib.import_module(SUBCOMMANDS[name]).EXAMPLE
    assert text.endswith(f"example:\n  {example}") and example.startswith(f"run_bench.py {name} ")
    args = build_parser(name).parse_args(shlex.split(example)[1:])   # every option of the example exists
    assert args.command == name
