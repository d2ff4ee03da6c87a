"""Pipeline files for CI systems: the steps from a commit to a production request.

One ordered list of stages (:mod:`mlship.ci.stages`) is written out in each system's own
format (:mod:`mlship.ci.github`, :mod:`mlship.ci.gitlab`, :mod:`mlship.ci.jenkins`), so the three
files cannot disagree about what runs, in which order, with which commands.
"""
