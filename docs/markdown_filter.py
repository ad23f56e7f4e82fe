#!/usr/bin/python3
"""Doxygen's input filter for the Markdown pages (docs/Doxyfile.in, FILTER_PATTERNS).

The pages are written for GitHub, where a link `cells.md#pytorch` reaches the heading "PyTorch"
of cells.md through the anchor GitHub derives from the heading's text. Doxygen 1.9 resolves a
link to a page (`cells.md`) but not one to a heading of it: it gives its headings ids of its own
(autotoc_md…) and leaves `page.md#anchor` as a raw link to a .md file that the HTML does not
have. This filter bridges the two, on the text Doxygen reads (the files are not changed):

* every ATX heading (`## Text`) outside code blocks gets an explicit Doxygen label
  `{#label}`, where label is the page's path and GitHub's anchor of the heading, e.g.
  `docs_cells-pytorch` (Doxygen's labels are global, hence the page in the name). A page's
  title, its first line when that is a level-1 heading, keeps Doxygen's default: a label there
  would rename the page.
* every link `[text](page.md#anchor)` or `[text](#anchor)` becomes `[text](@ref label)`, which
  Doxygen resolves (or warns about, when the anchor names no heading of that page: the docs
  target counts warnings, and tests/docs/check_reference.cmake fails on any). A link to a
  page's title becomes a link to the page.
* a link to a bare file name without a dot (`[LICENSE](LICENSE)`), which Doxygen 1.9 leaves as
  raw text, is written `./LICENSE`; HTML_EXTRA_FILES copies such a file into the HTML.

GitHub's anchor of a heading: its text as rendered, lower-cased, without the characters that
are neither letters, marks, decimal digits, `_`, `-` nor spaces, spaces turned into `-`; a
heading whose anchor is already taken on the page gets `-1`, `-2`, … appended.

Usage: markdown_filter.py ROOT FILE. ROOT is the repository root (labels name pages by their
path from it); Doxygen appends FILE. The filtered text goes to standard output.
"""

import os
import re
import sys
import unicodedata

HEADING = re.compile(r"^( {0,3})(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# A Markdown link or image target: `](target)` with no space inside the target.
LINK = re.compile(r"\]\(([^()\s]+)\)")
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
INLINE_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
TAG = re.compile(r"<[^>]+>")


def github_anchor(text):
    """GitHub's anchor of a heading whose Markdown text is `text` (before de-duplication)."""
    text = INLINE_LINK.sub(r"\1", text)  # a link or image shows its text
    text = TAG.sub("", text)
    kept = []
    for c in text.lower():
        category = unicodedata.category(c)
        if c in " -_" or category[0] in "LM" or category in ("Nd", "Nl", "Pc"):
            kept.append(c)
    return "".join(kept).replace(" ", "-")


def outside_code(lines):
    """(index, line, in_code) for each line, in_code true inside a fenced code block."""
    fence = None
    for index, line in enumerate(lines):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * len(match.group(1))
            yield index, line, True
        elif fence is not None:
            if match and match.group(1).startswith(fence) and line.strip() == match.group(1):
                fence = None
            yield index, line, True
        else:
            yield index, line, False


class Page:
    """The headings of one Markdown page: GitHub's anchors and the Doxygen labels for them."""

    def __init__(self, root, path):
        self.path = path
        relative = os.path.relpath(path, root)
        self.prefix = re.sub(r"[^A-Za-z0-9]", "_", os.path.splitext(relative)[0])
        self.title_anchor = None
        self.headings = {}  # line index → anchor
        with open(path, encoding="utf-8") as f:
            self.lines = f.read().split("\n")
        seen = {}
        first_content = next((i for i, line in enumerate(self.lines) if line.strip()), None)
        for index, line, in_code in outside_code(self.lines):
            match = None if in_code else HEADING.match(line)
            if not match or "{#" in match.group(3):
                continue
            anchor = github_anchor(match.group(3))
            if anchor in seen:
                seen[anchor] += 1
                anchor = anchor + "-" + str(seen[anchor])
            else:
                seen[anchor] = 0
            if index == first_content and len(match.group(2)) == 1:
                self.title_anchor = anchor
            else:
                self.headings[index] = anchor
        self.anchors = set(self.headings.values())

    def label(self, anchor):
        """The Doxygen label of the heading with GitHub anchor `anchor` (ASCII, as labels must be)."""
        encoded = "".join(c if re.match(r"[A-Za-z0-9_-]", c) else "_%x_" % ord(c) for c in anchor)
        return self.prefix + "-" + encoded


def filtered(root, path):
    """The text of the page at `path` with heading labels added and heading links resolved."""
    pages = {}

    def page_of(target):
        target = os.path.realpath(target)
        if target not in pages:
            pages[target] = Page(root, target)
        return pages[target]

    page = page_of(path)
    folder = os.path.dirname(page.path)

    def resolve(match):
        target = match.group(1)
        if SCHEME.match(target):
            return match.group(0)
        if "#" not in target:
            # Doxygen 1.9 leaves a bare name without a dot (LICENSE) as raw text, not a link.
            bare = "/" not in target and "." not in target
            return "](./" + target + ")" if bare else match.group(0)
        file, anchor = target.split("#", 1)
        if file and not file.endswith(".md"):
            return match.group(0)
        if file and not os.path.isfile(os.path.join(folder, file)):
            return match.group(0)
        linked = page_of(os.path.join(folder, file)) if file else page
        if anchor == linked.title_anchor:
            return "](" + (file or os.path.basename(page.path)) + ")"
        return "](@ref " + linked.label(anchor) + ")"

    out = []
    for index, line, in_code in outside_code(page.lines):
        if in_code:
            out.append(line)
            continue
        if index in page.headings:
            line = line.rstrip() + " {#" + page.label(page.headings[index]) + "}"
        out.append(LINK.sub(resolve, line))
    return "\n".join(out)


def main(argv):
    if len(argv) != 3:
        print("usage: markdown_filter.py ROOT FILE", file=sys.stderr)
        return 2
    sys.stdout.write(filtered(os.path.realpath(argv[1]), argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
