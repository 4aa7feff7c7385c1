// bind() rules: written alongside (see the bind issue).
