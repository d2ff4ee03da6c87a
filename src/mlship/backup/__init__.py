"""Backups of a workspace: a consistent snapshot of its metadata and a copy of its artifacts and
logs, kept in a directory or a bucket, checked, restored elsewhere, and pruned.

``place`` is where backups are kept, ``manifest`` what one holds, ``database`` the metadata
snapshot, ``keys`` the key material a restore needs, ``snapshot`` takes a backup, ``verify``
checks one, ``restore`` rebuilds a workspace from one, ``retention`` lists and prunes them.
"""
