"""Schedulers' files for a pipeline spec: the spec's steps as a scheduler's tasks.

The files run mlship's own command line, as a person does at a terminal, and import nothing of
mlship's, so they load in the scheduler's environment (:mod:`mlship.orchestrate.airflow_dag`).
"""
