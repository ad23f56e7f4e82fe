#!/usr/bin/python3
"""Tests docs/markdown_filter.py, Doxygen's filter for the Markdown pages (ctest:
test_docs_markdown_filter). The expected anchors are GitHub's, worked out by its rule (lower
case; letters, marks, digits, `_`, `-` and spaces kept; spaces to `-`; `-1`, `-2` on repeats),
not read off the filter."""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs"))
import markdown_filter  # noqa: E402


class GitHubAnchor(unittest.TestCase):
    def test_anchors(self):
        cases = {
            "PyTorch": "pytorch",
            "Parameters, in PyTorch's layout": "parameters-in-pytorchs-layout",
            "4. SnAp-n: the Sparse n-step Approximation": "4-snap-n-the-sparse-n-step-approximation",
            "Kept influence entries (GRU, H = 128, m = 32)": "kept-influence-entries-gru-h--128-m--32",
            "`snap::Trainer` and `TrainerOptions`": "snaptrainer-and-traineroptions",
            "The [copy task](copy-task.md) curriculum": "the-copy-task-curriculum",
            "SnAp-1 costs O(p)": "snap-1-costs-op",
            "Ĵ_t and ρ0": "ĵ_t-and-ρ0",
            "§3–§5: k², D·J": "35-k-dj",
        }
        for heading, anchor in cases.items():
            self.assertEqual(markdown_filter.github_anchor(heading), anchor, heading)


class Filter(unittest.TestCase):
    def setUp(self):
        self.root = tempfile.mkdtemp()
        os.makedirs(os.path.join(self.root, "docs"))

    def write(self, relative, text):
        path = os.path.join(self.root, relative)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def test_headings_get_labels_and_links_resolve(self):
        self.write("docs/cells.md", "# Cells\n\n## Equations\n\n## PyTorch\n\n## Equations\n")
        page = self.write(
            "docs/guide.md",
            "# Guide\n\n"
            "See [cells](cells.md#pytorch), [again](cells.md#equations-1), [title](cells.md#cells),\n"
            "[here](#usage), [page](cells.md), [web](https://example.org/a.md#x), [LICENSE](LICENSE).\n\n"
            "## Usage\n\n"
            "```sh\n# not a heading: [x](cells.md#pytorch)\n```\n",
        )
        self.assertEqual(
            markdown_filter.filtered(self.root, page).split("\n"),
            [
                "# Guide",
                "",
                "See [cells](@ref docs_cells-pytorch), [again](@ref docs_cells-equations-1), [title](cells.md),",
                "[here](@ref docs_guide-usage), [page](cells.md), [web](https://example.org/a.md#x), "
                "[LICENSE](./LICENSE).",
                "",
                "## Usage {#docs_guide-usage}",
                "",
                "```sh",
                "# not a heading: [x](cells.md#pytorch)",
                "```",
                "",
            ],
        )
        cells = markdown_filter.filtered(self.root, os.path.join(self.root, "docs/cells.md"))
        self.assertEqual(
            cells.split("\n"),
            ["# Cells", "", "## Equations {#docs_cells-equations}", "", "## PyTorch {#docs_cells-pytorch}", "",
             "## Equations {#docs_cells-equations-1}", ""],
        )

    def test_unknown_anchor_becomes_an_unresolved_reference(self):
        # Doxygen warns about a label no heading has, and the docs check fails on warnings.
        self.write("docs/cells.md", "# Cells\n\n## PyTorch\n")
        page = self.write("docs/guide.md", "# Guide\n\n[x](cells.md#no-such-heading)\n")
        self.assertIn("[x](@ref docs_cells-no-such-heading)", markdown_filter.filtered(self.root, page))

    def test_non_ascii_anchor_has_an_ascii_label(self):
        page = self.write("docs/math.md", "# Math\n\n## 5. UORO: ρ0\n\n[x](#5-uoro-ρ0)\n")
        text = markdown_filter.filtered(self.root, page)
        self.assertIn("## 5. UORO: ρ0 {#docs_math-5-uoro-_3c1_0}", text)
        self.assertIn("[x](@ref docs_math-5-uoro-_3c1_0)", text)


if __name__ == "__main__":
    unittest.main()
