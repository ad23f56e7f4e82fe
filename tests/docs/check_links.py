#!/usr/bin/python3
"""Checks that every local link of a generated HTML tree resolves.

Usage: check_links.py HTML_DIR

Every href and src of every .html file under HTML_DIR that is not external (a scheme such as
http:, https:, mailto: or javascript:) and not a link within its own page (#…) must name a file
that exists; a link page.html#anchor must also find the id (or <a name>) `anchor` in that page.
Prints each broken link with the page it is on, and exits 1 if there is any (2 on bad usage).
Standard library only.
"""

import html.parser
import os
import re
import sys
import urllib.parse

# A URL scheme (RFC 3986): what makes a link external rather than a path.
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


class Page(html.parser.HTMLParser):
    """The links (tag, attribute, value) and the anchor ids of one HTML page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links = []
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if value is None:
                continue
            if name == "id" or (tag == "a" and name == "name"):
                self.ids.add(value)
            elif name in ("href", "src"):
                self.links.append((tag, name, value))

    handle_startendtag = handle_starttag


def parse(path, cache):
    """The parsed page at `path`, read once."""
    if path not in cache:
        page = Page()
        with open(path, encoding="utf-8", errors="replace") as f:
            page.feed(f.read())
        page.close()
        cache[path] = page
    return cache[path]


def broken_links(root):
    """(page, link, reason) for every local link under `root` that does not resolve."""
    root = os.path.realpath(root)
    cache = {}
    broken = []
    pages = sorted(
        os.path.join(folder, name)
        for folder, _, names in os.walk(root)
        for name in names
        if name.endswith(".html")
    )
    for page_path in pages:
        page = parse(page_path, cache)
        for tag, attribute, value in page.links:
            link = value.strip()
            if not link or link.startswith("#") or SCHEME.match(link):
                continue
            parts = urllib.parse.urlsplit(link)
            target = os.path.normpath(
                os.path.join(os.path.dirname(page_path), urllib.parse.unquote(parts.path))
            )
            where = os.path.relpath(page_path, root)
            if not os.path.isfile(target):
                broken.append((where, link, "no such file"))
                continue
            if parts.fragment and target.endswith(".html"):
                anchor = urllib.parse.unquote(parts.fragment)
                if anchor not in parse(target, cache).ids:
                    broken.append((where, link, "no id '" + anchor + "' in " + os.path.relpath(target, root)))
    return pages, broken


def main(argv):
    if len(argv) != 2 or not os.path.isdir(argv[1]):
        print("usage: check_links.py HTML_DIR (a folder of generated HTML)", file=sys.stderr)
        return 2
    pages, broken = broken_links(argv[1])
    if not pages:
        print("check_links: no .html files in " + argv[1], file=sys.stderr)
        return 1
    for where, link, reason in broken:
        print(where + ": " + link + ": " + reason)
    print("check_links: %d pages, %d broken local links" % (len(pages), len(broken)))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
