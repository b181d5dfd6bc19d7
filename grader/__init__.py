"""The instructor's tool over nbgrader (see README.md, "Instructors")."""

import sys

# nbformat imports jsonschema, whose optional IRI format checker imports ``rfc3987_syntax``, which
# compiles 39 lark grammars at import: 2.3 s of CPU in the coordinator and in every worker's
# sandbox, for a check no notebook schema uses (nbformat's schemas declare no "format"). jsonschema
# treats a missing optional package as "IRI format not checked"; we make it missing for our processes.
sys.modules.setdefault("rfc3987_syntax", None)
