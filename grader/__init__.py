"""The instructor's tool over nbgrader (see README.md, "Instructors")."""
