"""nbgrader preprocessors the course adds to nbgrader's own (configured in nbgrader_config.py)."""

from nbgrader.preprocessors import ClearHiddenTests


class ClearHiddenTestsAndTracebacks(ClearHiddenTests):
    """nbgrader's ClearHiddenTests for student feedback, plus the tracebacks of hidden tests.

    Stock ClearHiddenTests removes the hidden region from a cell's source, but when a hidden test
    fails with an ordinary exception (a NameError when the student deleted a function, say),
    IPython's traceback in the cell's output quotes the hidden lines, answer key included. Such
    an error is reduced to its one-line message, which is what a student needs to know.
    """

    def preprocess_cell(self, cell, resources, cell_index):
        had_hidden_tests = cell.cell_type == "code" and self.begin_test_delimeter in cell.source
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if had_hidden_tests:
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"\x1b[1;31m✗ {output.ename}:\x1b[0m {output.evalue}"]
        return cell, resources
