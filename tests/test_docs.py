"""The README and docs/ stay true to the repository: the settings reference lists
exactly the variables of .env.example, .env.example lists every variable settings
read, links lead somewhere, and the README stays one page. No database needed."""

import re
from pathlib import Path
from urllib.parse import unquote

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
ENV_EXAMPLE = ROOT / ".env.example"
SETTINGS = ROOT / "batchsvc" / "settings.py"
GUNICORN_CONF = ROOT / "gunicorn.conf.py"

README_MAX_LINES = 200
NAME = r"[A-Z][A-Z0-9_]*"
# os.environ.get("X"), os.environ.setdefault("X", ...), env_int("X", ...), env_bool(...), ...
ENV_CALL = re.compile(
    rf"""(?:\bos\.environ(?:\.get|\.setdefault)?|\bos\.getenv|\benv_\w+)\(\s*["']({NAME})["']"""
)
ENV_INDEX = re.compile(rf"""\bos\.environ\[\s*["']({NAME})["']\s*\]""")
# A row of the settings reference: | `NAME` | default | meaning |
REFERENCE_ROW = re.compile(rf"^\|\s*`({NAME})`\s*\|")
SETTINGS_HEADING = "## Settings reference"
# Words about how the project was made, not about what it does.
PROCESS_WORDS = re.compile(r"\b(seed|issue|round)(s|ed)?\b", re.IGNORECASE)
# [text](target) but not ![image](...) targets' alt text: both are links to check.
LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^(```|~~~)")


def doc_pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def env_example_names() -> set[str]:
    names = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(rf"^\s*(?:export\s+)?({NAME})=", line)
        if match:
            names.add(match.group(1))
    return names


def names_read_by(source: str) -> set[str]:
    names = set(ENV_CALL.findall(source)) | set(ENV_INDEX.findall(source))
    if "dj_database_url.config(" in source:
        names.add("DATABASE_URL")  # dj-database-url reads it itself
    return names


def settings_reference_names() -> list[str]:
    """The first-column names of the tables under the settings reference heading, up
    to the next heading of the same level."""
    lines = (DOCS / "operations.md").read_text().splitlines()
    start = lines.index(SETTINGS_HEADING) + 1
    names = []
    for line in lines[start:]:
        if line.startswith("## "):
            break
        if match := REFERENCE_ROW.match(line):
            names.append(match.group(1))
    return names


def prose_lines(path: Path):
    """(number, line) of a page outside fenced code blocks."""
    fenced = False
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            yield number, line


def anchors_of(path: Path) -> set[str]:
    """GitHub's anchors for a page's headings: lower case, punctuation dropped, spaces
    as hyphens, repeats numbered."""
    anchors, seen = set(), {}
    for _, line in prose_lines(path):
        match = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not match:
            continue
        slug = re.sub(r"[^\w\- ]", "", match.group(1).lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        anchors.add(slug if count == 0 else f"{slug}-{count}")
    return anchors


def relative_links(path: Path):
    for number, line in prose_lines(path):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):  # http:, mailto:
                continue
            yield number, target


def test_the_settings_reference_documents_exactly_the_variables_of_env_example():
    documented = settings_reference_names()
    assert len(documented) == len(set(documented)), "a variable is documented twice"
    listed = env_example_names()
    assert set(documented) - listed == set(), "documented but missing from .env.example"
    assert listed - set(documented) == set(), "in .env.example but not documented"


def test_env_example_lists_every_variable_settings_read():
    read = names_read_by(SETTINGS.read_text())
    assert "DEBUG" in read and "DATABASE_URL" in read, "the settings reader patterns broke"
    assert read - env_example_names() == set()


def test_env_example_lists_every_variable_the_gunicorn_config_reads():
    assert names_read_by(GUNICORN_CONF.read_text()) - env_example_names() == set()


def test_the_readme_is_one_page_of_at_most_200_lines():
    assert len(README.read_text().splitlines()) <= README_MAX_LINES


def test_every_relative_link_in_the_readme_and_docs_leads_to_an_existing_file_and_heading():
    broken = []
    for page in doc_pages():
        for number, target in relative_links(page):
            file_part, _, anchor = unquote(target).partition("#")
            destination = (page.parent / file_part).resolve() if file_part else page
            where = f"{page.relative_to(ROOT)}:{number}: {target}"
            if not destination.exists():
                broken.append(f"{where} (no such file)")
            elif anchor and destination.suffix == ".md" and anchor not in anchors_of(destination):
                broken.append(f"{where} (no such heading)")
    assert broken == []


def test_the_readme_and_docs_never_speak_of_how_the_project_was_made():
    found = [
        f"{page.relative_to(ROOT)}:{number}: {match.group(0)}"
        for page in doc_pages()
        for number, line in enumerate(page.read_text().splitlines(), start=1)
        for match in PROCESS_WORDS.finditer(line)
    ]
    assert found == []


def test_the_process_word_check_matches_whole_words_only():
    assert PROCESS_WORDS.search("see the seed notes")
    assert PROCESS_WORDS.search("Issues and rounds")
    assert not PROCESS_WORDS.search("around the proofreading and seedless grounds")
