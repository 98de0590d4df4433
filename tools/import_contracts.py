"""import-linter contract types of tracedamon's own (registered in pyproject.toml).

``external_submodule``: only the ``allowed_importers`` may import the external module
``module`` (e.g. ``pyarrow.parquet``). import-linter's own contracts see an external
package only as a whole (``pyarrow``), so this one reads the import statements grimp
recorded for each import of the package's root and looks for the submodule in them.
"""

from __future__ import annotations

import re

import grimp
from importlinter import Contract, ContractCheck, fields, output


class ExternalSubmoduleContract(Contract):
    """Only ``allowed_importers`` (and their descendants) import ``module``, a submodule
    of an external package; graph needs ``include_external_packages``."""

    type_name = "external_submodule"

    module = fields.StringField()
    allowed_importers = fields.ListField(subfield=fields.ModuleExpressionField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        root, _, rest = str(self.module).partition(".")
        leaf = rest.rsplit(".", 1)[-1]
        parent = f"{root}.{rest.rsplit('.', 1)[0]}" if "." in rest else root
        # `import pyarrow.parquet`, `from pyarrow.parquet import x`, `from pyarrow import parquet`
        pattern = re.compile(
            rf"\b{re.escape(str(self.module))}\b|"
            rf"^\s*from\s+{re.escape(parent)}\s+import\s.*\b{re.escape(leaf)}\b"
        )
        allowed = [str(e.expression) for e in self.allowed_importers]
        illegal = []
        if root in graph.modules:
            for importer in sorted(graph.find_modules_that_directly_import(root)):
                if any(importer == a or importer.startswith(a + ".") for a in allowed):
                    continue
                for d in graph.get_import_details(importer=importer, imported=root):
                    if pattern.search(d["line_contents"]):
                        illegal.append((importer, d["line_number"], d["line_contents"]))
        return ContractCheck(kept=not illegal, metadata={"illegal": illegal})

    def render_broken_contract(self, check: ContractCheck) -> None:
        output.print_error(
            f"{self.module} imported outside "
            f"{', '.join(str(e.expression) for e in self.allowed_importers)}:",
            bold=False,
        )
        output.new_line()
        for importer, line, text in check.metadata["illegal"]:
            output.print_error(f"- {importer} (l.{line}): {text}", bold=False)
        output.new_line()
