"""Every ``contraclust`` command written in the README and in ``docs/`` (code blocks and inline code) parses as
written with the real argument parser, and every ``benchmarks/`` script named exists; the pages link to
each other and to files that exist. What the commands then do is tested by the rest of the suite."""
import re
import shlex

import pytest

from contraclust.cli.main import build_parser
from helpers import ROOT

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PLACEHOLDERS = {"K": "5", "S": "0", "N": "2"}  # what a sentence leaves to the reader, as a value that parses


def code_lines(text: str) -> list[str]:
    """The shell lines of fenced code blocks (continuations joined) and every inline code span."""
    lines, fenced, block = [], False, []
    for line in text.splitlines():
        if line.startswith("```"):
            if fenced and not block_is_python(block):
                joined = "\n".join(block).replace("\\\n", " ")
                lines += joined.splitlines()
            fenced, block = not fenced, []
            continue
        if fenced:
            block.append(line)
    outside = re.sub(r"```.*?```", "", text, flags=re.S)
    lines += re.findall(r"`([^`\n]+)`", outside)
    return lines


def block_is_python(block: list[str]) -> bool:
    return any(line.startswith(("from ", "import ", "model", "data =")) for line in block)


def commands(line: str) -> list[list[str]]:
    """The ``contraclust`` and ``benchmarks/`` invocations of one shell line, as argument lists."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:
        return []
    found, current = [], []
    for word in words + [";"]:
        if word in (";", "&&", "||", "|"):
            found.append(current)
            current = []
        elif word.endswith(";"):
            found.append(current + [word[:-1]])
            current = []
        elif word != "...":  # "and so on" in a sentence
            current.append(PLACEHOLDERS.get(word, word))
    invocations = []
    for words in found:
        while words and ASSIGNMENT.match(words[0]):
            words = words[1:]
        if words[:1] == ["contraclust"]:
            invocations.append(words)
        elif "contraclust" in words and words[words.index("contraclust") - 1] == "-m":
            invocations.append(words[words.index("contraclust"):])
        elif len(words) > 1 and words[0] in ("python", "python3") and words[1].startswith("benchmarks/"):
            invocations.append(words[1:2])
    return invocations


def written_commands():
    for page in PAGES:
        for line in code_lines(page.read_text()):
            for words in commands(line):
                yield pytest.param(words, id=f"{page.name}: {' '.join(words)[:70]}")


@pytest.mark.parametrize("words", list(written_commands()))
def test_a_written_command_parses(words, capsys):
    if words[0].startswith("benchmarks/"):
        assert words[0] == "benchmarks/NAME.py" or (ROOT / words[0]).is_file(), words[0]
        return
    parser = build_parser()
    if len(words) <= 2:  # the command alone, as a sentence names it: it must exist
        commands = next(a for a in parser._actions if a.dest == "command").choices
        assert len(words) == 1 or words[1] in commands, words
        return
    try:
        parser.parse_args(words[1:])
    except SystemExit as exc:
        if exc.code != 0:  # 0: --help
            pytest.fail(f"{' '.join(words)} does not parse: {capsys.readouterr().err.strip()} ({exc})")


def test_the_docs_list_every_page_and_every_link_leads_somewhere():
    index = (ROOT / "docs" / "index.md").read_text()
    for page in PAGES[1:]:
        if page.name != "index.md":
            assert f"]({page.name})" in index, f"docs/index.md does not list {page.name}"
    for page in PAGES:
        for target in re.findall(r"\]\(([^)#\s]+)", page.read_text()):
            if not target.startswith(("http://", "https://")):
                assert (page.parent / target).exists(), f"{page.name} links to {target}, which is not there"


def test_the_readme_is_a_front_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = next(line for line in readme.splitlines() if line.endswith("python -m pytest -q"))
    assert test_command in ci  # .ci/run runs exactly the README's test command
